"""The console over real HTTP: sign-in, session cookie, CSRF, escaping, CSP, languages."""

from __future__ import annotations

import re

import httpx
import pytest

from dispatcher.runtime import Runtime
from tests.web.helpers import API_TOKEN, BYTEHAND_KEY, WEBHOOK_SECRET, add_campaign

CSV = "phone;first_name\n0612345678;Ann\nnope;Bob\n"


def sign_in(client: httpx.Client) -> str:
    """Sign in with the API token; the page's CSRF token."""
    answer = client.post("/console/sign-in", data={"token": API_TOKEN})
    assert answer.status_code == 303, answer.text
    page = client.get("/console/new")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_sign_in_sets_a_session_cookie_that_is_not_the_token(client: httpx.Client) -> None:
    """The cookie is signed, HttpOnly, SameSite=Strict, and holds no token."""
    answer = client.post("/console/sign-in", data={"token": API_TOKEN})
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/")
    cookie = answer.headers["set-cookie"]
    assert API_TOKEN not in cookie
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "secure" not in cookie.lower()
    assert client.get("/console/").status_code == 200


def test_cookie_is_secure_behind_https(client: httpx.Client) -> None:
    """Behind a proxy that says HTTPS, the cookie is Secure."""
    answer = client.post(
        "/console/sign-in", data={"token": API_TOKEN}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in answer.headers["set-cookie"].lower()


def test_wrong_token_does_not_sign_in(client: httpx.Client) -> None:
    """401 with the form again, no cookie, and the pages still send to the sign-in form."""
    answer = client.post("/console/sign-in", data={"token": "nope"})
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert "That token is not the API token." in answer.text
    page = client.get("/console/", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/console/sign-in")


def test_forged_session_cookie_is_refused(client: httpx.Client) -> None:
    """A cookie not signed with the token's key is no session."""
    client.cookies.set("dispatcher_session", "eyJpYXQiOjEsImNzcmYiOiJ4In0=.AAAA")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_sign_in_page_never_refreshes(client: httpx.Client) -> None:
    """No meta refresh: a half-typed token stays."""
    page = client.get("/console/sign-in").text
    assert "http-equiv" not in page.lower()
    assert 'id="token"' in page and '<label for="token">API token</label>' in page


def test_form_without_csrf_is_refused(client: httpx.Client, runtime: Runtime) -> None:
    """A forged action without the session's CSRF token: 403, the campaign untouched."""
    sign_in(client)
    campaign_id, _ = add_campaign(runtime, state="running")
    answer = client.post(f"/console/campaigns/{campaign_id}/pause", data={})
    assert answer.status_code == 403
    wrong = client.post(f"/console/campaigns/{campaign_id}/pause", data={"csrf": "guess"})
    assert wrong.status_code == 403
    api = client.get(f"/campaigns/{campaign_id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert api.json()["state"] == "running"


def test_action_with_csrf_works(client: httpx.Client, runtime: Runtime) -> None:
    """With its CSRF token the same form pauses the campaign and records why."""
    csrf = sign_in(client)
    campaign_id, _ = add_campaign(runtime, state="running")
    answer = client.post(f"/console/campaigns/{campaign_id}/pause", data={"csrf": csrf})
    assert answer.status_code == 303
    api = client.get(f"/campaigns/{campaign_id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert (api.json()["state"], api.json()["pause_reason"]) == (
        "paused",
        "paused from the console",
    )


def test_upload_without_csrf_is_refused(client: httpx.Client, runtime: Runtime) -> None:
    """A forged upload stores nothing."""
    sign_in(client)
    answer = client.post(
        "/console/campaigns",
        data={"provider": "bytehand", "sender": "SHOP", "text": "Hi"},
        files={"file": ("r.csv", CSV.encode(), "text/csv")},
    )
    assert answer.status_code == 403
    listed = client.get("/campaigns", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert listed.json()["total"] == 0


def test_names_are_escaped(client: httpx.Client, runtime: Runtime) -> None:
    """A campaign named <script> is shown as text, never as markup, on both pages."""
    campaign_id, _ = add_campaign(runtime, name='<script>alert("x")</script>&"')
    sign_in(client)
    for path in ("/console/", f"/console/campaigns/{campaign_id}"):
        page = client.get(path).text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#34;" in page


def test_csp_allows_scripts_from_self_only(client: httpx.Client) -> None:
    """Scripts and styles from this origin only, nothing inline."""
    sign_in(client)
    policy = client.get("/console/").headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    page = client.get("/console/new").text
    assert "<script>" not in page and " style=" not in page
    assert client.get("/console/static/console.js").status_code == 200


def test_no_secret_in_any_page(client: httpx.Client, runtime: Runtime) -> None:
    """Neither the API token nor a provider credential appears in the console."""
    campaign_id, _ = add_campaign(runtime)
    sign_in(client)
    for path in ("/console/", "/console/new", f"/console/campaigns/{campaign_id}",
                 "/console/replies", "/console/opt-outs", "/console/sign-in"):  # fmt: skip
        page = client.get(path).text
        for secret in (API_TOKEN, BYTEHAND_KEY, WEBHOOK_SECRET):
            assert secret not in page, f"{secret} in {path}"


def test_session_cookie_is_not_accepted_by_the_api(client: httpx.Client) -> None:
    """The API wants the bearer header: the console's cookie alone is 401."""
    sign_in(client)
    assert client.get("/campaigns").status_code == 401


@pytest.mark.parametrize(
    ("headers", "params", "word"),
    [
        ({}, {}, "New campaign"),
        ({"Accept-Language": "fr-FR,fr;q=0.9"}, {}, "Nouvelle campagne"),
        ({"Accept-Language": "fr-FR"}, {"lang": "en"}, "New campaign"),
        ({}, {"lang": "fr"}, "Nouvelle campagne"),
    ],
)
def test_language(
    client: httpx.Client, headers: dict[str, str], params: dict[str, str], word: str
) -> None:
    """English by default, French on request (header or ?lang=)."""
    sign_in(client)
    assert word in client.get("/console/", headers=headers, params=params).text


def test_sign_out_needs_csrf_and_ends_the_session(client: httpx.Client) -> None:
    """Sign out clears the cookie."""
    csrf = sign_in(client)
    assert client.post("/console/sign-out", data={}).status_code == 403
    assert client.post("/console/sign-out", data={"csrf": csrf}).status_code == 303
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_estimate_page_shows_the_error_of_a_file_without_phone_column(client: httpx.Client) -> None:
    """Without scripts the estimate is a whole page; a file with no phone column says so."""
    csrf = sign_in(client)
    answer = client.post(
        "/console/estimate",
        data={"csrf": csrf, "provider": "bytehand", "text": "Hi"},
        files={"file": ("r.csv", b"name;city\nAnn;Paris\n", "text/csv")},
    )
    assert answer.status_code == 400
    assert "no phone column found" in answer.text


def test_root_leads_to_the_console(client: httpx.Client) -> None:
    """/ redirects to the console."""
    answer = client.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/")


def test_live_fragment_reports_progress(client: httpx.Client, runtime: Runtime) -> None:
    """The 2-second refresh: the progress bar in percent of final messages."""
    campaign_id, _ = add_campaign(
        runtime, messages=[("delivered", "a"), ("sent", "b"), ("pending", None), ("failed", None)]
    )
    sign_in(client)
    live = client.get(f"/console/campaigns/{campaign_id}/live", headers={"X-Console-Fetch": "1"})
    assert live.status_code == 200
    assert 'role="progressbar"' in live.text and 'aria-valuenow="50.0"' in live.text
    assert "<html" not in live.text


def test_message_info_counts_and_names_ucs2_characters(client: httpx.Client) -> None:
    """The live counter: characters, encoding, parts, the forcing character, smart saving."""
    sign_in(client)
    info = client.get(
        "/console/message-info", params={"text": "l’offre " + "x" * 70, "provider": "bytehand"}
    ).json()
    assert (info["chars"], info["encoding"], info["parts"]) == (78, "UCS-2", 2)
    assert info["forcing"] == [{"char": "’", "name": "U+2019 RIGHT SINGLE QUOTATION MARK"}]
    assert (info["smart"]["encoding"], info["smart"]["saved"]) == ("GSM-7", 1)


def test_replies_page_links_and_escapes(client: httpx.Client, runtime: Runtime) -> None:
    """An incoming SMS is listed with its campaign; its text (anyone's) is escaped."""
    from dispatcher.db import session_scope
    from dispatcher.models import InboundMessage, Suppression

    campaign_id, message_ids = add_campaign(runtime)
    with session_scope(runtime.sessions) as session:
        session.add(
            InboundMessage(
                provider="bytehand",
                from_number="+33612345678",
                to_number="SHOP",
                text="<img src=x onerror=alert(1)> STOP",
                reply_to_id=message_ids[0],
                dedup_key="mo-1",
            )
        )
        session.add(Suppression(phone="+33698765432", reason="opt-out"))
    sign_in(client)
    replies = client.get("/console/replies").text
    assert "&lt;img src=x onerror=alert(1)&gt; STOP" in replies and "<img" not in replies
    assert f'href="/console/campaigns/{campaign_id}"' in replies
    assert "+33698765432" in client.get("/console/opt-outs").text


def test_campaign_page_shows_the_accounts_rate_limit_use(
    client: httpx.Client, runtime: Runtime, redis_client: object
) -> None:
    """Calls of the provider account in the current second, of its limit."""
    campaign_id, _ = add_campaign(runtime, provider="bytehand")
    runtime.limiter("bytehand").complete(runtime.limiter("bytehand").wait_turn("send"))
    sign_in(client)
    page = client.get(f"/console/campaigns/{campaign_id}").text
    assert "Rate limit in use 1/20 calls in the last second" in page


def test_console_test_send_needs_csrf_and_shows_the_test(
    client: httpx.Client, runtime: Runtime
) -> None:
    """The test-send form: refused without CSRF; with it, the test campaign's page."""
    csrf = sign_in(client)
    created = client.post(
        "/campaigns",
        data={"provider": "bytehand", "sender": "SHOP", "text": "Hi {first_name}"},
        files={"file": ("r.csv", CSV.encode(), "text/csv")},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    ).json()
    url = f"/console/campaigns/{created['id']}/test-send"
    assert client.post(url, data={"phone": "+33699999999"}).status_code == 403
    answer = client.post(url, data={"phone": "+33699999999", "csrf": csrf})
    assert answer.status_code == 303
    page = client.get(answer.headers["location"]).text
    assert f"test of #{created['id']}: r" in page and "+33699999999" in page


def test_recipient_states_in_french(client: httpx.Client, runtime: Runtime) -> None:
    """A French reader sees the recipients' states in French; English keeps their names."""
    campaign_id, _ = add_campaign(runtime, messages=[("delivered", "a")])
    sign_in(client)
    french = client.get(f"/console/campaigns/{campaign_id}", params={"lang": "fr"}).text
    assert "délivré" in french
    english = client.get(f"/console/campaigns/{campaign_id}", params={"lang": "en"}).text
    assert ">delivered <b>" in english
