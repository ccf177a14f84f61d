"""`cm tags ...` and the tag-table methods of the Python client, against a real server (pytest-django's
live server), a real database and the real test Butler repo."""

# ruff: noqa: F811 - pytest fixtures imported from test_cli are named as test arguments

from __future__ import annotations

import json

import pytest

from cmclient import ApiError, Client
from tagging.models import TagRow, TagTable
from tests.cli.test_cli import assert_one_error_line, cm, config_file, fast_password_hasher, token_for  # noqa: F401

from .tagtable_helpers import exposure_id, key_of

pytestmark = pytest.mark.django_db(transaction=True)


def create(cm, user, name: str = "psf-wonky", *extra: str):
    return cm(
        "tags",
        "create",
        "--repo",
        "demo",
        "--name",
        name,
        "--keys",
        "exposure",
        "--polarity",
        "reject",
        "--purpose",
        "wonky for PSF work",
        "--column",
        "seeing:float:arcsec:required",
        "--column",
        "quality:enum=good|wonky|junk",
        *extra,
        as_user=user,
    )


def test_create_upload_show_download_and_share(cm, owner, other_staff, butler_repo, tmp_path):
    result = create(cm, owner)
    assert result.returncode == 0, result.stderr
    assert "Created tag table psf-wonky in demo" in result.stdout
    table = TagTable.objects.get(name="psf-wonky")
    assert [(c.name, c.type, c.unit, c.required, c.enum_values) for c in table.columns.all()] == [
        ("seeing", "float", "arcsec", True, []),
        ("quality", "enum", "", False, ["good", "wonky", "junk"]),
    ]

    rows = tmp_path / "rows.csv"
    rows.write_text("obs_id,seeing,quality\nDC_O_20251121_000150,1.4,wonky\nDC_O_20251121_000151,0.9,good\n")
    result = cm("tags", "upload", "psf-wonky", str(rows), "--reason", "night log", as_user=owner)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "psf-wonky: 2 rows added, 0 changed, 0 unchanged."

    shown = cm("tags", "show", "psf-wonky", as_user=owner)
    assert shown.returncode == 0, shown.stderr
    assert "seeing: float [arcsec] required" in shown.stdout
    assert "quality: enum(good|wonky|junk)" in shown.stdout
    assert str(exposure_id(150)) in shown.stdout and "wonky" in shown.stdout

    listed = cm("tags", "list", "--polarity", "reject", as_user=owner)
    assert listed.stdout.splitlines()[1].split()[:5] == ["psf-wonky", "demo", "reject", "instrument,exposure", "2"]

    out = tmp_path / "out.json"
    result = cm("tags", "download", "psf-wonky", "-o", str(out), as_user=owner)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())[0] == {
        "data_id": {"instrument": "DemoCam", "exposure": exposure_id(150)},
        "values": {"seeing": 1.4, "quality": "wonky"},
    }
    csv_text = cm("tags", "download", "psf-wonky", "--format", "csv", as_user=owner).stdout
    assert csv_text.splitlines()[0] == "instrument,exposure,seeing,quality"

    assert cm("tags", "show", "psf-wonky", as_user=other_staff).returncode == 1
    result = cm("tags", "share", "psf-wonky", "--user", "bob", "--edit", as_user=owner)
    assert result.stdout.strip() == "user bob may now edit psf-wonky."
    result = cm("tags", "upload", "psf-wonky", str(rows), "--reason", "again", as_user=other_staff)
    assert result.returncode == 0 and "2 unchanged" in result.stdout


def test_a_bad_upload_prints_each_problem_and_stores_nothing(cm, owner, butler_repo, tmp_path):
    assert create(cm, owner).returncode == 0
    rows = tmp_path / "bad.csv"
    rows.write_text(f"exposure,seeing,quality\n{exposure_id(150)},fast,good\n{exposure_id(999)},1.0,meh\n")
    result = cm("tags", "upload", "psf-wonky", str(rows), as_user=owner)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "cm: error: 3 problems in bad.csv; nothing was stored."
    assert "  line 2, key seeing: 'fast' is not a number" in lines
    assert any(line.startswith("  line 3, key exposure: exposure") for line in lines)
    assert "  line 3, key quality: 'meh' is not one of good, wonky, junk" in lines
    assert TagRow.objects.count() == 0

    dropped = cm("tags", "upload", "psf-wonky", str(rows), "--drop-invalid", as_user=owner)
    assert dropped.returncode == 0
    assert "0 rows added" in dropped.stdout and "2 invalid dropped" in dropped.stdout


def test_science_user_cannot_create_and_bad_column_spec_is_one_line(cm, science_user, owner, butler_repo):
    line = assert_one_error_line(create(cm, science_user))
    assert "Only staff members can create or change tag tables." in line
    line = assert_one_error_line(
        cm(
            "tags",
            "create",
            "--repo",
            "demo",
            "--name",
            "x",
            "--keys",
            "exposure",
            "--purpose",
            "p",
            "--column",
            "seeing:number",
            as_user=owner,
        )
    )
    assert "type 'number' is not one of" in line


def test_python_client_methods(live_server, owner, butler_repo):
    client = Client(url=live_server.url, token=token_for(owner), use_config=False)
    table = client.create_tag_table(
        "templates",
        repo="demo",
        key_dimensions=["exposure"],
        polarity="select",
        columns=[{"name": "depth", "type": "float", "unit": "mag"}],
    )
    assert table["key_dimensions"] == ["instrument", "exposure"]
    result = client.upsert_tag_rows("templates", [{"day_obs": 20251121, "seq_num": 152, "depth": 24.5}], reason="r")
    assert result["created"] == 1 and result["rows"][0]["values"] == {"depth": 24.5}
    with pytest.raises(ApiError) as err:
        client.upsert_tag_rows("templates", [{"exposure": exposure_id(152), "depth": "deep"}])
    assert err.value.status == 400 and err.value.payload["errors"][0]["key"] == "depth"
    client.change_tag_column("templates", "depth", unit="AB mag")
    assert client.tag_table("templates")["columns"][0]["unit"] == "AB mag"
    assert [h["action"] for h in client.tag_row_history("templates", key=key_of(152))] == ["create"]
    assert client.delete_tag_rows("templates", [key_of(152)], reason="wrong night") == {"deleted": 1}
    assert client.tag_rows("templates") == []


def test_adding_a_row_that_exists_is_refused_with_its_values_unless_update(cm, api, owner, butler_repo):
    assert create(cm, owner).returncode == 0
    added = cm("tags", "add", "psf-wonky", "obs_id=DC_O_20251121_000150", "seeing=1.4", "quality=wonky", as_user=owner)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"psf-wonky: {key_of(150)} added."
    again = cm("tags", "add", "psf-wonky", f"exposure={exposure_id(150)}", "seeing=0.9", as_user=owner)
    line = assert_one_error_line(again)
    assert f"{key_of(150)} already has a row (seeing=1.4, quality=wonky); nothing was stored." in line
    assert "Add --update to change it." in line
    row = TagRow.objects.get(key=key_of(150))
    assert row.values["c1"] == 1.4
    updated = cm("tags", "add", "psf-wonky", f"exposure={exposure_id(150)}", "seeing=0.9", "--update", as_user=owner)
    assert updated.returncode == 0 and updated.stdout.strip() == f"psf-wonky: {key_of(150)} updated."
    row.refresh_from_db()
    assert row.values["c1"] == 0.9
    # The API: 409 with the stored row, and nothing stored.
    table = TagTable.objects.get(name="psf-wonky")
    response = api(owner).post(
        f"/api/v1/tag-tables/{table.pk}/rows/",
        {"rows": [{"exposure": exposure_id(150), "seeing": 2.0}], "on_existing": "refuse"},
        format="json",
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "row_exists" and body["existing_total"] == 1
    assert body["existing"][0]["data_id"] == {"instrument": "DemoCam", "exposure": exposure_id(150)}
    assert body["existing"][0]["values"] == {"seeing": 0.9, "quality": "wonky"}
    row.refresh_from_db()
    assert row.values["c1"] == 0.9
