"""The dashboard: token once then cookie, and every marketer-supplied value escaped."""

from __future__ import annotations

import httpx

from dispatcher.runtime import Runtime
from tests.web.helpers import API_TOKEN, add_campaign


def test_without_token_asks_for_it(client: httpx.Client, runtime: Runtime) -> None:
    """No token, no campaigns: a 401 page with a form."""
    add_campaign(runtime, name="secret plan")
    answer = client.get("/")
    assert answer.status_code == 401
    assert "<form" in answer.text and "secret plan" not in answer.text


def test_wrong_token_is_refused(client: httpx.Client) -> None:
    """A wrong token sets no cookie."""
    answer = client.get("/", params={"token": "nope"})
    assert answer.status_code == 401
    assert "dispatcher_token" not in answer.headers.get("set-cookie", "")


def test_token_then_cookie(client: httpx.Client, runtime: Runtime) -> None:
    """?token= sets an HttpOnly cookie and redirects to the bare URL, which lists campaigns."""
    add_campaign(runtime, name="Spring", messages=[("delivered", "a"), ("sent", "b")])
    answer = client.get("/", params={"token": API_TOKEN}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/")
    assert page.status_code == 200
    assert "Spring" in page.text and "50.0%" in page.text
    assert "script-src" not in page.headers["content-security-policy"]


def test_names_are_escaped(client: httpx.Client, runtime: Runtime) -> None:
    """A campaign named <script> is shown as text, never as markup."""
    add_campaign(runtime, name='<script>alert("x")</script>&"')
    client.cookies.set("dispatcher_token", API_TOKEN)
    page = client.get("/").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;" in page


def test_cookie_is_not_accepted_by_the_api(client: httpx.Client) -> None:
    """The API wants the bearer header: a cookie alone is 401 (no cross-site POSTs)."""
    client.cookies.set("dispatcher_token", API_TOKEN)
    assert client.get("/campaigns").status_code == 401
