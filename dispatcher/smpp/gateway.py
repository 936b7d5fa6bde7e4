"""The SMPP gateway: one bind per TimeToChat account, sending what the feeder queued.

A process, not a Celery task: a bind lives for hours and receipts arrive on it. Run one or more
(``dispatcher smpp-gateway``); a Redis lease (:mod:`dispatcher.smpp.lease`) lets one of them
bind, the others wait as standbys and take over when its lease lapses.

The bound gateway loops: look at the next queued messages, take a slot of the account's
fleet-wide budget, *then* claim one of them (so a gateway killed while waiting for its turn
leaves nothing claimed), send its ``submit_sm``, and
record the answers as they come back, with at most ``smpp_window`` unanswered. A dropped link,
or one whose answer is overdue, makes the unanswered submits ``in_doubt`` (they may have
arrived: their receipts, which carry our ``external_reference``, settle them) and the gateway
reconnects with backoff. ``ESME_RTHROTTLED`` puts the recipient back to ``pending`` and pauses
submits for a second. Idle, it sends ``enquire_link``; on stop it waits for the answers still
due, then unbinds.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import redis
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.backoff import retry_delay
from dispatcher.config import SmppSettings
from dispatcher.constants import TIMETOCHAT, smpp_lease_key
from dispatcher.errors import (
    ConfigError,
    DispatcherError,
    ProviderRejected,
    ProviderThrottled,
    RateLimiterUnavailable,
    SendInDoubt,
)
from dispatcher.runtime import Runtime
from dispatcher.smpp.lease import Lease
from dispatcher.smpp.link import BindRefused, Link, LinkLost, NotSent, open_socket
from dispatcher.smpp.messages import build_submit, read_submit_resp
from dispatcher.smpp.pdu import Command, Pdu
from dispatcher.smpp.work import Queued, Submit, apply_deliver, claim, next_queued, record_answers

__all__ = ["Gateway"]

log = logging.getLogger(__name__)

Connect = Callable[[SmppSettings, float], socket.socket]
IDLE_WAIT_S = 0.05
LOOK_AHEAD = 20
"""Queued messages read at once (a second of budget); each is claimed only at its turn."""
THROTTLE_PAUSE_S = 1.0
BIND_REFUSED_WAIT_S = 60.0


class Gateway:
    """Run :meth:`run` until ``stop`` is set. ``counts`` are the figures of this process."""

    def __init__(
        self, runtime: Runtime, stop: threading.Event, *, connect: Connect = open_socket
    ) -> None:
        if runtime.settings.timetochat.transport != "smpp":
            raise ConfigError("DISPATCHER_TIMETOCHAT_TRANSPORT: the gateway needs smpp")
        self.runtime = runtime
        self.settings = runtime.settings.timetochat.smpp
        self.stop = stop
        self.connect = connect
        self.limiter = runtime.limiter(TIMETOCHAT)
        self.lease = Lease(
            runtime.redis,
            smpp_lease_key(runtime.account(TIMETOCHAT)),
            self.settings.lease_s,
        )
        self.bound = threading.Event()
        self.counts = dict.fromkeys(
            ("submitted", "throttled", "in_doubt", "not_sent", "refused", "binds"), 0
        )

    def run(self) -> None:
        """Hold the lease (or wait for it), bind, send; reconnect with backoff after a drop."""
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    if not self.lease.hold():
                        self.stop.wait(self.settings.lease_s / 4)
                        continue
                    self._session()
                    failures = 0
                except BindRefused as exc:
                    log.error("smpp: %s; retrying in %.0f s", exc.reason, BIND_REFUSED_WAIT_S)
                    self.stop.wait(BIND_REFUSED_WAIT_S)
                except (
                    LinkLost,
                    RateLimiterUnavailable,
                    redis.RedisError,
                    SQLAlchemyError,
                ) as exc:
                    failures += 1
                    delay = retry_delay(failures, base_s=0.5, cap_s=30.0)
                    log.warning("smpp: %s; reconnecting in %.1f s", exc, delay)
                    self.stop.wait(delay)
        finally:
            try:
                self.lease.release()
            except redis.RedisError as exc:
                log.warning("smpp: lease not released, it expires by itself: %s", exc)

    def _session(self) -> None:
        sock = self.connect(self.settings, self.settings.response_timeout_s)
        link = Link(
            sock,
            self.limiter,
            lambda pdu: apply_deliver(self.runtime, pdu),
            response_timeout_s=self.settings.response_timeout_s,
        )
        inflight: dict[Future[Pdu], tuple[Submit, float]] = {}
        try:
            link.bind(self.settings.system_id, self.settings.password.reveal())
            self.counts["binds"] += 1
            self.bound.set()
            log.info("smpp: bound to %s:%s", self.settings.host, self.settings.port)
            self._send_loop(link, inflight)
            self._drain(link, inflight)
        except LinkLost:
            # Answers may be in the socket still: the reader hands them over until it finds
            # the link dead; only then are the unanswered submits in doubt.
            link.closed.wait(self.settings.response_timeout_s)
            raise
        finally:
            self.bound.clear()
            if inflight:
                link.drop("stopped with answers due")
                self._collect(inflight)
            link.unbind()

    def _send_loop(self, link: Link, inflight: dict[Future[Pdu], tuple[Submit, float]]) -> None:
        last_request = last_lease = time.monotonic()
        throttled_until = 0.0
        ahead: deque[Queued] = deque()
        while not self.stop.is_set():
            now = time.monotonic()
            if now - last_lease > self.settings.lease_s / 4:
                if not self.lease.hold():
                    log.error("smpp: lease lost to another gateway; unbinding")
                    return
                last_lease = now
            if self._collect(inflight):
                throttled_until = time.monotonic() + THROTTLE_PAUSE_S
            self._check_overdue(link, inflight)
            if link.closed.is_set():
                raise LinkLost("the link dropped")
            if now < throttled_until or len(inflight) >= self.settings.window:
                self.stop.wait(0.005)
            elif self._submit_next(link, ahead, inflight):
                last_request = time.monotonic()
            elif not inflight and now - last_request > self.settings.enquire_link_s:
                link.call(Command.ENQUIRE_LINK)
                last_request = time.monotonic()
            else:
                self.stop.wait(IDLE_WAIT_S)

    def _submit_next(
        self,
        link: Link,
        ahead: deque[Queued],
        inflight: dict[Future[Pdu], tuple[Submit, float]],
    ) -> bool:
        """Send the next queued message, if any (False: nothing to send)."""
        if not ahead:
            ahead.extend(next_queued(self.runtime, LOOK_AHEAD))
            if not ahead:
                return False
        ticket = self.limiter.wait_turn("send")
        submit = claim(self.runtime, ahead.popleft())
        if submit is None:
            self.limiter.complete(ticket)
            return True
        try:
            params, tlvs = build_submit(
                submit.outgoing, reference_tag=self.settings.external_reference_tag
            )
        except (ValueError, KeyError) as exc:  # a text or reference SMPP cannot carry
            self.limiter.complete(ticket)
            rejected = ProviderRejected(f"not sendable over SMPP: {exc}", provider=TIMETOCHAT)
            self._record([(submit, rejected)])
            return True
        try:
            future = link.request(Command.SUBMIT_SM, params, tlvs, ticket=ticket)
        except NotSent as exc:
            self._record([(submit, exc)])  # never left: back to pending
            raise
        except LinkLost as exc:
            self._record([(submit, self._in_doubt(exc))])
            raise
        inflight[future] = (submit, time.monotonic())
        return True

    def _drain(self, link: Link, inflight: dict[Future[Pdu], tuple[Submit, float]]) -> None:
        """Stopping: wait for the answers still due (they may be message ids)."""
        deadline = time.monotonic() + self.settings.response_timeout_s
        while inflight and time.monotonic() < deadline and not link.closed.is_set():
            self._collect(inflight)
            time.sleep(0.01)

    def _check_overdue(self, link: Link, inflight: dict[Future[Pdu], tuple[Submit, float]]) -> None:
        oldest = min((sent for _, sent in inflight.values()), default=None)
        if oldest is not None and time.monotonic() - oldest > self.settings.response_timeout_s:
            link.drop(f"no submit_sm_resp in {self.settings.response_timeout_s} s")

    def _in_doubt(self, exc: DispatcherError) -> SendInDoubt:
        return SendInDoubt(f"submit_sm unanswered: {exc}", provider=TIMETOCHAT, code="smpp")

    def _collect(self, inflight: dict[Future[Pdu], tuple[Submit, float]]) -> bool:
        """Record the submits answered so far; True if one was throttled."""
        answers: list[tuple[Submit, str | DispatcherError]] = []
        for future in [f for f in inflight if f.done()]:
            submit, _ = inflight.pop(future)
            error = future.exception()
            if error is not None:
                failed = error if isinstance(error, DispatcherError) else LinkLost(str(error))
                answers.append((submit, self._in_doubt(failed)))
            else:
                answers.append((submit, read_submit_resp(future.result())))
        self._record(answers)
        return any(isinstance(answer, ProviderThrottled) for _, answer in answers)

    def _record(self, answers: list[tuple[Submit, str | DispatcherError]]) -> None:
        if not answers:
            return
        for _, answer in answers:
            if isinstance(answer, str):
                self.counts["submitted"] += 1
            elif isinstance(answer, ProviderThrottled):
                self.counts["throttled"] += 1
                log.warning("smpp: ESME_RTHROTTLED: pausing submits %.0f s", THROTTLE_PAUSE_S)
            elif isinstance(answer, SendInDoubt):
                self.counts["in_doubt"] += 1
            elif isinstance(answer, LinkLost):
                self.counts["not_sent"] += 1
            else:
                self.counts["refused"] += 1
        record_answers(self.runtime, answers)
