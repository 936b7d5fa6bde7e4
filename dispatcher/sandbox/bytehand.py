"""The ByteHand simulator: the HTTP API of ``/work/shared/spec/providers.md``, strictly.

Every API call is rate-limited per client id first (unknown ids are refused with status 2 and
not counted), then faulted, then authenticated with ``key``. Errors are HTTP 400
``{"status": <int>, "description": ...}``; success bodies follow the original's examples
literally, including ``"status": "0"`` as a string in ``/send``, ``/status``, ``/details`` and
``/balance`` but ``0`` as an integer in ``/send_multi`` items and ``POST /signature``.

Choices where the original is silent: text over 800 characters is status 6; a balance too low
for the message's parts is status 4; ``DELETE /signature`` answers ``{"status": 0,
"description": "<id>"}``; USSD is not simulated (404).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import itertools
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from dispatcher.sandbox import codes
from dispatcher.sandbox.callbacks import Callback
from dispatcher.sandbox.config import ByteHandAccount, ByteHandConfig
from dispatcher.sandbox.control import control_router, read_json_object
from dispatcher.sandbox.core import Sandbox, Verdict, utcnow
from dispatcher.sandbox.ledger import LedgerEntry
from dispatcher.sandbox.lifecycle import bytehand_plan
from dispatcher.sandbox.outcomes import outcome_for
from dispatcher.sandbox.parts import BYTEHAND_SIZES, count_parts, is_gsm7
from dispatcher.sandbox.validation import BYTEHAND_MAX_TEXT, bytehand_receiver, parse_send_after

__all__ = ["create_bytehand_app"]

PROVIDER = "bytehand"


def _error(code: int, http_status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"status": code, "description": codes.BYTEHAND_DESCRIPTIONS[code]}, status_code=http_status
    )


def _gmt(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _gmt_tenths(when: datetime) -> str:
    """``2012-09-11 20:00:26.0``: the original's ``/details`` dates carry tenths."""
    return f"{_gmt(when)}.{when.microsecond // 100_000}"


@dataclasses.dataclass
class _SignatureRecord:
    id: int
    text: str
    description: str
    created_at: datetime
    state: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "description": self.description,
            "created_at": _gmt(self.created_at),
            "state": self.state,
        }


class _ByteHand:
    """The provider's own state (balances, sender names) around the shared sandbox."""

    def __init__(self, config: ByteHandConfig) -> None:
        self.config = config
        self.sandbox = Sandbox(
            PROVIDER,
            rate_limit=config.rate_limit,
            window_s=config.rate_window_s,
            faults=config.faults,
            callbacks=config.callbacks,
            seed=config.seed,
        )
        self.accounts = {a.client_id: a for a in config.accounts}
        self._message_ids = itertools.count(int(time.time() * 1000) * 10_000)
        self._signature_ids = itertools.count(11)
        self.balances: dict[str, Decimal] = {}
        self.signatures: dict[str, list[_SignatureRecord]] = {}
        self._restore()
        self.sandbox.on_reset(self._restore)

    def _restore(self) -> None:
        now = utcnow()
        self.balances = {a.client_id: a.balance for a in self.config.accounts}
        self.signatures = {
            a.client_id: [
                _SignatureRecord(next(self._signature_ids), s.text, s.description, now, s.state)
                for s in a.signatures
            ]
            for a in self.config.accounts
        }

    async def gate(self, request: Request) -> ByteHandAccount | Response:
        """The calling account, or the error answering the call."""
        account = self.accounts.get(request.query_params.get("id", ""))
        if account is None:
            return _error(codes.BH_AUTH_FAILED)
        verdict = await self.sandbox.enter(account.client_id)
        if verdict is Verdict.THROTTLED:
            return _error(codes.BH_TOO_MANY_OPERATIONS)
        if verdict is Verdict.FAILED:
            return _error(codes.BH_UNEXPECTED, 500)
        if not hmac.compare_digest(request.query_params.get("key", ""), account.key):
            return _error(codes.BH_AUTH_FAILED)
        return account

    def add_signature(self, account: ByteHandAccount, text: str, description: str) -> int:
        """Submit a sender name for moderation: it stays NEW."""
        record = _SignatureRecord(next(self._signature_ids), text, description, utcnow(), "NEW")
        self.signatures[account.client_id].append(record)
        return record.id

    def submit(self, account: ByteHandAccount, item: Any, hold_s: float) -> tuple[int, str]:
        """Accept one message: ``(0, id)``, or ``(error code, description)``."""
        to, sender, text = (item.get(k) if isinstance(item, dict) else None for k in FIELDS)
        if not (isinstance(to, str) and isinstance(sender, str) and isinstance(text, str)):
            return self._refusal(codes.BH_INVALID_PARAMETERS)
        if not to or not sender or not text or len(text) > BYTEHAND_MAX_TEXT:
            return self._refusal(codes.BH_INVALID_PARAMETERS)
        accepted = {s.text for s in self.signatures[account.client_id] if s.state == "ACCEPTED"}
        if sender not in accepted:
            return self._refusal(codes.BH_INVALID_SENDER)
        receiver = bytehand_receiver(to)
        outcome = outcome_for(to)
        if receiver is None or outcome.refused_at_send:
            return self._refusal(codes.BH_INVALID_RECEIVER)
        if outcome.bytehand_refusal is not None:
            return self._refusal(outcome.bytehand_refusal)
        parts = count_parts(text, BYTEHAND_SIZES)
        cost = parts * self.config.cost_per_part
        if self.balances[account.client_id] < cost:
            return self._refusal(codes.BH_FORBIDDEN)
        self.balances[account.client_id] -= cost
        now = utcnow()
        entry = LedgerEntry(
            provider=PROVIDER,
            account=account.client_id,
            id=str(next(self._message_ids)),
            to=receiver,
            sender=sender,
            text=text,
            ext_ref=None,
            accepted_at=now,
            parts=parts,
            unicode=not is_gsm7(text),
            history=((now, "NEW"),),
        )
        steps = bytehand_plan(outcome, self.config.lifecycle, hold_s)
        self.sandbox.accept(entry, steps, lambda e: self.notify_status(account, e))
        return codes.BH_OK, entry.id

    @staticmethod
    def _refusal(code: int) -> tuple[int, str]:
        return code, codes.BYTEHAND_DESCRIPTIONS[code]

    def notify_status(self, account: ByteHandAccount, entry: LedgerEntry) -> None:
        """The ``outgoingStatus`` callback for a new state, if the account set a handler."""
        if account.callback_url is None:
            return
        outcome = outcome_for(entry.to)
        error_code = outcome.bytehand_error_code if entry.state == outcome.bytehand_final else 0
        params = (
            ("id", account.client_id),
            ("key", account.key[-8:]),
            ("action", "outgoingStatus"),
            ("message", entry.id),
            ("description", entry.state),
            ("error_code", str(error_code)),
            ("updated_at", _gmt(entry.updated_at)),
        )
        self.sandbox.callbacks.send(Callback(account.callback_url, "GET", params))

    def incoming(self, body: dict[str, Any]) -> JSONResponse:
        """Simulate an MO: the ``incomingSms`` callback of the chosen account."""
        account = self.accounts.get(str(body.get("client_id", self.config.accounts[0].client_id)))
        fields = [body.get(k) for k in FIELDS]
        if account is None or not all(isinstance(v, str) and v for v in fields):
            return JSONResponse({"error": "need to, from, text (and a known client_id)"}, 400)
        if account.callback_url is None:
            return JSONResponse({"error": codes.BYTEHAND_DESCRIPTIONS[20]}, 409)
        message_id = str(next(self._message_ids))
        to, sender, text = (str(v) for v in fields)
        params = (
            ("id", account.client_id),
            ("key", account.key[-8:]),
            ("action", "incomingSms"),
            ("message", message_id),
            ("to", to),
            ("from", sender),
            ("text", text),
            ("posted_at", _gmt(utcnow())),
        )
        self.sandbox.callbacks.send(Callback(account.callback_url, "GET", params))
        return JSONResponse({"message": message_id})


FIELDS = ("to", "from", "text")


def _hold_seconds(raw: str | None) -> float | None:
    """Seconds ``send_after`` holds a message (0 when absent or past); None if malformed."""
    if raw is None:
        return 0.0
    try:
        return max((parse_send_after(raw) - utcnow()).total_seconds(), 0.0)
    except ValueError:
        return None


class _Routes:
    """The HTTP handlers, one method per endpoint of the original."""

    def __init__(self, bh: _ByteHand) -> None:
        self.bh = bh

    async def send(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        hold_s = _hold_seconds(request.query_params.get("send_after"))
        if hold_s is None:
            return _error(codes.BH_INVALID_PARAMETERS)
        status, description = self.bh.submit(account, dict(request.query_params), hold_s)
        if status != codes.BH_OK:
            return _error(status)
        answer = JSONResponse({"status": "0", "description": description})
        return await self.bh.sandbox.respond(account.client_id, request, answer)

    async def send_multi(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        hold_s = _hold_seconds(request.query_params.get("send_after"))
        try:
            items = (await request.json()) if hold_s is not None else None
        except (ValueError, UnicodeDecodeError):
            items = None
        if hold_s is None or not isinstance(items, list) or not items:
            return _error(codes.BH_INVALID_PARAMETERS)
        # Off the event loop: a 100-item batch is CPU work that would otherwise delay the
        # arrival stamps of the calls queued behind it, and so bunch them in the rate window.
        results = await asyncio.to_thread(
            lambda: [self.bh.submit(account, item, hold_s) for item in items]
        )
        answer = JSONResponse([{"status": s, "description": d} for s, d in results])
        if any(s == codes.BH_OK for s, _ in results):
            return await self.bh.sandbox.respond(account.client_id, request, answer)
        return answer

    async def status(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        entry = self.bh.sandbox.ledger.get(
            request.query_params.get("message", ""), account.client_id
        )
        if entry is None:
            return _error(codes.BH_NOT_FOUND)
        return JSONResponse({"status": "0", "description": entry.state})

    async def details(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        entry = self.bh.sandbox.ledger.get(
            request.query_params.get("message", ""), account.client_id
        )
        if entry is None:
            return _error(codes.BH_NOT_FOUND)
        cost = entry.parts * self.bh.config.cost_per_part
        return JSONResponse(
            {
                "status": "0",
                "description": entry.state,
                "posted_at": _gmt_tenths(entry.accepted_at),
                "updated_at": _gmt_tenths(entry.updated_at),
                "parts": str(entry.parts),
                "cost": f"{cost:.4f}",
            }
        )

    async def balance(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        balance = self.bh.balances[account.client_id]
        return JSONResponse({"status": "0", "description": f"{balance:.4f}"})

    async def list_signatures(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        state = request.query_params.get("state")
        if state not in (None, "NEW", "ACCEPTED", "REJECTED"):
            return _error(codes.BH_INVALID_PARAMETERS)
        records = self.bh.signatures[account.client_id]
        return JSONResponse([s.as_json() for s in records if state in (None, s.state)])

    def _find(self, account: ByteHandAccount, request: Request) -> _SignatureRecord | None:
        raw = request.query_params.get("signature")
        return next((s for s in self.bh.signatures[account.client_id] if str(s.id) == raw), None)

    async def get_signature(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        record = self._find(account, request)
        return _error(codes.BH_NOT_FOUND) if record is None else JSONResponse(record.as_json())

    async def submit_signature(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        text = request.query_params.get("text", "")
        if not text:
            return _error(codes.BH_INVALID_PARAMETERS)
        description = request.query_params.get("description", "")
        signature_id = self.bh.add_signature(account, text, description)
        return JSONResponse({"status": 0, "description": str(signature_id)})

    async def delete_signature(self, request: Request) -> Response:
        account = await self.bh.gate(request)
        if isinstance(account, Response):
            return account
        record = self._find(account, request)
        if record is None:
            return _error(codes.BH_NOT_FOUND)
        self.bh.signatures[account.client_id].remove(record)
        return JSONResponse({"status": 0, "description": str(record.id)})

    async def incoming(self, request: Request) -> Response:
        body = await read_json_object(request)
        if body is None:
            return JSONResponse({"error": "expected a JSON object"}, 400)
        return self.bh.incoming(body)


def create_bytehand_app(config: ByteHandConfig | None = None) -> FastAPI:
    """A ByteHand simulator; its :class:`~dispatcher.sandbox.core.Sandbox` is
    ``app.state.sandbox``."""
    bh = _ByteHand(config or ByteHandConfig())
    routes = _Routes(bh)
    app = FastAPI(title="ByteHand simulator", lifespan=bh.sandbox.lifespan, openapi_url=None)
    app.state.sandbox = bh.sandbox
    app.include_router(control_router(bh.sandbox))
    app.add_api_route("/send", routes.send, methods=["GET"])
    app.add_api_route("/send_multi", routes.send_multi, methods=["POST"])
    app.add_api_route("/status", routes.status, methods=["GET"])
    app.add_api_route("/details", routes.details, methods=["GET"])
    app.add_api_route("/balance", routes.balance, methods=["GET"])
    app.add_api_route("/signatures", routes.list_signatures, methods=["GET"])
    app.add_api_route("/signature", routes.get_signature, methods=["GET"])
    app.add_api_route("/signature", routes.submit_signature, methods=["POST"])
    app.add_api_route("/signature", routes.delete_signature, methods=["DELETE"])
    app.add_api_route("/_control/incoming", routes.incoming, methods=["POST"])
    return app
