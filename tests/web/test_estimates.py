"""The console's use cases over the JSON API: estimate without storing, drafts deleted, the
campaign list filtered, exports with the file's own columns."""

from __future__ import annotations

import csv
import io

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update

from dispatcher.db import session_scope
from dispatcher.models import InboundMessage, Message
from dispatcher.runtime import Runtime
from tests.web.helpers import add_campaign, campaign_count

CSV = (
    "phone;first_name;customer\n"
    '0612345678;Ann;=HYPERLINK("http://evil")\n'
    "nope;Bob;C2\n"
    "06 12 34 56 79;Eve;C3\n"
    "0612345678;Ann again;C4\n"
)
FIELDS = {"provider": "bytehand", "text": "Bonjour {first_name}"}


def _files(content: str = CSV) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("spring.csv", content.encode(), "text/csv")}


def test_estimate_stores_nothing(api: httpx.Client, runtime: Runtime) -> None:
    """POST /estimates answers the figures and the first rejected rows; no campaign exists."""
    answer = api.post("/estimates", data=FIELDS, files=_files())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows"], body["valid"], body["duplicates"], body["stored"]) == (4, 2, 1, False)
    assert body["first_rejects"] == [
        {"line": 3, "phone": "nope", "reason": "invalid_number"},
        {"line": 5, "phone": "0612345678", "reason": "duplicate of line 2"},
    ]
    assert campaign_count(runtime) == 0


def test_estimate_without_phone_column_is_400(api: httpx.Client, runtime: Runtime) -> None:
    """A file with no phone column: a 400 naming the problem, nothing stored."""
    answer = api.post("/estimates", data=FIELDS, files=_files("name;city\nAnn;Paris\n"))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "no_phone_column"
    assert campaign_count(runtime) == 0


def test_estimate_needs_the_token(client: httpx.Client) -> None:
    """Anonymous: 401 before the upload is judged."""
    assert client.post("/estimates", data=FIELDS, files=_files()).status_code == 401


def test_delete_a_draft(api: httpx.Client, runtime: Runtime) -> None:
    """DELETE removes a draft and its recipients."""
    created = api.post("/campaigns", data={**FIELDS, "sender": "SHOP"}, files=_files()).json()
    assert api.delete(f"/campaigns/{created['id']}").json() == {
        "id": created["id"],
        "deleted": True,
    }
    assert campaign_count(runtime) == 0
    assert api.get(f"/campaigns/{created['id']}").status_code == 404


def test_started_campaign_cannot_be_deleted(api: httpx.Client, runtime: Runtime) -> None:
    """A campaign past draft is history: 409."""
    campaign_id, _ = add_campaign(runtime, state="running")
    assert api.delete(f"/campaigns/{campaign_id}").status_code == 409
    assert campaign_count(runtime) == 1


def test_list_filters_and_counts(api: httpx.Client, runtime: Runtime) -> None:
    """GET /campaigns: newest first, by state and provider, with the total for paging."""
    first, _ = add_campaign(runtime, state="running")
    add_campaign(runtime, state="completed", provider="timetochat")
    third, _ = add_campaign(runtime, state="running")
    page = api.get("/campaigns", params={"state": "running", "limit": 1}).json()
    assert ([item["id"] for item in page["items"]], page["total"]) == ([third], 2)
    second_page = api.get("/campaigns", params={"state": "running", "offset": 1}).json()
    assert [item["id"] for item in second_page["items"]] == [first]
    by_provider = api.get("/campaigns", params={"provider": "timetochat"}).json()
    assert [item["provider"] for item in by_provider["items"]] == ["timetochat"]


def _export_campaign(api: httpx.Client, runtime: Runtime) -> int:
    created = api.post("/campaigns", data={**FIELDS, "sender": "SHOP"}, files=_files()).json()
    with session_scope(runtime.sessions) as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == created["id"], Message.line == 3)
            .values(state="failed", last_error="bytehand:12 The phone number does not exist.")
        )
        first = session.query(Message).filter_by(campaign_id=created["id"], line=1).one()
        session.add(
            InboundMessage(
                provider="bytehand",
                from_number=first.phone,
                to_number="SHOP",
                text="STOP",
                reply_to_id=first.id,
                dedup_key="mo-1",
            )
        )
    return int(created["id"])


def test_export_csv_has_original_columns_reason_and_reply(
    api: httpx.Client, runtime: Runtime
) -> None:
    """The CSV export: the file's columns beside ours, the reason labelled, formulas defused."""
    campaign_id = _export_campaign(api, runtime)
    answer = api.get(f"/campaigns/{campaign_id}/export", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["line"], r["first_name"], r["customer"]) for r in rows] == [
        ("1", "Ann", '\'=HYPERLINK("http://evil")'),
        ("3", "Eve", "C3"),
    ]
    assert rows[0]["phone (file)"] == "0612345678" and rows[0]["phone"] == "+33612345678"
    assert (rows[0]["reply"], rows[1]["reply"]) == ("STOP", "")
    assert (rows[1]["reason_code"], rows[1]["reason"]) == (
        "bytehand:12",
        "the number does not exist",
    )


def test_export_parquet(api: httpx.Client, runtime: Runtime) -> None:
    """The Parquet export holds the same rows and columns."""
    campaign_id = _export_campaign(api, runtime)
    answer = api.get(f"/campaigns/{campaign_id}/export", params={"format": "parquet"})
    assert answer.status_code == 200, answer.text
    table: pa.Table = pq.read_table(io.BytesIO(answer.content))
    assert table.column("customer").to_pylist() == ['=HYPERLINK("http://evil")', "C3"]
    assert table.column("state").to_pylist() == ["pending", "failed"]


def test_export_of_unknown_campaign_is_404(api: httpx.Client) -> None:
    """No such campaign: the JSON 404."""
    assert api.get("/campaigns/999/export").status_code == 404


def test_export_without_kept_file_has_our_columns(api: httpx.Client, runtime: Runtime) -> None:
    """A campaign with no kept file (stored before files were kept) still exports."""
    campaign_id, _ = add_campaign(runtime, messages=[("delivered", "p1"), ("failed", None)])
    answer = api.get(f"/campaigns/{campaign_id}/export")
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["state"] for r in rows] == ["delivered", "failed"]


def test_first_rejects_show_the_cell_as_written(api: httpx.Client) -> None:
    """The estimate shows a rejected cell as the file has it (the report's quote is for
    spreadsheets only)."""
    content = "phone;first_name\n+33 1;Ann\n=1+1;Bob\n0612345678;Eve\n"
    body = api.post("/estimates", data=FIELDS, files=_files(content)).json()
    assert [r["phone"] for r in body["first_rejects"]] == ["+33 1", "=1+1"]


def test_test_send_is_a_running_one_recipient_copy(
    api: httpx.Client, runtime: Runtime, kicks: list[int]
) -> None:
    """POST /campaigns/{id}/test-send: the message, rendered with the file's first row, to one
    number, started at once; the campaign itself is untouched."""
    created = api.post("/campaigns", data={**FIELDS, "sender": "SHOP"}, files=_files()).json()
    answer = api.post(f"/campaigns/{created['id']}/test-send", json={"phone": "+33699999999"})
    assert answer.status_code == 201, answer.text
    test_id = answer.json()["id"]
    assert kicks == [test_id]
    detail = api.get(f"/campaigns/{test_id}").json()
    assert (detail["state"], detail["counts"]) == ("running", {"pending": 1})
    message = api.get(f"/campaigns/{test_id}/messages").json()["items"][0]
    assert message["phone"] == "+33699999999"
    with session_scope(runtime.sessions) as session:
        text = session.query(Message.text).filter_by(campaign_id=test_id).scalar()
    assert text == "Bonjour Ann"
    assert api.get(f"/campaigns/{created['id']}").json()["state"] == "draft"
