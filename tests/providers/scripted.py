"""A scripted provider on ``httpx.MockTransport``: canned answers, every request recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def reply(
    status: int,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """An answer with a JSON body (or raw bytes)."""
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


class ScriptedProvider:
    """Answers requests in order from ``answers``; an exception is raised as the transport would."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.kinds: list[str] = []

    def gate(self, kind: str) -> AbstractContextManager[None]:
        """A CallGate that records the kind of every call."""
        self.kinds.append(kind)
        return nullcontext()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._handle))

    def json_of(self, index: int) -> Any:
        return json.loads(self.requests[index].content)
