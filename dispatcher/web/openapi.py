"""The app's OpenAPI document: served at ``GET /openapi.json`` behind the API token.

Served, so API clients and the schema fuzz tests (``tests/web/test_schema.py``) read the very
document of the running version, built by FastAPI from the routes; behind the bearer token (401
without it, 503 while no token is configured, like every API route), because this app faces the
providers on the internet and an anonymous caller has no use for a map of it. No interactive
docs pages: they load their scripts from a CDN, and the JSON is all a client needs.

Routes that authenticate before reading their input (the webhooks, the upload, resolve-in-doubt:
see :mod:`dispatcher.web.webhooks` and :mod:`dispatcher.web.api`) cannot declare it as FastAPI
parameters, which FastAPI would parse and judge (422) before the credentials. They describe it
here instead, from typed wire formats (:mod:`dispatcher.web.schemas`), with
:func:`query_parameters` and :func:`request_body` as ``openapi_extra``: the document shows a
valid request, and the route keeps answering an invalid one with its own status (400, 403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter

from dispatcher.web.auth import require_token

__all__ = [
    "API_ERRORS",
    "OPENAPI_PATH",
    "WEBHOOK_ERRORS",
    "ErrorBody",
    "ErrorResponse",
    "json_schema",
    "query_parameters",
    "request_body",
    "serve_openapi",
]

OPENAPI_PATH = "/openapi.json"


class ErrorBody(BaseModel):
    """``code`` is stable (clients branch on it); ``message`` is for people."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error of the app (:mod:`dispatcher.web.errors`)."""

    error: ErrorBody


WEBHOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorResponse,
        "description": (
            "403 wrong credentials, 400 a callback we cannot read, 405 wrong method, 413 too large"
        ),
    },
}

API_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorResponse,
        "description": "401 token, 404 no such campaign, 409 wrong state, 422 invalid input",
    },
    503: {"model": ErrorResponse, "description": "no API token is configured: the API is off"},
}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions (no recursion in
    our wire formats), so it stands alone inside the document."""
    definitions: Mapping[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def json_schema(wire_format: Any) -> dict[str, Any]:
    """The standalone JSON schema of a model or ``TypedDict`` (by alias: as on the wire)."""
    return _inline(TypeAdapter(wire_format).json_schema(by_alias=True))


def query_parameters(wire_format: Any) -> list[dict[str, Any]]:
    """OpenAPI query parameters, one per property of ``wire_format``."""
    schema = json_schema(wire_format)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _absent_not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A form field is sent or not, never ``null``: optional properties lose their null branch."""
    for name, prop in schema.get("properties", {}).items():
        branches = [b for b in prop.get("anyOf", ()) if b != {"type": "null"}]
        if "anyOf" in prop and len(branches) == 1:
            rest = {key: value for key, value in prop.items() if key not in ("anyOf", "default")}
            schema["properties"][name] = {**branches[0], **rest}
    return schema


def request_body(
    wire_format: Any, media_type: str = "application/json", *, files: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An ``openapi_extra`` declaring a required body; ``files`` are binary form parts."""
    schema = json_schema(wire_format)
    if media_type != "application/json":
        schema = _absent_not_null(schema)
    for name in files:
        schema["properties"][name] = {"type": "string", "format": "binary"}
        schema.setdefault("required", []).append(name)
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


def _document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def serve_openapi(app: FastAPI, extra_paths: Mapping[str, Any]) -> None:
    """``GET /openapi.json`` on ``app`` (built with ``openapi_url=None``), behind the token;
    ``extra_paths`` are path items of what the app answers outside its routes (the webhooks)."""
    from_routes = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            from_routes()["paths"].update(extra_paths)  # FastAPI keeps it as openapi_schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = document  # type: ignore[method-assign]
    app.add_api_route(
        OPENAPI_PATH,
        _document,
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(require_token)],
    )
