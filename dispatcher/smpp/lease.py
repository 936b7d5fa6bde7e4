"""A Redis lease: at most one holder of a name across the fleet, taken over when it goes silent.

The SMPP gateway holds one per TimeToChat account, so one bind sends for the account however
many gateways ops start; the others wait as standbys and one takes over within ``ttl_s`` of the
holder's death. Taking, renewing and giving back are single Redis commands or scripts that check
the holder's own token, so a holder that paused past its lease cannot renew or release the
lease of the one that took over.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis

__all__ = ["Lease"]

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """One holder of ``key`` at a time; the holder must :meth:`hold` more often than ``ttl_s``."""

    def __init__(self, client: redis.Redis[Any], key: str, ttl_s: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.token = secrets.token_hex(8)

    def hold(self) -> bool:
        """Take the lease if free, or renew it if ours; False while another holds it."""
        if self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):  # type: ignore[no-untyped-call]
            return True
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        """Give it back at once (a graceful stop), so the standby need not wait for expiry."""
        self.client.eval(_RELEASE, 1, self.key, self.token)  # type: ignore[no-untyped-call]
