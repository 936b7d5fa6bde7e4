"""The JSON API: upload a recipient file, watch campaigns, and operate them.

Every route requires the bearer token (:mod:`dispatcher.web.auth`), checked before the body is
read: an anonymous client gets 401 and never learns how its input would have been judged.
The domain rules live in :mod:`dispatcher.campaigns` and :mod:`dispatcher.loader`; this module
only translates HTTP to them and back. Errors follow :mod:`dispatcher.web.errors`.

Starting a campaign (and anything that gives a running campaign new pending work: resume,
retry-failed, resolve-in-doubt with ``resend``) also calls ``on_start(campaign_id)`` after the
commit, so the feeder runs at once instead of at the next beat tick. If that kick fails (broker
down) the state change stands and the answer says ``"kicked": false``: beat feeds it later.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, ValidationError
from starlette.concurrency import run_in_threadpool

from dispatcher import campaigns, loader, prestart
from dispatcher.config import Settings
from dispatcher.db import session_scope
from dispatcher.errors import InputError
from dispatcher.runtime import Runtime
from dispatcher.sms import EncodingPolicy
from dispatcher.sources import forget_source
from dispatcher.states import CampaignState, MessageState
from dispatcher.testsend import send_test
from dispatcher.web.auth import require_token
from dispatcher.web.bodies import read_limited, receive_upload
from dispatcher.web.downloads import export_response
from dispatcher.web.openapi import API_ERRORS, request_body
from dispatcher.web.queries import campaign_page, message_page, progress
from dispatcher.web.state import Clock, OnStart, get_clock, get_on_start, get_runtime

__all__ = ["CampaignForm", "NoNul", "ResolveInDoubt", "TestSend", "router", "validate_form"]

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/campaigns",
    tags=["campaigns"],
    dependencies=[Depends(require_token)],
    responses=API_ERRORS,
)

# Ids are BIGINT on PostgreSQL: a larger number is a 422, not a database overflow (500).
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ClockDep = Annotated[Clock, Depends(get_clock)]
OnStartDep = Annotated[OnStart, Depends(get_on_start)]


def _no_nul(value: str) -> str:
    # Text columns refuse NUL on PostgreSQL: a bad form field is a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)

_TIME: dict[str, JsonValue] = {"format": "date-time"}
"""For the OpenAPI document only: the loader parses times (400 ``bad_schedule``)."""

_Model = TypeVar("_Model", bound=BaseModel)


class CampaignForm(BaseModel):
    """The form fields of ``POST /campaigns``; times are ISO 8601 with a zone (the loader
    checks them, and refuses naive or past times with a 400 ``bad_schedule``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["bytehand", "timetochat"]
    sender: Annotated[str, Field(min_length=1, max_length=50), NoNul]
    text: Annotated[str, Field(min_length=1, max_length=10_000), NoNul]
    name: Annotated[str, Field(max_length=200), NoNul] | None = None
    start_at: Annotated[str, Field(max_length=64, json_schema_extra=_TIME), NoNul] | None = None
    send_after: Annotated[str, Field(max_length=64, json_schema_extra=_TIME), NoNul] | None = None
    validity: Annotated[str, Field(max_length=64, json_schema_extra=_TIME), NoNul] | None = None
    phone_column: Annotated[str, Field(max_length=200), NoNul] | None = None
    region: Annotated[str, Field(max_length=8), NoNul] | None = None
    smart_encoding: bool = False
    encoding: EncodingPolicy = "auto"
    send_window: Annotated[str, Field(max_length=20), NoNul] | None = None
    send_days: Annotated[str, Field(max_length=40), NoNul] | None = None
    timezone: Annotated[str, Field(max_length=64), NoNul] | None = None
    any_time: bool = False
    append_optout: bool | None = None
    priority: Literal["high", "normal", "low"] = "normal"


class TestSend(BaseModel):
    """``POST /campaigns/{id}/test-send``: the number to send the campaign's message to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: Annotated[str, Field(min_length=1, max_length=32), NoNul]


class ResolveInDoubt(BaseModel):
    """``POST /campaigns/{id}/resolve-in-doubt``: resend after checking, or declare sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["resend", "mark_sent"]


def _validate(model: type[_Model], data: Any) -> _Model:
    """Our own validation, reported exactly like FastAPI's (422)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from exc


def validate_form(model: type[_Model], fields: dict[str, str]) -> _Model:
    """An HTML form's fields as ``model``; an empty optional field means "not given"."""
    return _validate(model, {k: v for k, v in fields.items() if v != ""})


def _kick(on_start: OnStart, campaign_id: int) -> bool:
    try:
        on_start(campaign_id)
    except Exception:
        log.warning("could not kick the feeder for campaign %s", campaign_id, exc_info=True)
        return False
    return True


def creation_options(settings: Settings, form: CampaignForm) -> dict[str, Any]:
    """The keyword arguments of :func:`loader.create_campaign` a campaign form gives: its
    fields, and its quiet hours and opt-out mention with ``[audience]`` as the default (the
    API and the console create through here)."""
    return {
        "provider": form.provider,
        "sender": form.sender,
        "template": form.text,
        "name": form.name,
        "start_at": form.start_at,
        "send_after": form.send_after,
        "validity": form.validity,
        "phone_column": form.phone_column,
        "region": form.region,
        "smart_encoding": form.smart_encoding,
        "encoding": form.encoding,
        "priority": form.priority,
        "send_rules": loader.default_send_rules(
            settings,
            any_time=form.any_time,
            window=form.send_window,
            days=form.send_days,
            timezone=form.timezone,
        ),
        "append_optout": (
            settings.audience.append_optout_mention
            if form.append_optout is None
            else form.append_optout
        ),
    }


@router.post(
    "",
    status_code=201,
    openapi_extra=request_body(CampaignForm, "multipart/form-data", files=("file",)),
)
async def create(request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """Upload a recipient file (``file``) with the campaign's fields; a draft is stored."""
    upload = await receive_upload(request, max_file_bytes=runtime.settings.max_upload_bytes)
    try:
        form = validate_form(CampaignForm, upload.fields)
        call = functools.partial(
            loader.create_campaign,
            runtime.engine,
            runtime.settings,
            upload.path,
            rejects_path=None,
            progress=None,
            **creation_options(runtime.settings, form),
        )
        try:
            summary = await run_in_threadpool(call)
        except InputError as exc:
            # Messages may name the file: show the client its own name, not our temp path.
            message = str(exc).replace(str(upload.path), upload.filename)
            raise InputError(message, code=exc.code) from exc
    finally:
        await run_in_threadpool(shutil.rmtree, upload.path.parent, True)
    response.headers["Location"] = f"/campaigns/{summary.id}"
    return {**summary.to_json(), "state": CampaignState.DRAFT}


@router.get("")
def list_campaigns(
    runtime: RuntimeDep,
    state: CampaignState | None = None,
    provider: Literal["bytehand", "timetochat"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Newest first, optionally of one state or provider, with counts by message state and
    progress (share of final messages; ``handed_over`` and ``final`` as counts)."""
    with session_scope(runtime.sessions) as session:
        items, total = campaign_page(
            session, state=state, provider=provider, limit=limit, offset=offset
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{campaign_id}")
def get_campaign(campaign_id: CampaignId, runtime: RuntimeDep, clock: ClockDep) -> dict[str, Any]:
    """One campaign: its settings, its estimate and its live report (counts, reasons, cost)."""
    with session_scope(runtime.sessions) as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        live = campaigns.report(session, campaign_id)
        return {
            "id": campaign.id,
            "name": campaign.name,
            "provider": campaign.provider,
            "sender": campaign.sender,
            "template": campaign.template,
            "priority": campaign.priority,
            "state": campaign.state,
            "created_at": campaign.created_at,
            "start_at": campaign.start_at,
            "send_after": campaign.send_after,
            "validity": campaign.validity,
            "started_at": campaign.started_at,
            "finished_at": campaign.finished_at,
            "pause_reason": campaign.pause_reason,
            "paused_at": campaign.paused_at,
            "counts": live["counts"],
            "progress": progress(live["counts"]),
            "progress_detail": campaigns.progress(
                session, campaign_id, clock(), deadline=runtime.settings.dispatch.poll_deadline
            ).to_json(),
            "failures": live["failures"],
            "estimate": campaign.estimate,
            "report": live,
        }


@router.delete("/{campaign_id}")
def delete_draft(campaign_id: CampaignId, runtime: RuntimeDep) -> dict[str, Any]:
    """Delete a draft and its recipients (409 once it has been started: history stays)."""
    with session_scope(runtime.sessions) as session:
        source = campaigns.delete_draft(session, campaign_id)
    forget_source(runtime.settings.state_dir, source)
    return {"id": campaign_id, "deleted": True}


@router.get(
    "/{campaign_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
)
async def export(
    campaign_id: CampaignId,
    runtime: RuntimeDep,
    format: Literal["csv", "parquet"] = "csv",
) -> FileResponse:
    """Every recipient beside its file's original columns: state, reason, provider id, times,
    reply (what ``dispatcher campaign export`` writes)."""
    return await export_response(runtime, campaign_id, format)


def _state_of(runtime: Runtime, campaign_id: int) -> str:
    with session_scope(runtime.sessions) as session:
        return campaigns.get_campaign(session, campaign_id).state


@router.post("/{campaign_id}/start")
def start(
    campaign_id: CampaignId, runtime: RuntimeDep, clock: ClockDep, on_start: OnStartDep
) -> dict[str, Any]:
    """Start now, or schedule for ``start_at``; a running campaign is fed at once."""
    with session_scope(runtime.sessions) as session:
        state = prestart.start_checked(runtime, session, campaign_id, clock())
    kicked = _kick(on_start, campaign_id) if state == CampaignState.RUNNING else False
    return {"id": campaign_id, "state": state, "kicked": kicked}


@router.post("/{campaign_id}/pause")
def pause(campaign_id: CampaignId, runtime: RuntimeDep, clock: ClockDep) -> dict[str, Any]:
    """Stop feeding; nothing already handed to a provider is recalled."""
    with session_scope(runtime.sessions) as session:
        campaigns.pause(session, campaign_id, clock())
    return {"id": campaign_id, "state": _state_of(runtime, campaign_id)}


@router.post("/{campaign_id}/resume")
def resume(
    campaign_id: CampaignId, runtime: RuntimeDep, clock: ClockDep, on_start: OnStartDep
) -> dict[str, Any]:
    """Feed again from where the campaign stopped."""
    with session_scope(runtime.sessions) as session:
        prestart.resume_checked(runtime, session, campaign_id, clock())
    kicked = _kick(on_start, campaign_id)
    return {"id": campaign_id, "state": _state_of(runtime, campaign_id), "kicked": kicked}


@router.post("/{campaign_id}/cancel")
def cancel(campaign_id: CampaignId, runtime: RuntimeDep, clock: ClockDep) -> dict[str, Any]:
    """Cancel the campaign and every message not yet handed to a provider."""
    with session_scope(runtime.sessions) as session:
        cancelled = campaigns.cancel(session, campaign_id, clock())
    return {"id": campaign_id, "state": CampaignState.CANCELLED, "cancelled": cancelled}


@router.post("/{campaign_id}/retry-failed")
def retry_failed(
    campaign_id: CampaignId, runtime: RuntimeDep, clock: ClockDep, on_start: OnStartDep
) -> dict[str, Any]:
    """Re-queue recipients that failed for transient reasons (never permanent refusals)."""
    with session_scope(runtime.sessions) as session:
        requeued = campaigns.retry_failed(session, campaign_id, clock())
    state = _state_of(runtime, campaign_id)
    kicked = _kick(on_start, campaign_id) if requeued and state == CampaignState.RUNNING else False
    return {"id": campaign_id, "state": state, "requeued": requeued, "kicked": kicked}


async def _small_json(request: Request) -> Any:
    """A small JSON body, read after the token check (a FastAPI body parameter would be parsed,
    and answered 422, before authenticating)."""
    raw = await read_limited(request, 4096)
    try:
        return json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "the body is not JSON", "type": "json_invalid"}]
        ) from exc


@router.post("/{campaign_id}/resolve-in-doubt", openapi_extra=request_body(ResolveInDoubt))
async def resolve_in_doubt(
    campaign_id: CampaignId,
    request: Request,
    runtime: RuntimeDep,
    clock: ClockDep,
    on_start: OnStartDep,
) -> dict[str, Any]:
    """Settle sends whose outcome cannot be known: ``{"action": "resend" | "mark_sent"}``.

    The body is read here, after the token check, rather than declared as a FastAPI body
    parameter (FastAPI would parse it, and answer 422, before authenticating).
    """
    data = _validate(ResolveInDoubt, await _small_json(request))
    resend = data.action == "resend"

    def settle() -> tuple[int, str]:
        with session_scope(runtime.sessions) as session:
            moved = campaigns.resolve_in_doubt(session, campaign_id, clock(), resend=resend)
        return moved, _state_of(runtime, campaign_id)

    moved, state = await run_in_threadpool(settle)
    kicked = (
        _kick(on_start, campaign_id)
        if resend and moved and state == CampaignState.RUNNING
        else False
    )
    return {
        "id": campaign_id,
        "state": state,
        "action": data.action,
        "moved": moved,
        "kicked": kicked,
    }


@router.post("/{campaign_id}/test-send", status_code=201, openapi_extra=request_body(TestSend))
async def send_a_test(
    campaign_id: CampaignId,
    request: Request,
    runtime: RuntimeDep,
    clock: ClockDep,
    on_start: OnStartDep,
) -> dict[str, Any]:
    """Send the campaign's message to one number now, as a one-recipient campaign of its own
    (body read after the token check, like resolve-in-doubt)."""
    data = _validate(TestSend, await _small_json(request))
    summary = await run_in_threadpool(send_test, runtime, campaign_id, data.phone, clock())
    kicked = _kick(on_start, summary.id)
    return {
        "id": summary.id,
        "test_of": campaign_id,
        "state": CampaignState.RUNNING,
        "kicked": kicked,
    }


@router.get("/{campaign_id}/in-doubt")
def in_doubt(
    campaign_id: CampaignId, runtime: RuntimeDep, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Sends that may or may not have reached the provider, for ops to check and settle."""
    with session_scope(runtime.sessions) as session:
        campaigns.get_campaign(session, campaign_id)
        page = message_page(
            session, campaign_id, state=MessageState.IN_DOUBT, limit=limit, offset=offset
        )
    keep = ("id", "phone", "ext_ref", "last_error", "provider_message_id", "attempts")
    page["items"] = [{k: item[k] for k in keep} for item in page["items"]]
    return page


@router.get("/{campaign_id}/messages")
def messages(
    campaign_id: CampaignId,
    runtime: RuntimeDep,
    state: MessageState | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of the campaign's recipients in file order, optionally of one state."""
    with session_scope(runtime.sessions) as session:
        campaigns.get_campaign(session, campaign_id)
        return message_page(session, campaign_id, state=state, limit=limit, offset=offset)
