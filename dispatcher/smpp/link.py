"""One bound SMPP session with the TimeToChat connector: a socket, a reader thread, a window.

The link is blocking and small on purpose. One thread (the gateway's) sends requests; the
reader thread answers what the server asks (``enquire_link``, ``unbind``; ``deliver_sm`` once
a third thread has applied it) and hands each response to the request that waits for it.
Every request we send (bind, ``submit_sm``, ``enquire_link``, ``unbind``) first takes a slot
of the fleet-wide budget, and its slot is stamped when its response arrives, after the server
has counted it (see :mod:`dispatcher.ratelimit`). Requests the connector does not support
cannot be built at all.

TLS checks the certificate *and* the host name (``server_hostname`` goes in the handshake),
against the system's CAs or ``ca_file``.

Errors: a dropped or silent link raises :class:`LinkLost`; a refused bind :class:`BindRefused`
(an :class:`~dispatcher.errors.AccountBlocked`: wrong credentials do not fix themselves).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from dispatcher.config import SmppSettings
from dispatcher.constants import TIMETOCHAT
from dispatcher.errors import AccountBlocked, ProviderUnavailable, RateLimiterUnavailable
from dispatcher.providers.base import CallKind
from dispatcher.smpp.pdu import Command, Framer, Pdu, PduError, Status, decode, encode

__all__ = ["BindRefused", "Budget", "Link", "LinkLost", "NotSent", "open_socket"]

log = logging.getLogger(__name__)

INTERFACE_VERSION = 0x34
DeliverHandler = Callable[[Pdu], int]
"""Handles a deliver_sm; returns the command_status of our deliver_sm_resp."""


class Budget(Protocol):
    """The part of :class:`~dispatcher.ratelimit.FleetLimiter` a link spends."""

    def wait_turn(self, kind: CallKind) -> str: ...

    def complete(self, ticket: str) -> None: ...


class LinkLost(ProviderUnavailable):
    """The connection dropped, or the server stopped answering: reconnect."""

    def __init__(self, message: str) -> None:
        super().__init__(message, provider=TIMETOCHAT, code="link")


class NotSent(LinkLost):
    """The PDU was not written: one ``send`` of a PDU this small fails whole, so the server
    never saw it and it may be sent again."""


class BindRefused(AccountBlocked):
    """bind_transceiver refused (ESME_RBINDFAIL): the credentials are wrong."""


def open_socket(settings: SmppSettings, timeout_s: float) -> socket.socket:
    """A connected socket, wrapped in TLS with host name checking for ``smpps://``."""
    try:
        raw = socket.create_connection((settings.host, settings.port), timeout=timeout_s)
    except OSError as exc:
        raise LinkLost(f"cannot connect to {settings.host}:{settings.port}: {exc}") from exc
    if not settings.tls:
        return raw
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    try:
        return context.wrap_socket(raw, server_hostname=settings.host)
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        raise LinkLost(f"TLS with {settings.host} failed: {exc}") from exc


class Link:
    """A bound transceiver session. Use :meth:`bind` once, then :meth:`request` from one thread
    (the reader thread only answers)."""

    def __init__(
        self,
        sock: socket.socket,
        budget: Budget,
        on_deliver: DeliverHandler,
        *,
        response_timeout_s: float,
    ) -> None:
        self._sock = sock
        self._budget = budget
        self._on_deliver = on_deliver
        self.response_timeout_s = response_timeout_s
        self._write_lock = threading.Lock()
        self._pending: dict[int, tuple[Future[Pdu], str]] = {}
        self._pending_lock = threading.Lock()
        self._sequence = 0
        self.closed = threading.Event()
        self._reason = "link closed"
        sock.settimeout(None)
        # deliver_sm are applied (database writes) on their own thread, in order, so that
        # reading submit_sm_resp — and so freeing budget slots — never waits for the database.
        self._deliveries: queue.Queue[Pdu | None] = queue.Queue()
        self._deliverer = threading.Thread(
            target=self._deliver_loop, name="smpp-deliver", daemon=True
        )
        self._deliverer.start()
        self._reader = threading.Thread(target=self._read_loop, name="smpp-reader", daemon=True)
        self._reader.start()

    # Sending

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def _write(self, data: bytes) -> None:
        """Write one PDU. A failed write raises :class:`NotSent` and leaves the link to the
        reader, which reads the answers that did arrive before it finds the link dead."""
        try:
            with self._write_lock:
                self._sock.sendall(data)
        except OSError as exc:
            raise NotSent(f"write failed: {exc}") from exc

    def request(
        self,
        command: Command,
        params: dict[str, int | str | bytes] | None = None,
        tlvs: dict[int, bytes] | None = None,
        *,
        ticket: str | None = None,
    ) -> Future[Pdu]:
        """Send one request with the budget's ``ticket`` (waited for here if not given); the
        future gets its response, or :class:`LinkLost` if the link drops first."""
        if self.closed.is_set():
            if ticket is not None:
                self._budget.complete(ticket)
            raise LinkLost(self._reason)
        if ticket is None:
            ticket = self._budget.wait_turn("send")
        future: Future[Pdu] = Future()
        sequence = self._next_sequence()
        with self._pending_lock:
            self._pending[sequence] = (future, ticket)
        try:
            self._write(encode(Pdu(command, sequence, params=params or {}, tlvs=tlvs or {})))
        except NotSent:
            with self._pending_lock:
                self._pending.pop(sequence, None)
            self._budget.complete(ticket)
            raise
        return future

    def call(self, command: Command, params: dict[str, int | str | bytes] | None = None) -> Pdu:
        """A request and its response (bind, enquire_link, unbind)."""
        future = self.request(command, params)
        try:
            return future.result(timeout=self.response_timeout_s)
        except TimeoutError as exc:
            self._lose(f"no answer to {command.name} in {self.response_timeout_s} s")
            raise LinkLost(self._reason) from exc

    def bind(self, system_id: str, password: str) -> None:
        """bind_transceiver: the only bind the connector supports."""
        answer = self.call(
            Command.BIND_TRANSCEIVER,
            {"system_id": system_id, "password": password, "interface_version": INTERFACE_VERSION},
        )
        if answer.status != Status.ESME_ROK:
            self.close()
            code = Status(answer.status).name if answer.status in Status._value2member_map_ else ""
            raise BindRefused("bind_transceiver refused", provider=TIMETOCHAT, code=code)

    def unbind(self) -> None:
        """The graceful goodbye; the link is closed whatever the server says."""
        try:
            if not self.closed.is_set():
                self.call(Command.UNBIND)
        except (LinkLost, RateLimiterUnavailable) as exc:
            log.info("smpp: closing without unbind_resp: %s", exc)
        finally:
            self.close()

    def outstanding(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def close(self) -> None:
        self.drop("link closed")

    def drop(self, reason: str) -> None:
        """Cut the link (the server went silent): every unanswered request fails."""
        self._lose(reason)
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=2)

    # Receiving (reader thread)

    def _lose(self, reason: str) -> None:
        """Close the socket once and fail every request still waiting for its response."""
        if self.closed.is_set():
            return
        self._reason = reason
        self.closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with self._pending_lock:
            waiting = list(self._pending.values())
            self._pending.clear()
        for future, ticket in waiting:
            self._budget.complete(ticket)  # it may have arrived: it counts
            future.set_exception(LinkLost(reason))
        self._deliveries.put(None)

    def _deliver_loop(self) -> None:
        while (pdu := self._deliveries.get()) is not None:
            if self.closed.is_set():
                continue  # unanswered, the server delivers it again after the next bind
            try:
                status = self._on_deliver(pdu)
            except Exception:  # a thread boundary: answer "try later" rather than die silently
                log.exception("smpp: deliver_sm %s not handled", pdu.sequence)
                status = Status.ESME_RX_T_APPN
            self._answer(Command.DELIVER_SM_RESP, pdu, status)

    def _read_loop(self) -> None:
        framer = Framer()
        try:
            while not self.closed.is_set():
                data = self._sock.recv(65536)
                if not data:
                    self._lose("the server closed the link")
                    return
                for frame in framer.feed(data):
                    self._handle(decode(frame))
        except (OSError, PduError) as exc:
            self._lose(f"read failed: {exc}")

    def _answer(self, command: Command, request: Pdu, status: int = 0) -> None:
        params: dict[str, int | str | bytes] = {"message_id": ""} if status == 0 else {}
        if command in (Command.ENQUIRE_LINK_RESP, Command.UNBIND_RESP, Command.GENERIC_NACK):
            params = {}
        with contextlib.suppress(NotSent):
            self._write(encode(Pdu(command, request.sequence, status, params)))

    def _handle(self, pdu: Pdu) -> None:
        if pdu.is_response:
            with self._pending_lock:
                waiting = self._pending.pop(pdu.sequence, None)
            if waiting is None:
                log.warning(
                    "smpp: response 0x%08x to unknown sequence %s", pdu.command, pdu.sequence
                )
                return
            future, ticket = waiting
            self._budget.complete(ticket)
            future.set_result(pdu)
        elif pdu.command == Command.ENQUIRE_LINK:
            self._answer(Command.ENQUIRE_LINK_RESP, pdu)
        elif pdu.command == Command.DELIVER_SM:
            self._deliveries.put(pdu)
        elif pdu.command == Command.UNBIND:
            self._answer(Command.UNBIND_RESP, pdu)
            self._lose("the server unbound")
        else:
            self._answer(Command.GENERIC_NACK, pdu, Status.ESME_RINVCMDID)
