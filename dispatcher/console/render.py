"""Jinja2 templates of the console, rendered with autoescaping and served under a strict CSP.

Every value from the database or an upload (campaign names, file columns, replies) is escaped
by Jinja2's autoescape; the pages run no inline script and no inline style, so the policy below
allows scripts and styles from this origin only (``static/``, package data), and images only as
inline SVG drawn here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dispatcher.console.i18n import LANG_COOKIE, LANGUAGES, format_number, language_of, translator

__all__ = ["HEADERS", "STATIC_DIR", "render", "render_fragment"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

_ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "–"


def _context(request: Request, values: Mapping[str, Any]) -> dict[str, Any]:
    language = language_of(request)
    words = translator(language)

    def t(text: str) -> str:
        return words.get(text, text)

    def number(value: float | int, decimals: int = 0) -> str:
        return format_number(value, language, decimals)

    return {
        "t": t,
        "lang": language,
        "languages": LANGUAGES,
        "number": number,
        "iso": _iso,
        "utc": _utc,
        "path": request.url.path,
        **values,
    }


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A whole page; ``?lang=`` is remembered in a cookie."""
    html = _ENV.get_template(template).render(_context(request, values))
    response = HTMLResponse(html, status_code=status, headers=dict(HEADERS))
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="strict", path="/")
    return response


def render_fragment(
    request: Request, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A part of a page, fetched by ``console.js`` (same headers)."""
    html = _ENV.get_template(template).render(_context(request, values))
    return HTMLResponse(html, status_code=status, headers=dict(HEADERS))
