"""POST /campaigns: a multipart upload streamed to disk with a limit, then the loader."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from dispatcher.config import Settings
from dispatcher.runtime import Runtime
from dispatcher.sandbox.server import serve_in_thread
from dispatcher.web import create_app
from tests.web.helpers import API_TOKEN, campaign_count

CSV = "phone;first_name\n0612345678;Ann\n06 12 34 56 79;Bob\n0612345678;Ann again\nnope;Eve\n"
FIELDS = {"provider": "bytehand", "sender": "SHOP", "text": "Bonjour {first_name}"}


def upload(api: httpx.Client, content: bytes, filename: str = "spring.csv", **fields: str):
    return api.post(
        "/campaigns", data={**FIELDS, **fields}, files={"file": (filename, content, "text/csv")}
    )


def test_upload_creates_a_draft_with_its_estimate(api: httpx.Client, runtime: Runtime) -> None:
    """201 with the id and the estimate; the default name is the uploaded file's stem."""
    answer = upload(api, CSV.encode())
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["state"] == "draft"
    assert (body["name"], body["valid"], body["duplicates"]) == ("spring", 2, 1)
    assert answer.headers["location"] == f"/campaigns/{body['id']}"
    detail = api.get(f"/campaigns/{body['id']}").json()
    assert detail["counts"] == {"pending": 2}
    assert detail["template"] == "Bonjour {first_name}"
    assert detail["priority"] == "normal"


def test_priority_field(api: httpx.Client) -> None:
    """``priority`` sets the campaign's share of its account; anything else is a 422."""
    answer = upload(api, CSV.encode(), priority="high")
    assert answer.status_code == 201, answer.text
    assert api.get(f"/campaigns/{answer.json()['id']}").json()["priority"] == "high"
    assert upload(api, CSV.encode(), priority="urgent").status_code == 422


def test_name_and_schedule_fields(api: httpx.Client) -> None:
    """Form fields reach the loader; empty optional fields mean "not given"."""
    answer = upload(api, CSV.encode(), name="Soldes <b>", validity="", smart_encoding="true")
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "Soldes <b>"
    assert answer.json()["smart_encoding"] is True


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\x02garbage" * 10, b"PAR1not really parquet", b"name;city\nAnn;Paris\n"],
    ids=["empty", "binary", "fake-parquet", "no-phone-column"],
)
def test_bad_file_is_400_and_stores_nothing(
    api: httpx.Client, runtime: Runtime, content: bytes
) -> None:
    """An unusable file is a 400 JSON error and no campaign exists afterwards."""
    answer = upload(api, content)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] and error["message"]
    assert "dispatcher-upload-" not in error["message"]
    assert campaign_count(runtime) == 0


def test_bad_schedule_is_400(api: httpx.Client, runtime: Runtime) -> None:
    """A naive time is refused by the loader (400 bad_schedule), nothing stored."""
    answer = upload(api, CSV.encode(), start_at="2030-01-01T09:00:00")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_schedule"
    assert campaign_count(runtime) == 0


@pytest.mark.parametrize(
    "fields",
    [{"provider": "carrier-pigeon"}, {"sender": ""}, {"name": "a\x00b"}, {"colour": "red"}],
)
def test_bad_fields_are_422(api: httpx.Client, runtime: Runtime, fields: dict[str, str]) -> None:
    """Form fields are validated like any FastAPI input (422), nothing stored."""
    answer = upload(api, CSV.encode(), **fields)
    assert answer.status_code == 422, answer.text
    assert campaign_count(runtime) == 0


def test_missing_file_and_wrong_content_type(api: httpx.Client) -> None:
    """No file part is 400; a JSON body is 415."""
    assert api.post("/campaigns", data=FIELDS, files={"other": ("x", b"y")}).status_code == 400
    assert api.post("/campaigns", json=FIELDS).status_code == 415


def test_too_large_is_413(settings: Settings, runtime: Runtime) -> None:
    """Past max_upload_bytes the answer is 413 and nothing is stored."""
    small = Runtime(dataclasses.replace(settings, max_upload_bytes=1000))
    try:
        with serve_in_thread(create_app(small)) as server:
            client = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {API_TOKEN}"}
            )
            with client:
                just_over = upload(client, CSV.encode() + b"0612345670;Zed\n" * 70)
                assert just_over.status_code == 413
                assert just_over.json()["error"]["code"] == "too_large"
                huge = upload(client, b"x" * 5_000_000)
                assert huge.status_code == 413
                assert upload(client, CSV.encode()).status_code == 201
    finally:
        small.close()
    assert campaign_count(runtime) == 1


def test_temporary_files_are_removed(api: httpx.Client, tmp_path: Path, monkeypatch) -> None:
    """The saved upload is deleted whether the loader succeeds or fails."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert upload(api, CSV.encode()).status_code == 201
    assert upload(api, b"").status_code == 400
    assert not list(tmp_path.glob("dispatcher-upload-*"))
