"""The SFR TimeToChat ("MUG") simulator: token, send and status calls, and Push_CRA.

Every call naming a configured service is rate-limited first (token requests included), then
faulted, then authenticated. Errors are ``{"code", "message"}`` with the codes of
:mod:`dispatcher.sandbox.codes`. Checks of ``POST .../messages``, in order: JSON object
(INVALID_PARAMETER), TEST_ACCOUNT_EXPIRED, MONTHLY_LIMIT_REACHED, MISSING_PARAMETER (``to``,
``text``, ``from`` absent, null or empty), INVALID_PARAMETER (wrong types), FORBIDDEN_SENDER,
INVALID_RECIPIENT, INVALID_VALIDITY_DATE, INVALID_EXT_REF, then the text (INVALID_PARAMETER
when it needs ``unicode``, TEXT_TOO_LONG).

Numbers are reported in international form (``0601020304`` → ``+33601020304``). Push_CRA, as
in the original's examples: one ``sms`` item per POST, ``status_list`` holding the one new
state; an ERROR entry carries ``info`` = the ``CRA_SMS_*`` code. For INCOMING and ANSWERED,
``to`` is the customer's mobile and ``from`` the service's ``09 3X`` number, as in the original.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from dispatcher.sandbox import codes
from dispatcher.sandbox.callbacks import Callback
from dispatcher.sandbox.config import TimeToChatAccount, TimeToChatConfig
from dispatcher.sandbox.control import control_router, read_json_object
from dispatcher.sandbox.core import Sandbox, Verdict, utcnow
from dispatcher.sandbox.ledger import LedgerEntry
from dispatcher.sandbox.lifecycle import timetochat_plan
from dispatcher.sandbox.outcomes import outcome_for
from dispatcher.sandbox.parts import TIMETOCHAT_SIZES, count_parts
from dispatcher.sandbox.tokens import TokenIssuer
from dispatcher.sandbox.validation import (
    TTC_MAX_EXT_REF,
    parse_validity_date,
    timetochat_recipient,
    timetochat_text_problem,
)

__all__ = ["create_timetochat_app"]

PROVIDER = "timetochat"
_HTTP_STATUS = {
    codes.TTC_AUTHENTICATION_FAILED: 401,
    codes.TTC_TOKEN_EXPIRED: 401,
    codes.TTC_INVALID_TOKEN: 401,
    codes.TTC_FORBIDDEN_SENDER: 403,
    codes.TTC_TEST_ACCOUNT_EXPIRED: 403,
    codes.TTC_MONTHLY_LIMIT_REACHED: 403,
    codes.TTC_NOT_FOUND: 404,
    codes.TTC_TOO_MANY_REQUESTS: 429,
    codes.TTC_INTERNAL_ERROR: 500,
}


def _error(code: str) -> JSONResponse:
    body = {"code": code, "message": codes.TTC_MESSAGES[code]}
    return JSONResponse(body, status_code=_HTTP_STATUS.get(code, 400))


def _iso_millis(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _push_type(state: str) -> str | None:
    if state == "CRA_SMS_SENT":
        return "SENT"
    if state == "CRA_SMS_RECEIVED":
        return "RECEIVED"
    return "ERROR" if state in codes.TTC_CRA_ERRORS else None


def _message_id() -> str:
    """24 hex digits, ObjectId-like: seconds since the epoch, then randomness."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


class _TimeToChat:
    """The provider's own state (tokens, monthly quotas) around the shared sandbox."""

    def __init__(self, config: TimeToChatConfig) -> None:
        self.config = config
        self.sandbox = Sandbox(
            PROVIDER,
            rate_limit=config.rate_limit,
            window_s=config.rate_window_s,
            faults=config.faults,
            callbacks=config.callbacks,
            seed=config.seed,
        )
        self.accounts = {a.service_id: a for a in config.accounts}
        self.tokens = TokenIssuer(config.token_lifetime_s)
        self.sent_this_month: dict[str, int] = {}
        self.sandbox.on_reset(self.sent_this_month.clear)

    async def gate(
        self, request: Request, service_id: str, *, token: bool = True
    ) -> TimeToChatAccount | Response:
        """The service, or the error answering the call (rate limit and faults first)."""
        account = self.accounts.get(service_id)
        if account is None:
            return _error(codes.TTC_INVALID_TOKEN if token else codes.TTC_AUTHENTICATION_FAILED)
        verdict = await self.sandbox.enter(service_id)
        if verdict is Verdict.THROTTLED:
            return _error(codes.TTC_TOO_MANY_REQUESTS)
        if verdict is Verdict.FAILED:
            return _error(codes.TTC_INTERNAL_ERROR)
        if token:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            problem = (
                self.tokens.check(value.strip(), service_id)
                if scheme.lower() == "bearer"
                else codes.TTC_INVALID_TOKEN
            )
            if problem is not None:
                return _error(problem)
        return account

    def submit(self, account: TimeToChatAccount, body: dict[str, Any] | None) -> JSONResponse:
        """Validate and accept one message: 201 ``{"id", "extRef"}`` or the error."""
        if body is None:
            return _error(codes.TTC_INVALID_PARAMETER)
        if account.test_account_expired:
            return _error(codes.TTC_TEST_ACCOUNT_EXPIRED)
        used = self.sent_this_month.get(account.service_id, 0)
        if account.monthly_limit is not None and used >= account.monthly_limit:
            return _error(codes.TTC_MONTHLY_LIMIT_REACHED)
        if any(body.get(field) in (None, "") for field in ("to", "text", "from")):
            return _error(codes.TTC_MISSING_PARAMETER)
        to, text, sender = body["to"], body["text"], body["from"]
        ext_ref, validity = body.get("extRef"), body.get("validityDate")
        unicode, flash = body.get("unicode", False), body.get("flash", False)
        if not (
            all(isinstance(v, str) for v in (to, text, sender))
            and all(v is None or isinstance(v, str) for v in (ext_ref, validity))
            and isinstance(unicode, bool)
            and isinstance(flash, bool)
        ):
            return _error(codes.TTC_INVALID_PARAMETER)
        if sender not in account.senders:
            return _error(codes.TTC_FORBIDDEN_SENDER)
        recipient = timetochat_recipient(to)
        outcome = outcome_for(to)
        if recipient is None or outcome.refused_at_send:
            return _error(codes.TTC_INVALID_RECIPIENT)
        now = utcnow()
        valid_for_s: float | None = None
        if validity is not None:
            try:
                valid_for_s = (parse_validity_date(validity, now) - now).total_seconds()
            except ValueError:
                return _error(codes.TTC_INVALID_VALIDITY_DATE)
        if ext_ref is not None and len(ext_ref) > TTC_MAX_EXT_REF:
            return _error(codes.TTC_INVALID_EXT_REF)
        problem = timetochat_text_problem(text, unicode)
        if problem is not None:
            return _error(problem)
        self.sent_this_month[account.service_id] = used + 1
        entry = LedgerEntry(
            provider=PROVIDER,
            account=account.service_id,
            id=_message_id(),
            to=recipient,
            sender=sender,
            text=text,
            ext_ref=ext_ref,
            accepted_at=now,
            parts=count_parts(text, TIMETOCHAT_SIZES, gsm=not unicode),
            unicode=unicode,
            flash=flash,
            history=((now, "NEW"),),
        )
        steps = timetochat_plan(outcome, self.config.lifecycle, valid_for_s)
        self.sandbox.accept(entry, steps, lambda e: self.push_status(account, e))
        return JSONResponse({"id": entry.id, "extRef": ext_ref}, status_code=201)

    def push(self, account: TimeToChatAccount, item: dict[str, Any]) -> None:
        """POST one Push_CRA report, if the service has a push URL."""
        if account.push_url is not None:
            body = {"status_report": {"username": account.service_id, "sms": [item]}}
            self.sandbox.callbacks.send(Callback(account.push_url, "POST", json_body=body))

    def push_status(self, account: TimeToChatAccount, entry: LedgerEntry) -> None:
        """The report of a sent message's new state (SENT, RECEIVED or ERROR)."""
        kind = _push_type(entry.state)
        if kind is None:
            return
        status: dict[str, str] = {"date": _iso(entry.updated_at), "type": kind}
        if kind == "ERROR":
            status["info"] = entry.state
        self.push(account, self._report(entry, status))

    @staticmethod
    def _report(entry: LedgerEntry, status: dict[str, str]) -> dict[str, Any]:
        return {
            "to": entry.to,
            "from": entry.sender,
            "date": status["date"],
            "call_id": entry.id,
            "ref_externe": entry.ext_ref or "",
            "status_list": [status],
            "status": status["type"],
        }

    def message_json(self, entry: LedgerEntry) -> dict[str, Any]:
        """``GET .../messages/{id}``: one history entry per part for a long SMS."""
        history: list[dict[str, str]] = []
        for when, state in entry.history:
            for part in range(1, entry.parts + 1):
                item = {"date": _iso_millis(when), "status": state}
                if entry.parts > 1:
                    item["part"] = f"{part}/{entry.parts}"
                history.append(item)
        return {
            "from": entry.sender,
            "to": entry.to,
            "text": entry.text,
            "unicode": entry.unicode,
            "flash": entry.flash,
            "id": entry.id,
            "date": _iso_millis(entry.accepted_at),
            "extRef": entry.ext_ref,
            "history": history,
        }

    def incoming(self, body: dict[str, Any]) -> JSONResponse:
        """Simulate an MO from ``from`` to the service number ``to``: an INCOMING report."""
        account = self.accounts.get(str(body.get("service_id", self.config.accounts[0].service_id)))
        if account is None or not account.senders:
            return JSONResponse({"error": "unknown service_id"}, 400)
        mobile, text = body.get("from"), body.get("text")
        number = body.get("to", account.senders[0])
        if not (isinstance(mobile, str) and mobile and isinstance(text, str) and text):
            return JSONResponse({"error": "need from and text"}, 400)
        if number not in account.senders:
            return JSONResponse({"error": "to is not a number of the service"}, 400)
        if account.push_url is None:
            return JSONResponse({"error": "the service has no push URL"}, 409)
        date = _iso(utcnow())
        status = {"date": date, "type": "INCOMING", "info": text}
        intl = timetochat_recipient(mobile) or mobile
        self.push(
            account,
            {
                "to": intl,
                "from": number,
                "date": date,
                "call_id": "",
                "status_list": [status],
                "status": "INCOMING",
            },
        )
        return JSONResponse({"pushed": True})

    def reply(self, body: dict[str, Any]) -> JSONResponse:
        """Simulate the recipient answering a sent message: an ANSWERED report."""
        entry = self.sandbox.ledger.get(str(body.get("message_id", "")))
        text = body.get("text")
        if entry is None or not isinstance(text, str) or not text:
            return JSONResponse({"error": "need a known message_id and text"}, 400)
        account = self.accounts[entry.account]
        if account.push_url is None:
            return JSONResponse({"error": "the service has no push URL"}, 409)
        status = {"date": _iso(utcnow()), "type": "ANSWERED", "info": text}
        self.push(account, self._report(entry, status))
        return JSONResponse({"pushed": True})


def create_timetochat_app(config: TimeToChatConfig | None = None) -> FastAPI:
    """A TimeToChat simulator; its :class:`~dispatcher.sandbox.core.Sandbox` is
    ``app.state.sandbox``."""
    ttc = _TimeToChat(config or TimeToChatConfig())
    base = ttc.config.base_path.rstrip("/")

    app = FastAPI(title="TimeToChat simulator", lifespan=ttc.sandbox.lifespan, openapi_url=None)
    app.state.sandbox = ttc.sandbox
    app.include_router(control_router(ttc.sandbox))

    @app.post(base + "/services/{service_id}/token")
    async def token(service_id: str, request: Request) -> Response:
        account = await ttc.gate(request, service_id, token=False)
        if isinstance(account, Response):
            return account
        body = await read_json_object(request)
        password = body.get("password") if body is not None else None
        if not isinstance(password, str) or not hmac.compare_digest(password, account.password):
            return _error(codes.TTC_AUTHENTICATION_FAILED)
        return JSONResponse({"token": ttc.tokens.issue(service_id)}, status_code=201)

    @app.post(base + "/services/{service_id}/messages")
    async def send(service_id: str, request: Request) -> Response:
        account = await ttc.gate(request, service_id)
        if isinstance(account, Response):
            return account
        answer = ttc.submit(account, await read_json_object(request))
        if answer.status_code != 201:
            return answer
        return await ttc.sandbox.respond(service_id, request, answer)

    @app.get(base + "/services/{service_id}/messages/{message_id}")
    async def status(service_id: str, message_id: str, request: Request) -> Response:
        account = await ttc.gate(request, service_id)
        if isinstance(account, Response):
            return account
        entry = ttc.sandbox.ledger.get(message_id, account.service_id)
        return (
            _error(codes.TTC_NOT_FOUND) if entry is None else JSONResponse(ttc.message_json(entry))
        )

    @app.post("/_control/incoming")
    async def incoming(request: Request) -> Response:
        body = await read_json_object(request)
        return ttc.incoming(body) if body is not None else JSONResponse({"error": "not JSON"}, 400)

    @app.post("/_control/reply")
    async def reply(request: Request) -> Response:
        body = await read_json_object(request)
        return ttc.reply(body) if body is not None else JSONResponse({"error": "not JSON"}, 400)

    return app
