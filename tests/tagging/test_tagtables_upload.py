"""Bulk upload and download of tag-table rows (API and pages), schema changes through the API, and the
OpenAPI schema. Real Butler repo, real PostgreSQL."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tagging.models import TagRow, TagRowChange, TagTable

from .tagtable_helpers import assert_no_rows, exposure_id, key_of, make_table, values_of

pytestmark = pytest.mark.django_db

API = "/api/v1/tag-tables/"


@pytest.fixture
def table(butler_repo, owner) -> TagTable:
    return make_table(owner)


def upload(api, user, table, name: str, content: str, **fields):
    return api(user).post(
        f"{API}{table.pk}/upload/",
        {"file": SimpleUploadedFile(name, content.encode()), **fields},
        format="multipart",
    )


def test_csv_upload_with_alternate_keys_stores_every_row(api, owner, table):
    content = (
        "obs_id,seeing,quality,dome_open,checked_at\n"
        "DC_O_20251121_000150,1.1,good,true,2025-11-21T03:00:00Z\n"
        "DC_O_20251121_000151,1.9,wonky,false,2025-11-21T03:10:00+01:00\n"
    )
    response = upload(api, owner, table, "night.csv", content, reason="night log")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    assert values_of(table, key_of(151)) == {
        "seeing": 1.9,
        "quality": "wonky",
        "dome_open": False,
        "checked_at": "2025-11-21T02:10:00+00:00",
    }
    assert TagRowChange.objects.filter(table=table, reason="night log").count() == 2
    day_seq = "day_obs,seq_num,n_sat\n20251121,150,7\n"
    assert upload(api, owner, table, "more.csv", day_seq).json()["updated"] == 1
    assert values_of(table, key_of(150))["n_sat"] == 7


def test_bad_csv_upload_names_line_and_column_and_stores_nothing(api, owner, table):
    content = (
        "exposure,seeing,quality,n_sat\n"
        f"{exposure_id(150)},1.1,good,1\n"
        f"{exposure_id(151)},fast,good,1\n"
        f"{exposure_id(999)},1.0,good,1\n"
        f"{exposure_id(152)},1.0,meh,1.5\n"
        f"{exposure_id(153)},,good,1\n"
    )
    response = upload(api, owner, table, "bad.csv", content)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "5 problems in bad.csv; nothing was stored."
    assert body["error_total"] == 5
    assert [(e["where"], e["key"]) for e in body["errors"]] == [
        ("line 3", "seeing"),
        ("line 4", "exposure"),
        ("line 5", "quality"),
        ("line 5", "n_sat"),
        ("line 6", "seeing"),
    ]
    assert_no_rows(table)


def test_required_values_missing_in_an_upload_are_errors(api, owner, table):
    response = upload(api, owner, table, "bad.csv", f"exposure,n_sat\n{exposure_id(150)},1\n")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"where": "line 2", "key": "seeing", "message": "required column 'seeing' has no value"}
    ]
    assert_no_rows(table)


def test_bad_json_upload_names_index_and_key(api, owner, table):
    rows = [
        {"exposure": exposure_id(150), "seeing": 1.0},
        {"exposure": exposure_id(151), "seeing": 1.0, "colour": "red"},
        {"seq_num": 152, "seeing": 1.0},
    ]
    response = upload(api, owner, table, "rows.json", json.dumps(rows))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert ("index 1", "colour") in {(e["where"], e["key"]) for e in errors}
    assert ("index 2", "seq_num") in {(e["where"], e["key"]) for e in errors}
    assert_no_rows(table)


def test_unreadable_files_are_refused_with_where(api, owner, table):
    response = upload(api, owner, table, "rows.json", '[{"exposure": 1,')
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["errors"][0]["message"]
    response = upload(api, owner, table, "rows.txt", "exposure\n1\n")
    assert response.status_code == 400 and "name it .csv or .json" in response.json()["detail"]
    assert_no_rows(table)


def test_many_errors_report_the_first_50_and_the_total(api, owner, table):
    content = "exposure,seeing\n" + "".join(f"{exposure_id(150)},x{i}\n" for i in range(80))
    body = upload(api, owner, table, "bad.csv", content).json()
    assert len(body["errors"]) == 50 and body["error_total"] >= 80
    assert body["errors"][0]["where"] == "line 2"
    assert_no_rows(table)


def test_drop_invalid_stores_the_valid_rows_and_reports_the_others(api, owner, table):
    content = f"exposure,seeing\n{exposure_id(150)},1.0\n{exposure_id(151)},fast\n{exposure_id(999)},1.0\n{exposure_id(152)},1.2\n"
    response = upload(api, owner, table, "mixed.csv", content, drop_invalid="true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 2 and body["dropped"] == 2
    assert {(p["where"], p["key"]) for p in body["dropped_report"]} == {("line 3", "seeing"), ("line 4", "exposure")}
    assert set(TagRow.objects.filter(table=table).values_list("key", flat=True)) == {key_of(150), key_of(152)}
    table.refresh_from_db()
    assert table.row_count == 2


def test_duplicate_data_ids_in_one_upload_are_an_error(api, owner, table):
    content = f"exposure,seeing\n{exposure_id(150)},1.0\n{exposure_id(150)},1.1\n"
    body = upload(api, owner, table, "dup.csv", content).json()
    assert body["errors"][0]["where"] == "line 3" and "also at line 2" in body["errors"][0]["message"]
    assert_no_rows(table)


def test_download_csv_and_json_and_json_uploads_back(api, owner, table, butler_repo):
    upload(api, owner, table, "a.csv", f"exposure,seeing,dome_open\n{exposure_id(150)},1.5,true\n")
    client = api(owner)
    csv_text = b"".join(client.get(f"{API}{table.pk}/download/", {"format": "csv"}).streaming_content).decode()
    assert csv_text.splitlines() == [
        "instrument,exposure,seeing,n_sat,comment,dome_open,quality,checked_at",
        f"DemoCam,{exposure_id(150)},1.5,,,true,,",
    ]
    data = json.loads(b"".join(client.get(f"{API}{table.pk}/download/", {"format": "json"}).streaming_content))
    assert data == [
        {
            "data_id": {"instrument": "DemoCam", "exposure": exposure_id(150)},
            "values": {
                "seeing": 1.5,
                "n_sat": None,
                "comment": None,
                "dome_open": True,
                "quality": None,
                "checked_at": None,
            },
        }
    ]
    other = make_table(owner, name="copy")
    assert upload(api, owner, other, "copy.json", json.dumps(data)).json()["created"] == 1
    assert values_of(other, key_of(150)) == {"seeing": 1.5, "dome_open": True}


def test_schema_changes_through_the_api_and_a_stale_version_is_409(api, owner, table):
    client = api(owner)
    base = f"{API}{table.pk}/"
    upload(api, owner, table, "a.csv", f"exposure,seeing,comment\n{exposure_id(150)},1.5,trail\n")
    assert client.patch(f"{base}columns/seeing/", {"name": "fwhm", "unit": "pixel"}, format="json").status_code == 200
    assert client.patch(f"{base}columns/comment/", {"retired": True}, format="json").status_code == 200
    added = client.post(f"{base}columns/", {"name": "airmass", "type": "float", "unit": ""}, format="json")
    assert added.status_code == 201 and added.json()["key"] == "c7"
    shown = client.get(base).json()
    assert [c["name"] for c in shown["columns"] if c["retired"] is None] == [
        "fwhm",
        "n_sat",
        "dome_open",
        "quality",
        "checked_at",
        "airmass",
    ]
    rows = client.get(f"{base}rows/").json()["results"]
    assert rows[0]["values"]["fwhm"] == 1.5 and "comment" not in rows[0]["values"]
    events = [e["action"] for e in client.get(f"{base}events/").json()["results"]]
    assert events[:4] == ["column_added", "column_retired", "column_unit_changed", "column_renamed"]
    stale = client.patch(base, {"version": 1, "purpose": "templates"}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version" and "alice" in stale.json()["detail"]
    fresh = client.patch(base, {"version": shown["version"], "purpose": "templates"}, format="json")
    assert fresh.status_code == 200 and fresh.json()["purpose"] == "templates"


def test_row_history_api_per_row(api, owner, table):
    client = api(owner)
    base = f"{API}{table.pk}/"
    client.post(f"{base}rows/", {"rows": [{"exposure": exposure_id(150), "seeing": 1.0}], "reason": "a"}, format="json")
    client.post(f"{base}rows/", {"rows": [{"exposure": exposure_id(150), "seeing": 2.0}], "reason": "b"}, format="json")
    history = client.get(f"{base}history/", {"key": key_of(150)}).json()["results"]
    assert [(h["action"], h["reason"], h["changes"]) for h in history] == [
        ("update", "b", [{"column": "seeing", "old": 1.0, "new": 2.0}]),
        ("create", "a", [{"column": "seeing", "old": None, "new": 1.0}]),
    ]


def test_openapi_schema_lists_the_tag_table_endpoints(api, owner):
    schema = api(owner).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = set(schema["paths"])
    for path in [
        "/api/v1/tag-tables/",
        "/api/v1/tag-tables/{id}/",
        "/api/v1/tag-tables/{id}/rows/",
        "/api/v1/tag-tables/{id}/columns/",
        "/api/v1/tag-tables/{id}/columns/{column}/",
        "/api/v1/tag-tables/{id}/history/",
        "/api/v1/tag-tables/{id}/events/",
        "/api/v1/tag-tables/{id}/share/",
        "/api/v1/tag-tables/{id}/upload/",
        "/api/v1/tag-tables/{id}/download/",
    ]:
        assert path in paths, path


# --- pages ------------------------------------------------------------------------------------------


def test_create_form_makes_a_table_with_its_columns(owner, butler_repo):
    client = Client()
    client.force_login(owner)
    assert client.get("/data/tag-tables/new/").status_code == 200
    form = {
        "repo": "demo",
        "name": "templates-ok",
        "key_dimensions": "visit, detector",
        "polarity": "select",
        "visibility": "public",
        "purpose": "use these for templates",
        "columns-TOTAL_FORMS": "2",
        "columns-INITIAL_FORMS": "0",
        "columns-0-name": "depth",
        "columns-0-type": "float",
        "columns-0-unit": "mag",
        "columns-1-name": "",
        "columns-1-type": "string",
    }
    response = client.post("/data/tag-tables/new/", form)
    table = TagTable.objects.get(name="templates-ok")
    assert response.status_code == 302 and response["Location"] == f"/data/tag-tables/{table.pk}/"
    assert table.key_dimensions == ["instrument", "detector", "visit"]
    assert [(c.name, c.unit) for c in table.columns.all()] == [("depth", "mag")]
    bad = client.post("/data/tag-tables/new/", {**form, "name": "other", "columns-0-name": "band"})
    assert bad.status_code == 200 and "names a data ID key" in bad.content.decode()


def test_upload_page_shows_the_errors_and_stores_nothing(owner, table):
    client = Client()
    client.force_login(owner)
    content = f"exposure,seeing\n{exposure_id(150)},1.0\n{exposure_id(151)},fast\n".encode()
    response = client.post(
        f"/data/tag-tables/{table.pk}/upload/", {"file": SimpleUploadedFile("n.csv", content), "reason": "x"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and 'id="upload-errors"' in html
    assert "line 3" in html and "&#x27;fast&#x27; is not a number" in html
    assert_no_rows(table)
    response = client.post(
        f"/data/tag-tables/{table.pk}/upload/",
        {"file": SimpleUploadedFile("n.csv", content), "drop_invalid": "on"},
    )
    html = response.content.decode()
    assert 'id="dropped-report"' in html and "1 invalid row dropped" in html
    assert TagRow.objects.filter(table=table).count() == 1


def test_schema_page_renames_retires_and_records(owner, table):
    client = Client()
    client.force_login(owner)
    base = f"/data/tag-tables/{table.pk}/schema/"
    client.post(base, {"action": "update", "column": "c2", "name": "saturated", "unit": "", "description": "x"})
    client.post(base, {"action": "retire", "column": "c3", "reason": "unused"})
    client.post(base, {"action": "add", "name": "wind", "type": "float", "unit": "m/s"})
    html = client.get(base).content.decode()
    assert "saturated" in html and "retired" in html and "wind" in html and "unused" in html
    stale = client.post(base, {"action": "meta", "version": "1", "name": table.name, "purpose": "z"}, follow=True)
    assert "was changed since you loaded it" in stale.content.decode()
    table.refresh_from_db()
    assert table.purpose == "do not use for PSF work"


def test_detail_and_history_pages_show_rows_and_changes(owner, table, api):
    api(owner).post(
        f"{API}{table.pk}/rows/",
        {"rows": [{"exposure": exposure_id(150), "seeing": 1.0, "quality": "junk"}], "reason": "dome light"},
        format="json",
    )
    client = Client()
    client.force_login(owner)
    html = client.get(f"/data/tag-tables/{table.pk}/").content.decode()
    assert f'data-key="{key_of(150)}"' in html and 'data-column="quality"' in html and ">junk<" in html
    html = client.get(f"/data/tag-tables/{table.pk}/history/", {"key": key_of(150)}).content.decode()
    assert "dome light" in html and "junk" in html
    listing = client.get("/data/tag-tables/").content.decode()
    assert "psf-wonky" in listing and 'id="tagtable-table"' in listing


def test_upload_reads_the_file_as_a_stream(owner, table):
    """A file object that can only be read forward (no getvalue) is enough."""
    from tagging.services.tagtables import tag_rows_upload

    stream = io.BytesIO(f"exposure,seeing\n{exposure_id(150)},1.0\n".encode())
    result = tag_rows_upload(user=owner, table_id=table.pk, stream=stream, filename="s.csv")
    assert result.created == 1
