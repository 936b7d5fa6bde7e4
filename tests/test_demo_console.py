"""``make demo`` and the console: the address and token are printed; no terminal, no wait."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from dispatcher import demo


def test_without_a_terminal_the_demo_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-interactive stdin: return at once, never read it (CI, pipes)."""
    monkeypatch.setattr(demo.sys.stdin, "isatty", lambda: False)

    def refuse(*_: Any) -> str:
        raise AssertionError("the demo read stdin without a terminal")

    monkeypatch.setattr("builtins.input", refuse)
    out = io.StringIO()
    stack: Any = SimpleNamespace(web_port=8123, api_token="demo-token")
    demo._keep_up_for_the_console(Console(file=out), stack)
    assert out.getvalue() == ""


def test_on_a_terminal_it_waits_for_enter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal: print the console's URL and token, then wait for Enter."""
    monkeypatch.setattr(demo.sys.stdin, "isatty", lambda: True)
    read: list[str] = []
    monkeypatch.setattr("builtins.input", lambda *_: read.append("enter") or "")
    out = io.StringIO()
    stack: Any = SimpleNamespace(web_port=8123, api_token="demo-token")
    demo._keep_up_for_the_console(Console(file=out, width=200), stack)
    assert read == ["enter"]
    assert "http://127.0.0.1:8123/console/" in out.getvalue()
    assert "demo-token" in out.getvalue()
