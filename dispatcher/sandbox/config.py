"""The simulators' configuration: frozen dataclasses, validated when built.

Defaults are the sandbox accounts the demo and the project's settings use; tests build their own
with short delays and lifetimes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from dispatcher.errors import ConfigError

__all__ = [
    "ByteHandAccount",
    "ByteHandConfig",
    "CallbackPolicy",
    "Faults",
    "Lifecycle",
    "Signature",
    "TimeToChatAccount",
    "TimeToChatConfig",
    "accounts_from_json",
]

SignatureState = Literal["NEW", "ACCEPTED", "REJECTED"]
StallMode = Literal["delay", "drop"]
TTC_SENDER_RE = re.compile(r"^093\d{7}$")


@dataclasses.dataclass(frozen=True)
class Signature:
    """A ByteHand sender name; only ``ACCEPTED`` ones may be used as ``from``."""

    text: str
    state: SignatureState = "ACCEPTED"
    description: str = ""


@dataclasses.dataclass(frozen=True)
class ByteHandAccount:
    """One ByteHand client: ``id``/``key`` credentials, sender names, balance in roubles."""

    client_id: str = "1000"
    key: str = "sandbox-bytehand-key-0123456789"
    signatures: tuple[Signature, ...] = (
        Signature("SMSINFO", "ACCEPTED", "sandbox sender"),
        Signature("PENDING", "NEW", "awaiting moderation"),
        Signature("REFUSED", "REJECTED", "refused by moderation"),
    )
    balance: Decimal = Decimal("10000")
    callback_url: str | None = None

    def __post_init__(self) -> None:
        if len(self.key) < 8:
            raise ConfigError(f"ByteHand account {self.client_id}: key shorter than 8 characters")


@dataclasses.dataclass(frozen=True)
class TimeToChatAccount:
    """One TimeToChat service: credentials, authorised ``09 3X`` numbers, test-account limits.

    ``monthly_limit`` is the number of messages the service may still accept (0: already
    reached); ``None`` means unlimited.
    """

    service_id: str = "123456"
    password: str = "sandbox-password"
    senders: tuple[str, ...] = ("0938000001",)
    test_account_expired: bool = False
    monthly_limit: int | None = None
    push_url: str | None = None

    def __post_init__(self) -> None:
        for sender in self.senders:
            if not TTC_SENDER_RE.match(sender):
                raise ConfigError(f"TimeToChat sender {sender!r} is not a 093XXXXXXX number")


@dataclasses.dataclass(frozen=True)
class Faults:
    """Injected faults; switchable at run time through ``POST /_control/faults``.

    ``fail_rate``: share of calls answered 500 before anything is done. ``stall_rate``: share of
    accepted sends whose answer is delayed by ``stall_s`` (``stall_mode="delay"``) or whose
    connection is cut after the headers (``"drop"``). ``latency_ms``: added to every call.
    Callbacks: ``callback_duplicate_rate`` of them are sent twice, each waits
    ``callback_delay_s`` plus a random ``[0, callback_reorder_s)`` (so they may overtake each
    other).
    """

    fail_rate: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 30.0
    stall_mode: StallMode = "delay"
    latency_ms: float = 0.0
    callback_duplicate_rate: float = 0.0
    callback_delay_s: float = 0.0
    callback_reorder_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fail_rate", "stall_rate", "callback_duplicate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"fault {name} must be within [0, 1], not {value}")
        for name in ("stall_s", "latency_ms", "callback_delay_s", "callback_reorder_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"fault {name} must not be negative")
        if self.stall_mode not in ("delay", "drop"):
            raise ConfigError(
                f"fault stall_mode must be 'delay' or 'drop', not {self.stall_mode!r}"
            )

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied; unknown names or bad values raise ConfigError."""
        known = {field.name: field.type for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ConfigError(f"unknown fault switches: {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "stall_mode":
                clean[name] = value
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"fault {name} must be a number")
            else:
                clean[name] = float(value)
        return dataclasses.replace(self, **clean)


@dataclasses.dataclass(frozen=True)
class Lifecycle:
    """Delays of a message's life: accepted, then ``sent_after_s`` to ACCEPTED / CRA_SMS_SENT,
    then ``final_after_s`` more to its final state."""

    sent_after_s: float = 0.5
    final_after_s: float = 1.5


@dataclasses.dataclass(frozen=True)
class CallbackPolicy:
    """How callbacks are delivered: a receiver must answer 200 within ``timeout_s``; failures
    are retried with exponential backoff until ``deadline_s`` after the first attempt."""

    timeout_s: float = 10.0
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    deadline_s: float = 48 * 3600.0
    workers: int = 4


@dataclasses.dataclass(frozen=True)
class ByteHandConfig:
    """Everything a ByteHand simulator needs; ``cost_per_part`` in roubles."""

    accounts: tuple[ByteHandAccount, ...] = (ByteHandAccount(),)
    rate_limit: int = 20
    rate_window_s: float = 1.0
    lifecycle: Lifecycle = Lifecycle()
    faults: Faults = Faults()
    callbacks: CallbackPolicy = CallbackPolicy()
    cost_per_part: Decimal = Decimal("1.0")
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class TimeToChatConfig:
    """Everything a TimeToChat simulator needs; routes live under ``base_path``."""

    accounts: tuple[TimeToChatAccount, ...] = (TimeToChatAccount(),)
    token_lifetime_s: float = 1800.0
    base_path: str = "/mug/api/V1"
    rate_limit: int = 20
    rate_window_s: float = 1.0
    lifecycle: Lifecycle = Lifecycle()
    faults: Faults = Faults()
    callbacks: CallbackPolicy = CallbackPolicy()
    seed: int | None = None


def _strs(item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"accounts: {name} must be a list of strings")
    return tuple(value)


def _bytehand_account(item: Mapping[str, Any]) -> ByteHandAccount:
    signatures = []
    for raw in item.get("signatures", []):
        if isinstance(raw, str):
            signatures.append(Signature(raw))
        elif isinstance(raw, dict) and raw.get("state", "ACCEPTED") in (
            "NEW",
            "ACCEPTED",
            "REJECTED",
        ):
            signatures.append(
                Signature(
                    str(raw["text"]), raw.get("state", "ACCEPTED"), raw.get("description", "")
                )
            )
        else:
            raise ConfigError(f"accounts: bad ByteHand signature {raw!r}")
    try:
        balance = Decimal(str(item.get("balance", "10000")))
    except InvalidOperation as exc:
        raise ConfigError("accounts: ByteHand balance must be a number") from exc
    return ByteHandAccount(
        client_id=str(item["client_id"]),
        key=str(item["key"]),
        signatures=tuple(signatures),
        balance=balance,
        callback_url=item.get("callback_url"),
    )


def _timetochat_account(item: Mapping[str, Any]) -> TimeToChatAccount:
    limit = item.get("monthly_limit")
    if limit is not None and not isinstance(limit, int):
        raise ConfigError("accounts: TimeToChat monthly_limit must be an integer or null")
    return TimeToChatAccount(
        service_id=str(item["service_id"]),
        password=str(item["password"]),
        senders=_strs(item, "senders"),
        test_account_expired=bool(item.get("test_account_expired", False)),
        monthly_limit=limit,
        push_url=item.get("push_url"),
    )


def accounts_from_json(
    data: Any,
) -> tuple[tuple[ByteHandAccount, ...], tuple[TimeToChatAccount, ...]]:
    """Accounts from ``{"bytehand": [...], "timetochat": [...]}`` (the CLI's ``--accounts``).

    A ByteHand item: ``client_id``, ``key``, ``signatures`` (strings, or ``{"text", "state",
    "description"}``), optional ``balance``, ``callback_url``. A TimeToChat item: ``service_id``,
    ``password``, ``senders``, optional ``test_account_expired``, ``monthly_limit``, ``push_url``.
    A missing provider key keeps the default account.
    """
    if not isinstance(data, dict):
        raise ConfigError("accounts: expected a JSON object with 'bytehand' and/or 'timetochat'")
    raw_bytehand = data.get("bytehand")
    raw_timetochat = data.get("timetochat")
    try:
        bytehand = (
            tuple(_bytehand_account(i) for i in raw_bytehand)
            if raw_bytehand
            else (ByteHandAccount(),)
        )
        timetochat = (
            tuple(_timetochat_account(i) for i in raw_timetochat)
            if raw_timetochat
            else (TimeToChatAccount(),)
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"accounts: malformed account entry ({exc})") from exc
    return bytehand, timetochat
