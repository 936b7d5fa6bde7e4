"""The console's routes: sign-in, pages, forms and downloads, all under ``/console``.

Reading pages need a signed-in session (:mod:`dispatcher.console.session`), else they send the
browser to the sign-in page; every POST also needs the session's CSRF token. The work itself is
done by the same functions as the CLI and the JSON API (:mod:`dispatcher.campaigns`,
:mod:`dispatcher.loader`, :func:`dispatcher.web.estimates.estimate_upload`,
:func:`dispatcher.web.downloads.export_response`).

``console.js`` posts the estimate and the creation with ``fetch`` (header ``X-Console-Fetch``)
to show upload progress and keep the form as typed: it then gets an HTML fragment (estimate, or
the error) or ``{"location": ...}``. Without scripts the same forms post normally and get whole
pages.
"""

from __future__ import annotations

import functools
import shutil
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

import redis
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dispatcher import campaigns, sms
from dispatcher.console import forms
from dispatcher.console.render import HEADERS, render, render_fragment
from dispatcher.console.session import (
    ConsoleSession,
    check_csrf,
    clear_session,
    new_session,
    read_session,
)
from dispatcher.console.views import (
    ACTIONS,
    campaign_view,
    chart,
    optouts_view,
    recipients_view,
    replies_view,
)
from dispatcher.constants import BYTEHAND
from dispatcher.db import session_scope
from dispatcher.errors import DispatcherError, InputError
from dispatcher.models import utcnow
from dispatcher.runtime import Runtime
from dispatcher.sources import forget_source
from dispatcher.testsend import send_test
from dispatcher.web.api import CampaignForm, validate_form
from dispatcher.web.auth import token_matches
from dispatcher.web.bodies import Upload, read_limited, receive_upload
from dispatcher.web.downloads import export_response
from dispatcher.web.errors import ApiError
from dispatcher.web.estimates import EstimateForm, estimate_upload
from dispatcher.web.state import OnStart, get_on_start, get_runtime

__all__ = ["SignInNeeded", "router"]

router = APIRouter(prefix="/console", include_in_schema=False)

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=10**6)]

_FORM_LIMIT = 16 * 1024
FETCH_HEADER = "x-console-fetch"


class SignInNeeded(Exception):
    """No valid session: pages redirect to the sign-in form, fetches get a 401."""


def _session(request: Request) -> ConsoleSession:
    found = read_session(get_runtime(request), request)
    if found is None:
        raise SignInNeeded
    return found


SessionDep = Annotated[ConsoleSession, Depends(_session)]


def _fetched(request: Request) -> bool:
    return request.headers.get(FETCH_HEADER) == "1"


async def _small_form(request: Request) -> dict[str, str]:
    raw = await read_limited(request, _FORM_LIMIT)
    try:
        parsed = parse_qs(raw.decode("utf-8"), max_num_fields=32)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_form", "the form could not be read") from exc
    return {key: values[-1] for key, values in parsed.items()}


def _refused(request: Request) -> Response:
    return render(request, "refused.html", status=403)


# -- sign in and out ------------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_page(request: Request, runtime: RuntimeDep) -> Response:
    """The form; it never refreshes itself (a half-typed token stays)."""
    enabled = bool(runtime.settings.api_token.reveal())
    return render(request, "sign_in.html", enabled=enabled, message=None)


@router.post("/sign-in")
async def sign_in(request: Request, runtime: RuntimeDep) -> Response:
    """Check the token, then hand out a signed session cookie (never the token itself)."""
    fields = await _small_form(request)
    if not runtime.settings.api_token.reveal():
        return render(request, "sign_in.html", status=503, enabled=False, message=None)
    if not token_matches(runtime, fields.get("token", "")):
        message = "That token is not the API token."
        return render(request, "sign_in.html", status=401, enabled=True, message=message)
    response = RedirectResponse("/console/", status_code=303, headers=dict(HEADERS))
    new_session(runtime, request, response, time.time())
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    """End the session (CSRF-checked, like every form that changes something)."""
    if not check_csrf(session, (await _small_form(request)).get("csrf")):
        return _refused(request)
    response = RedirectResponse("/console/sign-in", status_code=303, headers=dict(HEADERS))
    clear_session(request, response)
    return response


# -- pages -----------------------------------------------------------------------------------


@router.get("/")
def campaigns_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    state: Annotated[str | None, Query(max_length=20)] = None,
    page: PageNumber = 1,
) -> Response:
    """Every campaign, newest first, filtered by state, 25 a page."""
    from dispatcher.states import CampaignState
    from dispatcher.web.queries import campaign_page

    chosen = CampaignState(state) if state in set(CampaignState) else None
    size = 25
    with session_scope(runtime.sessions) as db:
        items, total = campaign_page(db, state=chosen, limit=size, offset=(page - 1) * size)
    return render(
        request,
        "campaigns.html",
        csrf=session.csrf,
        items=items,
        total=total,
        state=chosen,
        states=list(CampaignState),
        page=page,
        pages=max(1, -(-total // size)),
    )


@router.get("/new")
def new_page(request: Request, session: SessionDep) -> Response:
    """The upload, message and schedule form."""
    return render(request, "new.html", csrf=session.csrf, values={}, estimate=None, error=None)


def _rate_use(runtime: Runtime, provider: str) -> tuple[int, int] | None:
    """The provider account's calls in the current second, of its limit; None if unknown."""
    try:
        return runtime.limiter(provider).in_use()
    except (DispatcherError, redis.RedisError, OSError):
        return None


def _campaign_context(
    runtime: Runtime, campaign_id: int, state: str | None, page: int, *, full: bool = True
) -> dict[str, Any]:
    """The page's data; the live refresh (``full=False``) skips the table and the chart."""
    with session_scope(runtime.sessions) as db:
        view = campaign_view(
            db, campaign_id, utcnow(), deadline=runtime.settings.dispatch.poll_deadline
        )
        view["rate"] = _rate_use(runtime, view["campaign"].provider)
        if not full:
            chosen = state if state in view["counts"] else None
            return {**view, "filter": chosen}
        recipients = recipients_view(db, campaign_id, view["campaign"].provider, state, page)
        drawn = chart(db, campaign_id)
    return {**view, "recipients": recipients, "chart": drawn, "filter": recipients["state"]}


@router.get("/campaigns/{campaign_id}")
def campaign_page(
    request: Request,
    *,
    runtime: RuntimeDep,
    session: SessionDep,
    campaign_id: CampaignId,
    state: Annotated[str | None, Query(max_length=20)] = None,
    page: PageNumber = 1,
) -> Response:
    """Progress (live), actions, failures, in doubt, chart and the recipient table."""
    try:
        context = _campaign_context(runtime, campaign_id, state, page)
    except InputError:
        return render(request, "missing.html", status=404, csrf=session.csrf)
    return render(request, "campaign.html", csrf=session.csrf, actions_list=ACTIONS, **context)


@router.get("/campaigns/{campaign_id}/live")
def campaign_live(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    campaign_id: CampaignId,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The live part of the campaign page, fetched every 2 s by ``console.js``."""
    try:
        context = _campaign_context(runtime, campaign_id, state, 1, full=False)
    except InputError:
        return PlainTextResponse("not found", status_code=404, headers=dict(HEADERS))
    return render_fragment(
        request, "_live.html", csrf=session.csrf, actions_list=ACTIONS, **context
    )


@router.get("/replies")
def replies_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, page: PageNumber = 1
) -> Response:
    """Incoming SMS linked to their campaign and message (read-only)."""
    with session_scope(runtime.sessions) as db:
        view = replies_view(db, page)
    return render(request, "replies.html", csrf=session.csrf, **view)


@router.get("/opt-outs")
def optouts_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, page: PageNumber = 1
) -> Response:
    """The suppression list (read-only)."""
    with session_scope(runtime.sessions) as db:
        view = optouts_view(db, page)
    return render(request, "optouts.html", csrf=session.csrf, **view)


@router.get("/campaigns/{campaign_id}/results.{format}")
async def results(
    runtime: RuntimeDep, session: SessionDep, campaign_id: CampaignId, format: str
) -> Response:
    """What ``campaign export`` writes, as CSV or Parquet."""
    if format not in ("csv", "parquet"):
        raise ApiError(404, "not_found", "results come as .csv or .parquet")
    return await export_response(runtime, campaign_id, format)


@router.get("/message-info")
def message_info(
    runtime: RuntimeDep,
    session: SessionDep,
    text: Annotated[str, Query(max_length=10_000)] = "",
    provider: Annotated[str, Query(max_length=20)] = BYTEHAND,
) -> JSONResponse:
    """Characters, encoding and parts of a message as typed, and what smart encoding saves."""
    settings = runtime.settings
    sizes = (settings.bytehand if provider == BYTEHAND else settings.timetochat).parts
    info = sms.analyze(text, sizes)
    smart = sms.smart_encode(text, sizes)
    smart_info = sms.analyze(smart, sizes)
    return JSONResponse(
        {
            "chars": info.chars,
            "encoding": info.encoding,
            "parts": info.parts,
            "limit": sms.check_limits(info, sizes) if info.parts else None,
            "forcing": [{"char": ch, "name": sms.char_name(ch)} for ch in info.ucs2_forcing],
            "smart": {
                "changes": smart != text,
                "encoding": smart_info.encoding,
                "parts": smart_info.parts,
                "saved": info.parts - smart_info.parts,
            },
        },
        headers=dict(HEADERS),
    )


# -- forms that change something ---------------------------------------------------------------


async def _upload(request: Request, runtime: Runtime, session: ConsoleSession) -> Upload | None:
    """The multipart form, or None when its CSRF token is wrong (the file is then removed)."""
    upload = await receive_upload(request, max_file_bytes=runtime.settings.max_upload_bytes)
    if not check_csrf(session, upload.fields.get("csrf")):
        await run_in_threadpool(shutil.rmtree, upload.path.parent, True)
        return None
    return upload


def _form_error(request: Request, values: dict[str, str], message: str) -> Response:
    if _fetched(request):
        return render_fragment(request, "_error.html", status=400, message=message)
    session = _session(request)
    return render(
        request, "new.html", status=400, csrf=session.csrf, values=values, estimate=None,
        error=message,
    )  # fmt: skip


async def _estimated(
    request: Request, runtime: RuntimeDep, session: SessionDep
) -> tuple[Upload, dict[str, Any], bytes] | Response:
    """Estimate the posted upload (nothing stored): the upload, its figures and its reject
    report; or the page answering a refused form. The upload's directory is removed."""
    try:
        upload = await _upload(request, runtime, session)
    except ApiError as exc:
        return _form_error(request, {}, exc.message)
    if upload is None:
        return _refused(request)
    try:
        form = validate_form(EstimateForm, forms.estimate_fields(upload.fields))
        figures = await run_in_threadpool(functools.partial(estimate_upload, runtime, upload, form))
        report = (upload.path.parent / "rejects.csv").read_bytes()
    except (InputError, RequestValidationError) as exc:
        return _form_error(request, forms.shown_values(upload.fields), forms.message_of(exc))
    finally:
        await run_in_threadpool(shutil.rmtree, upload.path.parent, True)
    return upload, figures, report


@router.post("/estimate")
async def estimate(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The figures of the upload; nothing stored."""
    estimated = await _estimated(request, runtime, session)
    if isinstance(estimated, Response):
        return estimated
    upload, figures, _report = estimated
    if _fetched(request):
        return render_fragment(request, "_estimate.html", estimate=figures)
    return render(
        request, "new.html", csrf=session.csrf, values=forms.shown_values(upload.fields),
        estimate=figures, error=None, reselect=True,
    )  # fmt: skip


@router.post("/rejects")
async def rejects(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The reject report of the upload as a CSV download (cells safe to open in Excel)."""
    estimated = await _estimated(request, runtime, session)
    if isinstance(estimated, Response):
        return estimated
    upload, _figures, report = estimated
    name = f"{upload.filename.rsplit('.', 1)[0]}-rejects.csv"
    return Response(
        report,
        media_type="text/csv; charset=utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/campaigns")
async def create(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Store the campaign (a draft) and go to its page."""
    try:
        upload = await _upload(request, runtime, session)
    except ApiError as exc:
        return _form_error(request, {}, exc.message)
    if upload is None:
        return _refused(request)
    values = forms.shown_values(upload.fields)
    try:
        form = validate_form(CampaignForm, forms.campaign_fields(upload.fields))
        summary = await run_in_threadpool(
            functools.partial(forms.create_from, runtime, upload, form)
        )
    except (InputError, RequestValidationError) as exc:
        return _form_error(request, values, forms.message_of(exc, upload))
    finally:
        await run_in_threadpool(shutil.rmtree, upload.path.parent, True)
    location = f"/console/campaigns/{summary.id}"
    if _fetched(request):
        return JSONResponse({"location": location}, headers=dict(HEADERS))
    return RedirectResponse(location, status_code=303, headers=dict(HEADERS))


def _kick(on_start: OnStart, campaign_id: int) -> None:
    try:
        on_start(campaign_id)
    except Exception:
        return  # beat feeds it within a tick; the state change stands


@router.post("/campaigns/{campaign_id}/test-send")
async def send_a_test(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    campaign_id: CampaignId,
    on_start: Annotated[OnStart, Depends(get_on_start)],
) -> Response:
    """Send the campaign's message to one number (:mod:`dispatcher.testsend`); show the test."""
    fields = await _small_form(request)
    if not check_csrf(session, fields.get("csrf")):
        return _refused(request)
    try:
        test = await run_in_threadpool(
            send_test, runtime, campaign_id, fields.get("phone", "")[:32], utcnow()
        )
    except InputError as exc:
        status = 404 if exc.code == "not_found" else 400
        return render(request, "error.html", status=status, csrf=session.csrf, message=str(exc))
    _kick(on_start, test.id)
    return RedirectResponse(f"/console/campaigns/{test.id}", status_code=303, headers=dict(HEADERS))


@router.post("/campaigns/{campaign_id}/{action}")
async def act(
    request: Request,
    *,
    runtime: RuntimeDep,
    session: SessionDep,
    campaign_id: CampaignId,
    action: Annotated[str, Path(max_length=20)],
    on_start: Annotated[OnStart, Depends(get_on_start)],
) -> Response:
    """Start, pause, resume, cancel, retry failed, settle in-doubt sends, delete a draft."""
    fields = await _small_form(request)
    if not check_csrf(session, fields.get("csrf")):
        return _refused(request)
    if action not in (*ACTIONS, "resolve", "delete"):
        raise ApiError(404, "not_found", "no such action")
    now = utcnow()
    back = f"/console/campaigns/{campaign_id}"
    try:
        with session_scope(runtime.sessions) as db:
            if action == "start":
                campaigns.start(db, campaign_id, now)
            elif action == "pause":
                campaigns.pause(db, campaign_id, now, reason="paused from the console")
            elif action == "resume":
                campaigns.resume(db, campaign_id, now)
            elif action == "cancel":
                campaigns.cancel(db, campaign_id, now)
            elif action == "retry-failed":
                campaigns.retry_failed(db, campaign_id, now)
            elif action == "resolve":
                resend = fields.get("resolution") == "resend"
                campaigns.resolve_in_doubt(db, campaign_id, now, resend=resend)
            else:
                source = campaigns.delete_draft(db, campaign_id)
                back = "/console/"
    except InputError as exc:
        status = 404 if exc.code == "not_found" else 409
        return render(request, "error.html", status=status, csrf=session.csrf, message=str(exc))
    if action == "delete":
        forget_source(runtime.settings.state_dir, source)
    elif action in ("start", "resume", "retry-failed", "resolve"):
        _kick(on_start, campaign_id)
    return RedirectResponse(back, status_code=303, headers=dict(HEADERS))


def sign_in_needed(request: Request, exc: Exception) -> Response:
    """Pages go to the sign-in form; fetches and downloads get a plain 401."""
    if request.method == "GET" and not _fetched(request) and "/live" not in request.url.path:
        return RedirectResponse("/console/sign-in", status_code=303, headers=dict(HEADERS))
    return PlainTextResponse("sign in first", status_code=401, headers=dict(HEADERS))
