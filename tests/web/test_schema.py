"""Schemathesis against the app's own OpenAPI document: every operation, no 500.

Every operation of the document (``create_app(...).openapi()``, which ``GET /openapi.json``
serves: checked below) is called in process (ASGI) on an app over a real migrated database
(SQLite and PostgreSQL, like the other web tests) seeded with campaigns of both providers in
every state. Requests carry valid credentials (the bearer token; the ByteHand id and key, the
Push_CRA path secret and username), so the fuzzing reaches past authentication into parsing,
the state machines and the database, and half of the ids in them are ids the database knows.
Besides "no 500", answers must match the document (status, content type, body: every error is
``{"error": {"code", "message"}}``) and the API must refuse a request without its token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.db import session_scope
from dispatcher.runtime import Runtime
from dispatcher.web import create_app
from dispatcher.web.openapi import OPENAPI_PATH
from tests.conftest import insert_campaign
from tests.web.helpers import API_TOKEN, BYTEHAND_ID, BYTEHAND_KEY, SERVICE_ID, WEBHOOK_SECRET

CAMPAIGN_STATES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")
PROVIDERS = ("bytehand", "timetochat")
MESSAGE_STATES = ("pending", "submitted", "sent", "in_doubt", "failed", "delivered")

# The seed below, in a fresh database: campaign i (from 1) has message j as "p<i>-<j>" at the
# provider and "c<i>-<j>" as our extRef.
CAMPAIGNS = len(CAMPAIGN_STATES) * len(PROVIDERS)
CAMPAIGN_IDS = list(range(1, CAMPAIGNS + 1))
PROVIDER_IDS = [f"p{c}-{m}" for c in CAMPAIGN_IDS for m in range(len(MESSAGE_STATES))]
EXT_REFS = [f"c{c}-{m}" for c in CAMPAIGN_IDS for m in range(len(MESSAGE_STATES))]

RECIPIENTS_CSV = "phone,first_name\n+33612345678,Ann\n0612345679,Bob\n+33612345678,Ann\nnope,X\n"
"""A valid recipient file (a duplicate and an invalid row in it) for half of the uploads."""


def _known(dictionary: str) -> dict[str, Any]:
    return {"dictionary": dictionary, "probability": 0.5}


CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"HTTPBearer": {"bearer": API_TOKEN}}},
        "dictionaries": {
            "campaign_ids": {"values": CAMPAIGN_IDS},
            "provider_ids": {"values": PROVIDER_IDS},
            "ext_refs": {"values": EXT_REFS},
            "files": {"values": [RECIPIENTS_CSV]},
        },
        "parameters": {
            "query.id": BYTEHAND_ID,
            "query.key": BYTEHAND_KEY[-8:],
            "path.secret": WEBHOOK_SECRET,
            "query.message": _known("provider_ids"),
            "body.status_report.sms[*].call_id": _known("provider_ids"),
            "body.status_report.sms[*].ref_externe": _known("ext_refs"),
            "path.campaign_id": _known("campaign_ids"),
            "body.file": _known("files"),
        },
    }
)
"""Credentials always (the Push_CRA username: :func:`_complete`); the seeded ids (and a valid
file) half of the time."""


class CurrentApp:
    """The ASGI app of the running test: each test has its own database, hence its own app."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "used outside the app fixture"
        await self.app(scope, receive, send)


CURRENT = CurrentApp()

DOCUMENT = create_app(cast(Runtime, None)).openapi()
"""Built from the routes alone (no runtime needed), as ``GET /openapi.json`` serves it."""

schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = CURRENT

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]


def _seed(runtime: Runtime) -> None:
    """The campaigns and messages the ids above name (the API moves them as it is fuzzed)."""
    with session_scope(runtime.sessions) as session:
        for index, (state, provider) in enumerate(
            (state, provider) for state in CAMPAIGN_STATES for provider in PROVIDERS
        ):
            campaign = index + 1
            rows = [
                {
                    "state": message_state,
                    "provider_message_id": f"p{campaign}-{line}"
                    if message_state != "pending"
                    else None,
                    "error_transient": message_state == "failed",
                }
                for line, message_state in enumerate(MESSAGE_STATES)
            ]
            created, _ = insert_campaign(
                session, rows, name=f"{state} {provider}", provider=provider, state=state
            )
            assert created == campaign, "the seed expects a fresh database"


@pytest.fixture
def app(runtime: Runtime, kicks: list[int]) -> Iterator[None]:
    """The seeded app of this test behind :data:`CURRENT`."""
    _seed(runtime)
    CURRENT.app = create_app(runtime, on_start=kicks.append)
    yield
    CURRENT.app = None


BYTEHAND_SHAPES = {
    "outgoingStatus": {
        "message": "p5-1",  # submitted, in the running ByteHand campaign
        "description": "DELIVERED",
        "error_code": "0",
        "updated_at": "2024-03-25 14:32:25",
    },
    "incomingSms": {
        "message": "mo-1",
        "to": "+33612345678",
        "from": "+33698765432",
        "text": "STOP",
        "posted_at": "2024-03-25 14:32:25",
    },
}


def _complete(case: schemathesis.Case) -> None:
    """What the document cannot carry: which optional ByteHand parameters go with which action
    (OpenAPI has no conditional parameters; absent ones get a valid value), and the Push_CRA
    username (schemathesis' coverage phase ignores body overrides)."""
    if case.path == "/webhooks/bytehand" and isinstance(case.query, dict):
        for name, value in BYTEHAND_SHAPES.get(str(case.query.get("action")), {}).items():
            case.query.setdefault(name, value)
    report = case.body.get("status_report") if isinstance(case.body, dict) else None
    if case.path.startswith("/webhooks/timetochat/") and isinstance(report, dict):
        report["username"] = SERVICE_ID


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.usefixtures("app")
def test_every_operation_never_500(case: schemathesis.Case) -> None:
    """Any request the document allows, and many it does not: a documented answer, never 500."""
    _complete(case)
    case.call_and_validate(checks=CHECKS)


def test_document_is_served_behind_the_token(client: httpx.Client) -> None:
    """``GET /openapi.json``: the document above to the token holder, 401 to anyone else."""
    assert client.get(OPENAPI_PATH).status_code == 401
    wrong = client.get(OPENAPI_PATH, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    answer = client.get(OPENAPI_PATH, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200
    assert answer.json() == DOCUMENT
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(page).status_code == 404
