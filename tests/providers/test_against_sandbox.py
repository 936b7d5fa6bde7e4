"""ByteHandClient and TimeToChatClient against their simulators, over real HTTP on loopback.

The unit tests (``test_*_client.py``) pin the exact requests over MockTransport; these check that
the two halves agree: every client call works against the simulator, and every documented error
the simulator can be made to answer ends in the right class of :mod:`dispatcher.errors`, with the
provider's code, and without a credential in its message.

Each simulator is served once for the module and reset before every test (messages, counters,
rate windows, faults, balances and quotas). A test stays well under the 20 calls/s limit unless
it is about the limit; waiting for a message's state watches the ledger, not the API.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dispatcher.config import Secret
from dispatcher.errors import (
    AccountBlocked,
    CredentialsExpired,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    SendInDoubt,
)
from dispatcher.providers import timetochat_errors as ttc_codes
from dispatcher.providers.base import CallKind, build_http_client
from dispatcher.providers.bytehand import ByteHandClient, OutgoingSms
from dispatcher.providers.timetochat import TimeToChatClient, TtcOutgoing
from dispatcher.providers.tokens import MemoryTokenStore, TokenFetcher, TokenStore
from dispatcher.sandbox import (
    ByteHandAccount,
    ByteHandConfig,
    LedgerEntry,
    Lifecycle,
    TimeToChatAccount,
    TimeToChatConfig,
    create_bytehand_app,
    create_timetochat_app,
    serve_in_thread,
)
from dispatcher.states import MessageState as M

FAST = Lifecycle(sent_after_s=0.05, final_after_s=0.1)

BH_ID = "1000"
BH_KEY = "sandbox-bytehand-key-0123456789"
BH_POOR = ByteHandAccount(client_id="3000", key="poor-account-key-0042", balance=Decimal("1"))
BH_WRONG_KEY = "wrong-bytehand-key-31337"
BH_TO = "+79161234567"

TTC_BASE_PATH = "/mug/api/V1"
TTC_SERVICE = "123456"
TTC_PASSWORD = "sandbox-password"
TTC_SENDER = "0938000001"
TTC_EXPIRED = TimeToChatAccount(
    service_id="222222", password="expired-account-pass", test_account_expired=True
)
TTC_QUOTA = TimeToChatAccount(service_id="333333", password="quota-account-pass", monthly_limit=1)
TTC_WRONG_PASSWORD = "not-the-sandbox-password"

SECRETS = (
    BH_KEY,
    BH_POOR.key,
    BH_WRONG_KEY,
    TTC_PASSWORD,
    TTC_EXPIRED.password,
    TTC_QUOTA.password,
    TTC_WRONG_PASSWORD,
)


# --- fixtures and helpers ----------------------------------------------------------------------


@dataclasses.dataclass
class Simulator:
    app: FastAPI
    url: str

    @property
    def sandbox(self) -> Any:
        return self.app.state.sandbox

    def ledger(self) -> list[LedgerEntry]:
        return list(self.sandbox.ledger)

    def entry(self, message_id: str) -> LedgerEntry:
        entry: LedgerEntry | None = self.sandbox.ledger.get(message_id)
        assert entry is not None, f"{message_id} is not in the ledger"
        return entry

    def stats(self, account: str) -> Any:
        return self.sandbox.stats()[account]

    def faults(self, **changes: object) -> None:
        self.sandbox.faults.update(changes)

    def wait_for_state(self, message_id: str, state: str, timeout: float = 5.0) -> LedgerEntry:
        """The ledger entry once it reached ``state`` (no API call: no rate budget spent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.entry(message_id)
            if entry.state == state:
                return entry
            time.sleep(0.02)
        pytest.fail(f"{message_id} still {self.entry(message_id).state}, not {state}")


def _serve(app: FastAPI) -> Iterator[Simulator]:
    with serve_in_thread(app) as server:
        yield Simulator(app, server.url)


@pytest.fixture(scope="module")
def bytehand_sim() -> Iterator[Simulator]:
    config = ByteHandConfig(accounts=(ByteHandAccount(), BH_POOR), lifecycle=FAST)
    yield from _serve(create_bytehand_app(config))


@pytest.fixture(scope="module")
def timetochat_sim() -> Iterator[Simulator]:
    accounts = (TimeToChatAccount(), TTC_EXPIRED, TTC_QUOTA)
    yield from _serve(create_timetochat_app(TimeToChatConfig(accounts=accounts, lifecycle=FAST)))


@pytest.fixture(scope="module")
def short_token_sim() -> Iterator[Simulator]:
    """TimeToChat whose tokens live one second (only the expiry test uses it)."""
    config = TimeToChatConfig(lifecycle=FAST, token_lifetime_s=1.0)
    yield from _serve(create_timetochat_app(config))


@pytest.fixture
def bytehand(bytehand_sim: Simulator) -> Simulator:
    bytehand_sim.sandbox.reset()
    return bytehand_sim


@pytest.fixture
def timetochat(timetochat_sim: Simulator) -> Simulator:
    timetochat_sim.sandbox.reset()
    return timetochat_sim


class Wire:
    """What the clients did: the gate's kinds and the HTTP requests that really went out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kinds: list[CallKind] = []
        self.requests: list[httpx.Request] = []
        self.held = 0
        self.sent_outside_gate = 0

    @contextmanager
    def gate(self, kind: CallKind) -> Iterator[None]:
        with self._lock:
            self.kinds.append(kind)
            self.held += 1
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1

    def hook(self, request: httpx.Request) -> None:
        with self._lock:
            self.requests.append(request)
            self.sent_outside_gate += self.held == 0

    def http(self, connect_timeout: float = 2.0, read_timeout: float = 5.0) -> httpx.Client:
        client = build_http_client(connect_timeout, read_timeout)
        client.event_hooks = {"request": [self.hook], "response": []}
        return client

    def tokens(self) -> list[str]:
        """Every Bearer token the client presented, in order."""
        return [
            r.headers["authorization"].removeprefix("Bearer ")
            for r in self.requests
            if "authorization" in r.headers
        ]

    def assert_one_gate_per_request(self) -> None:
        """One slot per request, held while the request went out (the limiter re-stamps the
        slot when the gate is left, so a request outside it would escape the window)."""
        assert len(self.kinds) == len(self.requests)
        assert self.sent_outside_gate == 0
        assert self.held == 0


@pytest.fixture
def wire() -> Iterator[Wire]:
    wire = Wire()
    yield wire
    wire.assert_one_gate_per_request()


@pytest.fixture
def http(wire: Wire) -> Iterator[httpx.Client]:
    with wire.http() as client:
        yield client


def bh_client(
    sim: Simulator, http: httpx.Client, wire: Wire, client_id: str = BH_ID, key: str = BH_KEY
) -> ByteHandClient:
    return ByteHandClient(sim.url, client_id, Secret(key), http, gate=wire.gate)


def ttc_client(
    sim: Simulator,
    http: httpx.Client,
    wire: Wire,
    *,
    service_id: str = TTC_SERVICE,
    password: str = TTC_PASSWORD,
    tokens: TokenStore | None = None,
) -> TimeToChatClient:
    return TimeToChatClient(
        sim.url + TTC_BASE_PATH,
        service_id,
        Secret(password),
        http,
        tokens if tokens is not None else MemoryTokenStore(),
        gate=wire.gate,
    )


def ttc_message(
    to: str = "0601020304",
    text: str = "Bonjour",
    *,
    sender: str = TTC_SENDER,
    ext_ref: str | None = None,
    validity: datetime | None = None,
    unicode: bool = False,
) -> TtcOutgoing:
    return TtcOutgoing(to, sender, text, ext_ref, validity, unicode)


def assert_no_secret(exc: BaseException, wire: Wire) -> None:
    """Neither our exception nor anything it chains to names a key, password or token."""
    secrets = [*SECRETS, *wire.tokens()]
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, ProviderError):
        texts.append(exc.reason)
    leaked = [s for s in secrets if any(s in text for text in texts)]
    assert not leaked, f"a credential leaked into {texts!r}"


def expect_error(
    cls: type[ProviderError], code: str | None, call: Callable[[], object], wire: Wire
) -> ProviderError:
    """``call`` raises exactly ``cls`` (not a subclass) with ``code``, and leaks no secret."""
    with pytest.raises(cls) as info:
        call()
    exc = info.value
    assert type(exc) is cls, f"{type(exc).__name__}: {exc}"
    if code is not None:
        assert exc.code == code, exc.reason
    assert_no_secret(exc, wire)
    return exc


def hammer(call: Callable[[], object], batch: int = 30, rounds: int = 5) -> list[object]:
    """Concurrent calls until one is throttled (or ``rounds`` batches); results or exceptions."""

    def attempt(_: int) -> object:
        try:
            return call()
        except ProviderError as exc:
            return exc

    outcomes: list[object] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(rounds):
            outcomes += pool.map(attempt, range(batch))
            if any(isinstance(o, ProviderThrottled) for o in outcomes):
                break
    return outcomes


# --- ByteHand ----------------------------------------------------------------------------------


def test_bytehand_send_returns_the_id_the_simulator_accepted(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    message_id = client.send(BH_TO, "SMSINFO", "Hello from the dispatcher")
    entry = bytehand.entry(message_id)
    assert (entry.account, entry.to, entry.sender) == (BH_ID, BH_TO, "SMSINFO")
    assert entry.text == "Hello from the dispatcher"
    assert entry.parts == 1
    assert wire.kinds == ["send"]


def test_bytehand_text_of_800_characters_is_the_longest_accepted(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    message_id = client.send(BH_TO, "SMSINFO", "x" * 800)
    assert bytehand.entry(message_id).parts == 6  # 800 / 153 septets per part
    expect_error(ProviderRejected, "6", lambda: client.send(BH_TO, "SMSINFO", "x" * 801), wire)
    assert len(bytehand.ledger()) == 1


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(("+79161234500", "SMSINFO", "Hi", "11"), id="receiver-ending-00"),
        pytest.param(("not-a-number", "SMSINFO", "Hi", "11"), id="receiver-malformed"),
        pytest.param((BH_TO, "SMSINFO", "", "6"), id="text-empty"),
    ],
)
def test_bytehand_send_refusals_are_rejections(
    bytehand: Simulator, http: httpx.Client, wire: Wire, case: tuple[str, str, str, str]
) -> None:
    to, sender, text, code = case
    client = bh_client(bytehand, http, wire)
    expect_error(ProviderRejected, code, lambda: client.send(to, sender, text), wire)
    assert bytehand.ledger() == []


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param("PENDING", id="sender-awaiting-moderation"),
        pytest.param("REFUSED", id="sender-refused"),
        pytest.param("NOBODY", id="sender-unknown"),
    ],
)
def test_bytehand_sender_refusals_block_the_account(
    bytehand: Simulator, http: httpx.Client, wire: Wire, sender: str
) -> None:
    client = bh_client(bytehand, http, wire)
    expect_error(AccountBlocked, "10", lambda: client.send(BH_TO, sender, "Hi"), wire)
    assert bytehand.ledger() == []


def test_bytehand_wrong_credentials_block_the_account(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    wrong_key = bh_client(bytehand, http, wire, key=BH_WRONG_KEY)
    expect_error(AccountBlocked, "2", lambda: wrong_key.send(BH_TO, "SMSINFO", "Hi"), wire)
    expect_error(AccountBlocked, "2", wrong_key.balance, wire)
    unknown_id = bh_client(bytehand, http, wire, client_id="999999")
    expect_error(AccountBlocked, "2", lambda: unknown_id.send(BH_TO, "SMSINFO", "Hi"), wire)
    assert bytehand.ledger() == []


def test_bytehand_balance_is_exact_and_charged_per_part(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    balance = client.balance()
    assert isinstance(balance, Decimal)
    assert balance == Decimal("10000")
    message_id = client.send(BH_TO, "SMSINFO", "y" * 200)  # two parts
    details = client.details(message_id)
    assert (details.parts, details.cost) == (2, Decimal("2"))
    assert client.balance() == Decimal("9998")


def test_bytehand_empty_balance_blocks_the_account(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    """The 1-rouble account pays for one part; the next message is refused with status 4."""
    client = bh_client(bytehand, http, wire, client_id=BH_POOR.client_id, key=BH_POOR.key)
    client.send(BH_TO, "SMSINFO", "the last rouble")
    assert client.balance() == Decimal("0")
    expect_error(AccountBlocked, "4", lambda: client.send(BH_TO, "SMSINFO", "one more"), wire)
    assert len(bytehand.ledger()) == 1


def test_bytehand_send_multi_reports_each_item_in_request_order(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    items = [
        OutgoingSms(BH_TO, "SMSINFO", "first"),
        OutgoingSms("+79161234500", "SMSINFO", "bad receiver"),
        OutgoingSms("+79161234568", "PENDING", "bad sender"),
        OutgoingSms("+79161234513", "SMSINFO", "fourth"),
        OutgoingSms("+79161234569", "SMSINFO", "z" * 801),
        OutgoingSms("+79161234570", "SMSINFO", "sixth"),
    ]
    results = client.send_multi(items)
    assert len(results) == len(items)
    expected_errors = {
        1: ("11", ProviderRejected),
        2: ("10", AccountBlocked),
        4: ("6", ProviderRejected),
    }
    for index, (item, result) in enumerate(zip(items, results, strict=True)):
        if index in expected_errors:
            assert result.message_id is None
            assert (result.error.code, type(result.error)) == expected_errors[index]
            assert_no_secret(result.error, wire)
        else:
            assert result.error is None
            assert result.message_id is not None
            entry = bytehand.entry(result.message_id)
            assert (entry.to, entry.text) == (item.to, item.text)
    assert len(bytehand.ledger()) == 3
    assert wire.kinds == ["send"]


def test_bytehand_send_multi_of_only_bad_items_fails_only_the_items(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    results = client.send_multi(
        [OutgoingSms("+79161234500", "SMSINFO", "a"), OutgoingSms(BH_TO, "REFUSED", "b")]
    )
    assert [(r.message_id, r.error.code if r.error else None) for r in results] == [
        (None, "11"),
        (None, "10"),
    ]
    assert bytehand.ledger() == []


def test_bytehand_send_after_in_the_future_holds_the_message_new(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    later = datetime.now(UTC) + timedelta(hours=1)
    held = client.send(BH_TO, "SMSINFO", "tomorrow's news", send_after=later)
    [batch_held] = client.send_multi([OutgoingSms("+79161234571", "SMSINFO", "also later")], later)
    past = client.send(
        "+79161234572", "SMSINFO", "now", send_after=datetime(2020, 1, 1, tzinfo=UTC)
    )
    bytehand.wait_for_state(past, "DELIVERED")  # the lifecycle ran its course meanwhile
    for message_id in (held, batch_held.message_id):
        assert message_id is not None
        status = client.status(message_id)
        assert (status.provider_state, status.state) == ("NEW", M.SUBMITTED)
        assert bytehand.entry(message_id).state == "NEW"
    assert client.details(held).state is M.SUBMITTED


@pytest.mark.parametrize(
    "case",
    [
        ("67", "DELIVERED", M.DELIVERED),
        ("13", "UNDELIVERABLE", M.UNDELIVERABLE),
        ("14", "EXPIRED", M.EXPIRED),
        ("15", "REJECTED", M.UNDELIVERABLE),
        ("99", "ACCEPTED", M.SENT),
    ],
)
def test_bytehand_status_and_details_after_the_lifecycle(
    bytehand: Simulator, http: httpx.Client, wire: Wire, case: tuple[str, str, M]
) -> None:
    ending, provider_state, state = case
    client = bh_client(bytehand, http, wire)
    message_id = client.send("+791612345" + ending, "SMSINFO", "status check")
    entry = bytehand.wait_for_state(message_id, provider_state)
    status = client.status(message_id)
    assert (status.provider_state, status.state) == (provider_state, state)
    details = client.details(message_id)
    assert (details.provider_state, details.state) == (provider_state, state)
    assert (details.parts, details.cost) == (1, Decimal("1"))
    assert details.posted_at is not None
    assert details.updated_at is not None
    assert details.posted_at <= details.updated_at
    # The simulator reports tenths of a second; ours are truncated to whole seconds.
    assert abs(details.updated_at - entry.updated_at) < timedelta(seconds=1)
    assert wire.kinds == ["send", "poll", "poll"]


def test_bytehand_unknown_message_is_rejected_not_found(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    expect_error(ProviderRejected, "9", lambda: client.status("123"), wire)
    expect_error(ProviderRejected, "9", lambda: client.details("123"), wire)


def test_bytehand_signatures_list_get_submit_delete(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    every = client.signatures()
    assert {(s.text, s.state) for s in every} == {
        ("SMSINFO", "ACCEPTED"),
        ("PENDING", "NEW"),
        ("REFUSED", "REJECTED"),
    }
    assert all(s.created_at is not None for s in every)
    [accepted] = client.signatures("ACCEPTED")
    assert client.signature(accepted.id) == accepted
    new_id = client.submit_signature("NEWSENDER", "our brand")
    submitted = client.signature(new_id)
    assert (submitted.text, submitted.description, submitted.state) == (
        "NEWSENDER",
        "our brand",
        "NEW",
    )
    assert new_id in {s.id for s in client.signatures("NEW")}
    # Not moderated yet: it cannot send.
    expect_error(AccountBlocked, "10", lambda: client.send(BH_TO, "NEWSENDER", "hi"), wire)
    client.delete_signature(new_id)
    expect_error(ProviderRejected, "9", lambda: client.signature(new_id), wire)
    expect_error(ProviderRejected, "9", lambda: client.delete_signature(new_id), wire)
    assert len(client.signatures()) == 3


def test_bytehand_over_20_calls_a_second_are_throttled(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    outcomes = hammer(client.balance)
    throttled = [o for o in outcomes if isinstance(o, ProviderError)]
    assert throttled, "no call was refused by the rate limit"
    for exc in throttled:
        assert type(exc) is ProviderThrottled
        assert exc.code == "17"
        assert_no_secret(exc, wire)
    served = [o for o in outcomes if isinstance(o, Decimal)]
    assert len(served) >= 20
    stats = bytehand.stats(BH_ID)
    assert (stats.calls_served, stats.rate_limited) == (len(served), len(throttled))
    assert stats.max_calls_in_window <= 20


def test_bytehand_fail_rate_one_is_unavailable_and_accepts_nothing(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    bytehand.faults(fail_rate=1.0)
    expect_error(ProviderUnavailable, "1", lambda: client.send(BH_TO, "SMSINFO", "Hi"), wire)
    expect_error(
        ProviderUnavailable,
        "1",
        lambda: client.send_multi([OutgoingSms(BH_TO, "SMSINFO", "Hi")]),
        wire,
    )
    expect_error(ProviderUnavailable, "1", client.balance, wire)
    assert bytehand.ledger() == []
    assert bytehand.stats(BH_ID).faults_failed == 3


def test_bytehand_stalled_send_is_in_doubt_and_was_accepted(
    bytehand: Simulator, wire: Wire
) -> None:
    """The answer comes after the read timeout: in doubt, yet the message is in the ledger.

    The stall applies to accepted sends only: status and balance answer at once meanwhile.
    """
    bytehand.faults(stall_rate=1.0, stall_s=5.0)
    with wire.http(1.0, 0.5) as http:
        client = bh_client(bytehand, http, wire)
        started = time.monotonic()
        exc = expect_error(
            SendInDoubt, "ReadTimeout", lambda: client.send(BH_TO, "SMSINFO", "stalled"), wire
        )
        assert time.monotonic() - started < 3.0
        assert isinstance(exc.__cause__, httpx.ReadTimeout)
        [entry] = bytehand.ledger()
        assert (entry.to, entry.text) == (BH_TO, "stalled")
        assert bytehand.stats(BH_ID).faults_stalled == 1
        assert client.status(entry.id).provider_state in ("NEW", "ACCEPTED", "DELIVERED")
        assert client.balance() == Decimal("9999")
        # A refused send accepted nothing, so it is not stalled either.
        expect_error(AccountBlocked, "10", lambda: client.send(BH_TO, "PENDING", "x"), wire)
    assert bytehand.stats(BH_ID).faults_stalled == 1


def test_bytehand_dropped_send_multi_is_in_doubt_for_the_whole_batch(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    bytehand.faults(stall_rate=1.0, stall_mode="drop")
    client = bh_client(bytehand, http, wire)
    items = [OutgoingSms(BH_TO, "SMSINFO", "one"), OutgoingSms("+79161234568", "SMSINFO", "two")]
    expect_error(SendInDoubt, None, lambda: client.send_multi(items), wire)
    assert sorted(e.text for e in bytehand.ledger()) == ["one", "two"]


def test_bytehand_gate_is_passed_once_per_http_request(
    bytehand: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = bh_client(bytehand, http, wire)
    message_id = client.send(BH_TO, "SMSINFO", "gate")
    client.send_multi([OutgoingSms("+79161234568", "SMSINFO", "gate too")])
    client.status(message_id)
    client.details(message_id)
    client.balance()
    [first, *_] = client.signatures()
    client.signature(first.id)
    with pytest.raises(ProviderRejected):
        client.send("+79161234500", "SMSINFO", "refused")
    assert wire.kinds == [
        "send",
        "send",
        "poll",
        "poll",
        "account",
        "account",
        "account",
        "send",
    ]
    assert len(wire.requests) == len(wire.kinds)
    assert bytehand.stats(BH_ID).calls_served == len(wire.kinds)


# --- TimeToChat --------------------------------------------------------------------------------


def test_timetochat_token_then_send_returns_the_id_and_keeps_ext_ref(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    message_id = client.send(ttc_message(ext_ref="campaign-7:recipient-42"))
    entry = timetochat.entry(message_id)
    assert (entry.account, entry.to, entry.sender, entry.text) == (
        TTC_SERVICE,
        "+33601020304",
        TTC_SENDER,
        "Bonjour",
    )
    assert entry.ext_ref == "campaign-7:recipient-42"
    assert wire.kinds == ["token", "send"]
    # The token is cached: a second send does not ask for one.
    client.send(ttc_message("+33601020305"))
    assert wire.kinds == ["token", "send", "send"]


def test_timetochat_status_of_a_long_message_has_per_part_history(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    text = "a" * 200  # over 160 GSM-7 characters: two parts
    message_id = client.send(ttc_message(text=text, ext_ref="long-1"))
    timetochat.wait_for_state(message_id, "CRA_SMS_RECEIVED")
    status = client.status(message_id)
    assert (status.message_id, status.to, status.text) == (message_id, "+33601020304", text)
    assert (status.sender, status.ext_ref) == (TTC_SENDER, "long-1")
    assert (status.provider_state, status.state) == ("CRA_SMS_RECEIVED", M.DELIVERED)
    assert status.date is not None
    assert status.date.tzinfo is not None
    for part in ("1/2", "2/2"):
        assert [e.status for e in status.history if e.part == part] == [
            "NEW",
            "CRA_SMS_SENT",
            "CRA_SMS_RECEIVED",
        ]
    assert {e.part for e in status.history} == {"1/2", "2/2"}
    assert wire.kinds == ["token", "send", "poll"]


def test_timetochat_unicode_text_goes_through(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    message_id = client.send(ttc_message(text="Привет, мир", unicode=True))
    entry = timetochat.entry(message_id)
    assert (entry.text, entry.unicode) == ("Привет, мир", True)
    assert client.status(message_id).text == "Привет, мир"


@pytest.mark.parametrize(
    "case",
    [
        ("05", "CRA_SMS_RECEIVED", M.DELIVERED),
        ("13", "CRA_SMS_WRONGNUMBER", M.UNDELIVERABLE),
        ("14", "CRA_SMS_FALSENUMBER", M.UNDELIVERABLE),
        ("15", "CRA_SMS_OPFULL", M.UNDELIVERABLE),
        ("99", "CRA_SMS_SENT", M.SENT),
    ],
)
def test_timetochat_status_after_the_lifecycle(
    timetochat: Simulator, http: httpx.Client, wire: Wire, case: tuple[str, str, M]
) -> None:
    ending, provider_state, state = case
    client = ttc_client(timetochat, http, wire)
    message_id = client.send(ttc_message("06010203" + ending))
    timetochat.wait_for_state(message_id, provider_state)
    status = client.status(message_id)
    assert (status.provider_state, status.state) == (provider_state, state)
    assert [e.status for e in status.history] == ["NEW", "CRA_SMS_SENT"] + (
        [provider_state] if provider_state != "CRA_SMS_SENT" else []
    )


def test_timetochat_validity_passing_before_delivery_ends_in_error(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    validity = datetime.now(UTC) + timedelta(seconds=1.0)
    message_id = client.send(ttc_message("0601020399", validity=validity))  # never final
    timetochat.wait_for_state(message_id, "CRA_SMS_ERROR")
    status = client.status(message_id)
    assert (status.provider_state, status.state) == ("CRA_SMS_ERROR", M.UNDELIVERABLE)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            (ttc_message(text=""), ProviderRejected, ttc_codes.MISSING_PARAMETER), id="text-empty"
        ),
        pytest.param(
            (ttc_message(to=""), ProviderRejected, ttc_codes.MISSING_PARAMETER), id="to-empty"
        ),
        pytest.param(
            (
                ttc_message(validity=datetime(2020, 1, 1, tzinfo=UTC)),
                ProviderRejected,
                ttc_codes.INVALID_VALIDITY_DATE,
            ),
            id="validity-past",
        ),
        pytest.param(
            (ttc_message("0601020300"), ProviderRejected, ttc_codes.INVALID_RECIPIENT),
            id="to-ending-00",
        ),
        pytest.param(
            (ttc_message("12345"), ProviderRejected, ttc_codes.INVALID_RECIPIENT), id="to-malformed"
        ),
        pytest.param(
            (ttc_message(text="Привет"), ProviderRejected, ttc_codes.INVALID_PARAMETER),
            id="cyrillic-without-unicode",
        ),
        pytest.param(
            (ttc_message(text="a" * 1225), ProviderRejected, ttc_codes.TEXT_TOO_LONG),
            id="gsm-over-1224",
        ),
        pytest.param(
            (ttc_message(text="я" * 529, unicode=True), ProviderRejected, ttc_codes.TEXT_TOO_LONG),
            id="ucs2-over-528",
        ),
        pytest.param(
            (ttc_message(sender="0938000002"), AccountBlocked, ttc_codes.FORBIDDEN_SENDER),
            id="sender-forbidden",
        ),
    ],
)
def test_timetochat_send_refusals_map_by_code(
    timetochat: Simulator,
    http: httpx.Client,
    wire: Wire,
    case: tuple[TtcOutgoing, type[ProviderError], str],
) -> None:
    message, cls, code = case
    client = ttc_client(timetochat, http, wire)
    expect_error(cls, code, lambda: client.send(message), wire)
    assert timetochat.ledger() == []
    assert wire.kinds == ["token", "send"]


def test_timetochat_ext_ref_over_150_never_leaves_the_client(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    """INVALID_EXT_REF cannot be provoked through the client: it refuses before any request."""
    client = ttc_client(timetochat, http, wire)
    with pytest.raises(ValueError, match="150"):
        client.send(ttc_message(ext_ref="r" * 151))
    assert wire.requests == []
    message_id = client.send(ttc_message(ext_ref="r" * 150))
    assert timetochat.entry(message_id).ext_ref == "r" * 150


def test_timetochat_wrong_password_blocks_the_account(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire, password=TTC_WRONG_PASSWORD)
    code = ttc_codes.AUTHENTICATION_FAILED
    expect_error(AccountBlocked, code, lambda: client.send(ttc_message()), wire)
    expect_error(AccountBlocked, code, lambda: client.status("5bb31c2f91ea924bdd42d75a"), wire)
    unknown = ttc_client(timetochat, http, wire, service_id="999999")
    expect_error(AccountBlocked, code, lambda: unknown.send(ttc_message()), wire)
    assert wire.kinds == ["token", "token", "token"]
    assert timetochat.ledger() == []


def test_timetochat_expired_test_account_is_blocked(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(
        timetochat, http, wire, service_id=TTC_EXPIRED.service_id, password=TTC_EXPIRED.password
    )
    code = ttc_codes.TEST_ACCOUNT_EXPIRED
    expect_error(AccountBlocked, code, lambda: client.send(ttc_message()), wire)
    assert timetochat.ledger() == []


def test_timetochat_monthly_limit_reached_blocks_the_account(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(
        timetochat, http, wire, service_id=TTC_QUOTA.service_id, password=TTC_QUOTA.password
    )
    client.send(ttc_message())  # the one message left this month
    code = ttc_codes.MONTHLY_LIMIT_REACHED
    expect_error(AccountBlocked, code, lambda: client.send(ttc_message("0601020305")), wire)
    assert len(timetochat.ledger()) == 1


def test_timetochat_unknown_message_is_rejected_not_found(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    expect_error(
        ProviderRejected,
        ttc_codes.NOT_FOUND,
        lambda: client.status("000000000000000000000000"),
        wire,
    )
    # Another service's message is unknown to this one.
    message_id = client.send(ttc_message())
    other = ttc_client(
        timetochat, http, wire, service_id=TTC_EXPIRED.service_id, password=TTC_EXPIRED.password
    )
    expect_error(ProviderRejected, ttc_codes.NOT_FOUND, lambda: other.status(message_id), wire)


def test_timetochat_over_20_calls_a_second_are_throttled(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    message_id = client.send(ttc_message())
    outcomes = hammer(lambda: client.status(message_id))
    throttled = [o for o in outcomes if isinstance(o, ProviderError)]
    assert throttled, "no call was refused by the rate limit"
    for exc in throttled:
        assert type(exc) is ProviderThrottled
        assert exc.code == ttc_codes.TOO_MANY_REQUESTS
        assert exc.retry_after is None  # the simulator sends no Retry-After
        assert_no_secret(exc, wire)
    stats = timetochat.stats(TTC_SERVICE)
    assert stats.rate_limited == len(throttled)
    assert stats.calls_served == 2 + len(outcomes) - len(throttled)  # + token and send
    assert stats.max_calls_in_window <= 20


def test_timetochat_fail_rate_one_is_unavailable_and_accepts_nothing(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    message_id = client.send(ttc_message())  # token cached before the fault
    timetochat.faults(fail_rate=1.0)
    code = ttc_codes.INTERNAL_ERROR
    expect_error(ProviderUnavailable, code, lambda: client.send(ttc_message("0601020305")), wire)
    expect_error(ProviderUnavailable, code, lambda: client.status(message_id), wire)
    fresh = ttc_client(timetochat, http, wire)  # its token request fails too
    expect_error(ProviderUnavailable, code, lambda: fresh.send(ttc_message("0601020306")), wire)
    assert [e.id for e in timetochat.ledger()] == [message_id]
    assert timetochat.stats(TTC_SERVICE).faults_failed == 3


def test_timetochat_stalled_send_is_in_doubt_and_was_accepted(
    timetochat: Simulator, wire: Wire
) -> None:
    timetochat.faults(stall_rate=1.0, stall_s=5.0)
    with wire.http(1.0, 0.5) as http:
        client = ttc_client(timetochat, http, wire)
        send = lambda: client.send(ttc_message(ext_ref="in-doubt-1"))  # noqa: E731
        exc = expect_error(SendInDoubt, "ReadTimeout", send, wire)
        assert isinstance(exc.__cause__, httpx.ReadTimeout)
        [entry] = timetochat.ledger()
        assert entry.ext_ref == "in-doubt-1"
        assert client.status(entry.id).ext_ref == "in-doubt-1"  # reads are not stalled
    assert timetochat.stats(TTC_SERVICE).faults_stalled == 1


def test_timetochat_expired_token_is_refreshed_once_and_the_send_succeeds(
    short_token_sim: Simulator, http: httpx.Client, wire: Wire
) -> None:
    """The client caches the token for 28 minutes; the provider kills it after one second."""
    sim = short_token_sim
    sim.sandbox.reset()
    client = ttc_client(sim, http, wire)
    client.send(ttc_message())
    time.sleep(1.2)
    message_id = client.send(ttc_message("0601020305"))
    assert sim.entry(message_id).to == "+33601020305"
    assert wire.kinds == ["token", "send", "send", "token", "send"]
    assert wire.kinds.count("token") == 2
    first, stale, fresh = wire.tokens()
    assert stale == first
    assert fresh != first
    assert sim.stats(TTC_SERVICE).calls_served == 5
    assert len(sim.ledger()) == 2


class _StickyStore:
    """A token store serving ``bad`` until discarded (or forever when ``sticky``)."""

    def __init__(self, bad: str, *, sticky: bool) -> None:
        self.bad: Secret | None = Secret(bad)
        self.sticky = sticky
        self.inner = MemoryTokenStore()
        self.discarded: list[Secret] = []

    def get(self, fetch: TokenFetcher, ttl: timedelta) -> Secret:
        return self.bad if self.bad is not None else self.inner.get(fetch, ttl)

    def discard(self, token: Secret) -> None:
        self.discarded.append(token)
        if not self.sticky and token == self.bad:
            self.bad = None
        self.inner.discard(token)


def test_timetochat_invalid_cached_token_is_replaced(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    store = _StickyStore("not.a.token", sticky=False)
    client = ttc_client(timetochat, http, wire, tokens=store)
    message_id = client.send(ttc_message())
    assert timetochat.entry(message_id).text == "Bonjour"
    assert wire.kinds == ["send", "token", "send"]
    assert store.discarded == [Secret("not.a.token")]


def test_timetochat_token_refused_twice_is_credentials_expired(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    store = _StickyStore("not.a.token", sticky=True)
    client = ttc_client(timetochat, http, wire, tokens=store)
    send = lambda: client.send(ttc_message())  # noqa: E731
    expect_error(CredentialsExpired, ttc_codes.INVALID_TOKEN, send, wire)
    assert wire.kinds == ["send", "send"]
    assert timetochat.ledger() == []


def test_timetochat_gate_is_passed_once_per_http_request(
    timetochat: Simulator, http: httpx.Client, wire: Wire
) -> None:
    client = ttc_client(timetochat, http, wire)
    message_id = client.send(ttc_message())
    client.status(message_id)
    with pytest.raises(ProviderRejected):
        client.status("000000000000000000000000")
    with pytest.raises(ProviderRejected):
        client.send(ttc_message("0601020300"))
    assert wire.kinds == ["token", "send", "poll", "poll", "send"]
    assert [r.method for r in wire.requests] == ["POST", "POST", "GET", "GET", "POST"]
    assert timetochat.stats(TTC_SERVICE).calls_served == len(wire.kinds)
