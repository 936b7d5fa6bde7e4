"""Strict simulators of ByteHand and SFR TimeToChat, the two SMS providers.

Neither real provider is reachable from our machines, so every test, benchmark and the demo
judge the dispatcher against these. They follow ``/work/shared/spec/providers.md`` to the
letter and refuse whatever the real providers would refuse.

Running them
------------
``dispatcher sandbox`` serves ByteHand on ``http://127.0.0.1:3800`` and TimeToChat on
``http://127.0.0.1:3900/mug/api/V1`` (loopback only); see ``dispatcher sandbox --help`` for
ports, callback URLs, accounts and faults. In-process::

    app = create_bytehand_app(ByteHandConfig(lifecycle=Lifecycle(0.05, 0.1)))
    with serve_in_thread(app) as server:      # server.url == "http://127.0.0.1:<port>"
        ...
        app.state.sandbox.ledger               # iterable of LedgerEntry snapshots
        app.state.sandbox.stats()              # {account: AccountStats}

Accounts (defaults)
-------------------
ByteHand: ``id=1000``, ``key=sandbox-bytehand-key-0123456789``; sender names ``SMSINFO``
(ACCEPTED), ``PENDING`` (NEW) and ``REFUSED`` (REJECTED): only ACCEPTED ones may send.
TimeToChat: service ``123456``, password ``sandbox-password``, authorised ``from``
``0938000001``; ``test_account_expired`` and ``monthly_limit`` refuse sends with 403. Tokens
live ``token_lifetime_s`` (1800 s).

Rate limit
----------
At most 20 calls per account in ANY sliding one-second window, every served call counted
(token, send, status, balance, signatures...). A call over it is refused at arrival —
ByteHand HTTP 400 ``{"status": 17}``, TimeToChat 429 ``{"code": "TOO_MANY_REQUESTS"}`` — does
nothing and takes no slot. Calls naming an unknown account are refused as unauthenticated
and not counted.

Outcomes by recipient number (last two digits)
----------------------------------------------
::

    00     refused at send: ByteHand status 11, TimeToChat 400 INVALID_RECIPIENT
    13     ByteHand UNDELIVERABLE (error_code 12)  TimeToChat CRA_SMS_WRONGNUMBER
    14     ByteHand EXPIRED (error_code 13)        TimeToChat CRA_SMS_FALSENUMBER
    15     ByteHand REJECTED (error_code 5)        TimeToChat CRA_SMS_OPFULL
    99     never final: ByteHand ACCEPTED, TimeToChat CRA_SMS_SENT (polling deadlines)
    other  ByteHand DELIVERED                      TimeToChat CRA_SMS_RECEIVED

A message is NEW when accepted, moves to ACCEPTED / CRA_SMS_SENT after
``Lifecycle.sent_after_s`` and to its final state ``final_after_s`` later. ByteHand
``send_after`` holds it NEW until that time; a TimeToChat ``validityDate`` that passes first
ends it in CRA_SMS_ERROR. Every change after NEW is called back (ByteHand ``outgoingStatus``
GET; TimeToChat Push_CRA SENT / RECEIVED / ERROR).

Error codes
-----------
ByteHand: the original's numeric table (:data:`codes.BYTEHAND_DESCRIPTIONS`); TimeToChat: the
strings of :mod:`dispatcher.sandbox.codes` (AUTHENTICATION_FAILED, TOKEN_EXPIRED,
INVALID_TOKEN, MISSING_PARAMETER, INVALID_PARAMETER, INVALID_RECIPIENT, INVALID_VALIDITY_DATE,
TEXT_TOO_LONG, INVALID_EXT_REF, FORBIDDEN_SENDER, TEST_ACCOUNT_EXPIRED, MONTHLY_LIMIT_REACHED,
NOT_FOUND, TOO_MANY_REQUESTS, INTERNAL_ERROR).

Control endpoints (both simulators; never rate-limited or faulted)
------------------------------------------------------------------
``GET /_control/ledger``     ``{"messages": [{provider, account, id, to, from, text, ext_ref,
                             accepted_at, parts, state, history}]}``
``GET /_control/stats``      ``{"accounts": {id: {calls_served, rate_limited,
                             max_calls_in_window, accepted, duplicates, faults_failed,
                             faults_stalled}}, "callbacks": {queued, attempts, delivered,
                             given_up}}``
``POST /_control/reset``     forget messages, counters, pending events and callbacks; faults,
                             balances, sender names and quotas back to the start-up config
``GET|POST /_control/faults`` read / change fault switches (partial JSON)
``POST /_control/incoming``  an MO: ByteHand ``{"from", "to", "text"[, "client_id"]}`` →
                             ``incomingSms`` callback; TimeToChat ``{"from": mobile, "text"[,
                             "to": service number, "service_id"]}`` → INCOMING push
``POST /_control/reply``     TimeToChat only: ``{"message_id", "text"}`` → ANSWERED push

Fault switches (:class:`Faults`, at start-up or at run time)
------------------------------------------------------------
``fail_rate``       share of API calls answered 500 before doing anything (ByteHand
                    ``{"status": 1}``, TimeToChat ``{"code": "INTERNAL_ERROR"}``): nothing
                    accepted
``stall_rate``      share of accepted sends (a whole ``send_multi``) whose answer is delayed by
                    ``stall_s`` (``stall_mode="delay"``) or cut after the headers (``"drop"``):
                    the message IS accepted and proceeds — an in-doubt send
``latency_ms``      added to every API call, after the rate check
``callback_duplicate_rate``, ``callback_delay_s``, ``callback_reorder_s``
                    callbacks sent twice, late, out of order

Callbacks failing (no 200 within ``CallbackPolicy.timeout_s``) are retried with exponential
backoff until ``CallbackPolicy.deadline_s`` (48 h by default).
"""

from __future__ import annotations

from dispatcher.sandbox import codes
from dispatcher.sandbox.bytehand import create_bytehand_app
from dispatcher.sandbox.config import (
    ByteHandAccount,
    ByteHandConfig,
    CallbackPolicy,
    Faults,
    Lifecycle,
    Signature,
    TimeToChatAccount,
    TimeToChatConfig,
    accounts_from_json,
)
from dispatcher.sandbox.core import Sandbox
from dispatcher.sandbox.ledger import LedgerEntry
from dispatcher.sandbox.outcomes import Outcome, outcome_for
from dispatcher.sandbox.server import RunningServer, serve_in_thread
from dispatcher.sandbox.stats import AccountStats
from dispatcher.sandbox.timetochat import create_timetochat_app

__all__ = [
    "AccountStats",
    "ByteHandAccount",
    "ByteHandConfig",
    "CallbackPolicy",
    "Faults",
    "LedgerEntry",
    "Lifecycle",
    "Outcome",
    "RunningServer",
    "Sandbox",
    "Signature",
    "TimeToChatAccount",
    "TimeToChatConfig",
    "accounts_from_json",
    "codes",
    "create_bytehand_app",
    "create_timetochat_app",
    "outcome_for",
    "serve_in_thread",
]
