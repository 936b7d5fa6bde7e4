"""TimeToChat bearer tokens: JWT-shaped (HS256 over a per-process secret) and really expiring.

Expiry is kept on the monotonic clock beside each token id, so a wall-clock jump cannot revive
or kill a token; the ``exp`` claim is informative only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable

from dispatcher.sandbox import codes

__all__ = ["TokenIssuer"]


_FORGET_AFTER_S = 3600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues and checks tokens of ``lifetime_s`` seconds."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._expiry: dict[str, tuple[str, float]] = {}

    def issue(self, service_id: str) -> str:
        """A new token for ``service_id``."""
        jti = secrets.token_hex(8)
        issued = int(time.time())
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"service_id": service_id, "iat": issued, "exp": issued + int(self.lifetime_s)}
        payload = _b64(json.dumps({**claims, "jti": jti}).encode())
        signature = _b64(self._sign(f"{header}.{payload}"))
        with self._lock:
            now = self._clock()
            # Long-dead tokens are forgotten (then refused as INVALID_TOKEN, still a 401).
            self._expiry = {k: v for k, v in self._expiry.items() if v[1] > now - _FORGET_AFTER_S}
            self._expiry[jti] = (service_id, now + self.lifetime_s)
        return f"{header}.{payload}.{signature}"

    def check(self, token: str, service_id: str) -> str | None:
        """``None`` if ``token`` is valid for ``service_id``, else the 401 error code."""
        parts = token.split(".")
        if len(parts) != 3:
            return codes.TTC_INVALID_TOKEN
        header, payload, signature = parts
        if not hmac.compare_digest(signature, _b64(self._sign(f"{header}.{payload}"))):
            return codes.TTC_INVALID_TOKEN
        try:
            jti = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
        except (ValueError, KeyError, TypeError):
            return codes.TTC_INVALID_TOKEN
        with self._lock:
            owner, expires = self._expiry.get(jti, ("", 0.0))
        if owner != service_id:
            return codes.TTC_INVALID_TOKEN
        return codes.TTC_TOKEN_EXPIRED if self._clock() >= expires else None

    def _sign(self, data: str) -> bytes:
        return hmac.new(self._secret, data.encode(), hashlib.sha256).digest()
