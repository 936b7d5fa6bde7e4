"""A tiny read-only dashboard: campaigns with their counts and a progress bar.

Authentication: open ``/?token=<DISPATCHER_API_TOKEN>`` once; the token is then kept in an
``HttpOnly`` ``SameSite=Strict`` cookie and the browser is sent to ``/`` (see
:mod:`dispatcher.web.auth`). Without it the page is a small form asking for the token.

Every value from the database (campaign names come from marketers, states and counts from us)
is HTML-escaped, and a strict Content-Security-Policy forbids scripts altogether, so a name
such as ``<script>`` is shown, never run.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dispatcher.db import session_scope
from dispatcher.runtime import Runtime
from dispatcher.web.auth import COOKIE, token_matches
from dispatcher.web.queries import campaign_page
from dispatcher.web.state import get_runtime

__all__ = ["render_campaigns", "router"]

router = APIRouter(include_in_schema=False)

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4em .6em;border-bottom:1px solid #ddd;vertical-align:top}
.bar{background:#eee;width:12em;height:1em;border-radius:3px;overflow:hidden}
.bar>div{background:#3a7;height:100%}
.counts,.why{color:#555;font-size:12px}
"""

_SHOWN = 200


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta http-equiv="refresh" content="15">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _state(item: dict[str, Any]) -> str:
    """The state, and for a paused campaign why and since when (UTC)."""
    shown = escape(str(item["state"]))
    if item.get("pause_reason") is None:
        return shown
    since = item["paused_at"].strftime("%Y-%m-%d %H:%M:%S UTC") if item["paused_at"] else "?"
    return f"{shown}<div class=why>{escape(str(item['pause_reason']))}<br>since {since}</div>"


def _row(item: dict[str, Any]) -> str:
    percent = round(float(item["progress"]) * 100, 1)
    counts = ", ".join(
        f"{escape(str(state))}: {int(n)}" for state, n in sorted(item["counts"].items())
    )
    return (
        "<tr>"
        f"<td>{int(item['id'])}</td>"
        f"<td>{escape(str(item['name']))}</td>"
        f"<td>{escape(str(item['provider']))}</td>"
        f"<td>{_state(item)}</td>"
        f'<td><div class=bar title="{percent}%"><div style="width:{percent}%"></div></div>'
        f"{percent}% of {int(item['total'])}</td>"
        f"<td class=counts>{counts or '-'}</td>"
        "</tr>"
    )


def render_campaigns(items: list[dict[str, Any]]) -> str:
    """The dashboard page for rows of :func:`dispatcher.web.queries.campaign_page`."""
    rows = "".join(_row(item) for item in items) or "<tr><td colspan=6>no campaign yet</td></tr>"
    return _page(
        "Campaigns",
        "<h1>Campaigns</h1><table><thead><tr><th>id</th><th>name</th><th>provider</th>"
        "<th>state</th><th>progress</th><th>messages by state</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>",
    )


def _login(message: str) -> HTMLResponse:
    form = (
        f"<h1>Campaigns</h1><p>{escape(message)}</p>"
        '<form method=get action="/"><label>API token '
        "<input type=password name=token autocomplete=off></label> "
        "<button>Open</button></form>"
    )
    return HTMLResponse(_page("Sign in", form), status_code=401, headers=_HEADERS)


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    token: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The campaign list; see the module docstring for how the token is given."""
    if token is not None:
        if not token_matches(runtime, token):
            return _login("That token is not the API token.")
        redirect = RedirectResponse("/", status_code=303, headers=_HEADERS)
        redirect.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return redirect
    if not token_matches(runtime, request.cookies.get(COOKIE, "")):
        return _login("Open this page with ?token=<API token> once.")
    with session_scope(runtime.sessions) as session:
        items = campaign_page(session, state=None, limit=_SHOWN, offset=0)
    return HTMLResponse(render_campaigns(items), headers=_HEADERS)
