"""`cm dataids ...`, `cm exposures` and the DataID methods of the Python client, against a real server,
a real database and a real (small) Butler repo.

Every `cm` call runs the installed executable in a child process that talks HTTP to pytest-django's
live server; the data IDs are checked against the Butler repo built by the ``butler_root`` fixture
(DemoCam, detectors R22_S00..R22_S22 = 0..8, nights 20251121 and 20251122, science exposures
seq 150..153).
"""

# ruff: noqa: F811 - pytest fixtures imported from test_cli are named as test arguments

from __future__ import annotations

import json

import pytest
from astropy.table import Table

from cmclient import ApiError, Client
from tagging.models import DataIdSet

# The `cm` fixture (and those it uses) come from the campaign CLI tests.
from tests.cli.test_cli import assert_one_error_line, cm, config_file, fast_password_hasher, token_for  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

NIGHT = 20251121
SCIENCE_WHERE = f"instrument = 'DemoCam' AND exposure.day_obs = {NIGHT} AND exposure.observation_type = 'science'"


def exposure_id(day_obs: int, seq: int) -> int:
    return day_obs * 100000 + seq


def stored(api, user, name: str) -> tuple[dict, list[dict]]:
    """The set named ``name`` as the API shows it, and its data IDs (downloaded as JSON)."""
    client = api(user)
    response = client.get("/api/v1/dataid-sets/", {"name": name})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 1, rows
    data = client.get(f"/api/v1/dataid-sets/{rows[0]['id']}/download/", {"format": "json"})
    assert data.status_code == 200
    return rows[0], json.loads(b"".join(data.streaming_content))


def upload_query(cm, user, name: str, where: str = SCIENCE_WHERE, dims: str = "exposure,detector"):
    result = cm(
        "dataids",
        "query",
        "--where",
        where,
        "--dimensions",
        dims,
        "--repo",
        "demo",
        "--name",
        name,
        "--reason",
        "Test set",
        as_user=user,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def client(live_server, owner) -> Client:
    return Client(url=live_server.url, token=token_for(owner), use_config=False)


# --- upload from files ---------------------------------------------------------------------------


def test_upload_a_csv_with_alternate_keys_stores_primary_keys(cm, api, owner, butler_repo, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text(
        "obs_id,detector\n"
        f"DC_O_{NIGHT}_000150,R22_S00\n"
        f"DC_O_{NIGHT}_000150,R22_S11\n"
        f"DC_O_{NIGHT}_000151,R22_S22\n"
        f"DC_O_{NIGHT}_000151,R22_S22\n"  # a duplicate, removed
    )

    result = cm(
        "dataids",
        "upload",
        str(path),
        "--repo",
        "demo",
        "--name",
        "alt-keys",
        "--reason",
        "Detectors with a hot column",
        "--description",
        "from the night log",
        "--comment",
        "first cut",
        as_user=owner,
    )

    assert result.returncode == 0, result.stderr
    assert "Stored alt-keys version 1 in demo: 3 data IDs" in result.stdout
    assert "1 duplicates removed" in result.stdout
    dataid_set, rows = stored(api, owner, "alt-keys")
    assert dataid_set["owner"] == "alice"
    assert dataid_set["visibility"] == "private"
    assert dataid_set["description"] == "from the night log"
    latest = dataid_set["latest"]
    assert latest["number"] == 1
    assert latest["count"] == 3
    assert latest["comment"] == "first cut"
    assert latest["source"]["filename"] == "ids.csv"
    assert {"exposure", "detector"} <= set(latest["dimensions"])
    assert sorted((r["exposure"], r["detector"]) for r in rows) == [
        (exposure_id(NIGHT, 150), 0),
        (exposure_id(NIGHT, 150), 4),
        (exposure_id(NIGHT, 151), 8),
    ]
    assert all(r.get("instrument", "DemoCam") == "DemoCam" for r in rows)


def test_a_bad_csv_prints_its_problems_with_line_numbers_and_stores_nothing(cm, owner, butler_repo, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "exposure,detector\n"
        f"{exposure_id(NIGHT, 150)},0\n"  # line 2: fine
        f"{exposure_id(NIGHT, 999)},1\n"  # line 3: no such exposure
        f"{exposure_id(NIGHT, 151)},R22_S99\n"  # line 4: no such detector
        "not-a-number,2\n"  # line 5: not an integer
    )

    result = cm("dataids", "upload", str(path), "--repo", "demo", "--name", "bad", "--reason", "Test", as_user=owner)

    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("cm: error: 3 problems in 4 data IDs; nothing was stored"), result.stderr
    problems = lines[1:]
    assert len(problems) == 3, result.stderr
    assert all(line.startswith("  line ") for line in problems), result.stderr
    assert problems[0].startswith("  line 3, key exposure: "), result.stderr
    assert str(exposure_id(NIGHT, 999)) in problems[0]
    assert problems[1].startswith("  line 4, key detector: "), result.stderr
    assert "R22_S99" in problems[1]
    assert problems[2].startswith("  line 5, key exposure: "), result.stderr
    assert not DataIdSet.objects.exists()


def test_many_problems_are_cut_at_twenty_lines(cm, owner, butler_repo, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("exposure,detector\n" + "".join(f"{exposure_id(NIGHT, 900 + i)},0\n" for i in range(25)))

    result = cm("dataids", "upload", str(path), "--repo", "demo", "--name", "many", "--reason", "Test", as_user=owner)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("cm: error: 25 problems in 25 data IDs"), result.stderr
    assert len(lines) == 1 + 20 + 1, result.stderr
    assert lines[1].startswith("  line 2, key exposure: ")
    assert lines[20].startswith("  line 21, key exposure: ")
    assert lines[21] == "  … and 5 more"
    assert not DataIdSet.objects.exists()


def test_drop_invalid_stores_the_valid_ids_and_reports_the_others(cm, api, owner, butler_repo, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(f"exposure,detector\n{exposure_id(NIGHT, 150)},0\n{exposure_id(NIGHT, 999)},1\n")

    result = cm(
        "dataids",
        "upload",
        str(path),
        "--repo",
        "demo",
        "--name",
        "mixed",
        "--reason",
        "Test",
        "--drop-invalid",
        "--public",
        as_user=owner,
    )

    assert result.returncode == 0, result.stderr
    assert "1 data ID " in result.stdout
    assert "1 invalid dropped" in result.stdout
    assert "  line 3, key exposure: " in result.stdout
    dataid_set, rows = stored(api, owner, "mixed")
    assert dataid_set["visibility"] == "public"
    assert [r["exposure"] for r in rows] == [exposure_id(NIGHT, 150)]


def test_an_unreadable_file_and_a_missing_file_fail_cleanly(cm, owner, butler_repo, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("exposure\n1\n")

    result = cm("dataids", "upload", str(path), "--repo", "demo", "--name", "x", "--reason", "Test", as_user=owner)
    line = assert_one_error_line(result)
    assert "Cannot tell the format" in line

    result = cm(
        "dataids", "upload", str(tmp_path / "nope.csv"), "--repo", "demo", "--name", "x", "--reason", "T", as_user=owner
    )
    line = assert_one_error_line(result)
    assert "no such file" in line
    assert not DataIdSet.objects.exists()


def test_a_science_user_cannot_upload(cm, science_user, butler_repo, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text(f"exposure,detector\n{exposure_id(NIGHT, 150)},0\n")

    result = cm(
        "dataids", "upload", str(path), "--repo", "demo", "--name", "mine", "--reason", "Test", as_user=science_user
    )

    line = assert_one_error_line(result)
    assert result.returncode == 1
    assert "Only staff members can create or change DataID sets" in line
    assert not DataIdSet.objects.exists()


# --- queries, downloads, listing -----------------------------------------------------------------


def test_query_upload_then_download_ecsv_that_astropy_reads(cm, owner, butler_repo, tmp_path):
    result = upload_query(cm, owner, "night1-science")
    assert "Stored night1-science version 1 in demo: 36 data IDs" in result.stdout

    out = tmp_path / "ids.ecsv"
    result = cm("dataids", "download", "night1-science", "-o", str(out), as_user=owner)

    assert result.returncode == 0, result.stderr
    assert "as ECSV" in result.stdout
    table = Table.read(out, format="ascii.ecsv")
    assert len(table) == 36
    assert {"exposure", "detector"} <= set(table.colnames)
    assert {int(e) for e in table["exposure"]} == {exposure_id(NIGHT, s) for s in range(150, 154)}
    assert {int(d) for d in table["detector"]} == set(range(9))
    assert table.meta["dataid_set"] == "night1-science"

    csv_text = cm("dataids", "download", "night1-science", "--format", "csv", as_user=owner)
    assert csv_text.returncode == 0, csv_text.stderr
    assert len(csv_text.stdout.strip().splitlines()) == 37


def test_query_errors_are_one_line(cm, owner, butler_repo):
    result = cm(
        "dataids",
        "query",
        "--where",
        "exposure.day_obs = = 3",
        "--dimensions",
        "exposure,detector",
        "--repo",
        "demo",
        "--name",
        "broken",
        "--reason",
        "Test",
        as_user=owner,
    )

    line = assert_one_error_line(result)
    assert "Not a valid Butler 'where' expression" in line
    assert not DataIdSet.objects.exists()


def test_list_and_show_with_versions(cm, owner, butler_repo):
    upload_query(cm, owner, "night1-science")
    upload_query(cm, owner, "night1-science", where=SCIENCE_WHERE + " AND detector = 4")

    listed = cm("dataids", "list", "--repo", "demo", as_user=owner)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "REPO", "OWNER", "VISIBILITY", "VERSION", "COUNT", "DIMENSIONS", "UPDATED"]
    assert lines[1].split()[:6] == ["night1-science", "demo", "alice", "private", "v2", "4"]

    shown = cm("dataids", "show", "night1-science", as_user=owner)
    assert shown.returncode == 0, shown.stderr
    assert "version 2, 4 data IDs" in shown.stdout
    assert "Versions (2):" in shown.stdout
    version_rows = [line.split() for line in shown.stdout.splitlines() if line.startswith("  v")]
    assert [row[:2] for row in version_rows] == [["v2", "4"], ["v1", "36"]]

    as_json = cm("dataids", "show", "night1-science", "--json", as_user=owner)
    data = json.loads(as_json.stdout)
    assert [v["number"] for v in data["versions"]] == [2, 1]
    assert data["latest"]["count"] == 4

    v1 = cm("dataids", "download", "night1-science", "--format", "json", "--version", "1", as_user=owner)
    assert len(json.loads(v1.stdout)) == 36

    missing = cm("dataids", "show", "no-such-set", as_user=owner)
    assert "no DataID set named 'no-such-set'" in assert_one_error_line(missing)


def test_share_lets_a_science_user_see_a_private_set(cm, owner, science_user, butler_repo):
    upload_query(cm, owner, "night1-science")
    assert cm("dataids", "list", "--json", as_user=science_user).stdout.strip() == "[]"

    shared = cm("dataids", "share", "night1-science", "--user", "carol", as_user=owner)

    assert shared.returncode == 0, shared.stderr
    assert "user carol may now view night1-science" in shared.stdout
    seen = cm("dataids", "show", "night1-science", as_user=science_user)
    assert seen.returncode == 0, seen.stderr
    assert "night1-science" in seen.stdout

    refused = cm("dataids", "share", "night1-science", "--user", "alice", "--edit", as_user=science_user)
    assert "may view this DataID set but not change it" in assert_one_error_line(refused)

    revoked = cm("dataids", "share", "night1-science", "--user", "carol", "--revoke", as_user=owner)
    assert revoked.returncode == 0, revoked.stderr
    assert "no DataID set named" in assert_one_error_line(cm("dataids", "show", "night1-science", as_user=science_user))


def test_combine_union_intersection_difference(cm, api, owner, butler_repo):
    upload_query(cm, owner, "all-science")
    upload_query(cm, owner, "centre", where=SCIENCE_WHERE + " AND detector = 4")
    upload_query(cm, owner, "first-exposure", where=f"instrument = 'DemoCam' AND exposure = {exposure_id(NIGHT, 150)}")

    result = cm(
        "dataids",
        "combine",
        "difference",
        "all-science",
        "centre",
        "first-exposure",
        "--name",
        "rest",
        "--reason",
        "Everything but the centre and the first exposure",
        as_user=owner,
    )

    assert result.returncode == 0, result.stderr
    # 36 minus 4 (the centre detector) minus the 8 other detectors of the first exposure.
    assert "Stored rest version 1: the difference of all-science, centre, first-exposure, 24 data IDs" in result.stdout
    dataid_set, rows = stored(api, owner, "rest")
    assert dataid_set["latest"]["source_kind"] == "algebra"
    assert len(rows) == 24
    assert all(r["detector"] != 4 and r["exposure"] != exposure_id(NIGHT, 150) for r in rows)

    union = cm(
        "dataids",
        "combine",
        "union",
        "centre",
        "first-exposure",
        "--name",
        "u",
        "--reason",
        "T",
        "--json",
        as_user=owner,
    )
    assert json.loads(union.stdout)["count"] == 12  # 4 + 9 - 1 shared

    both = cm(
        "dataids", "combine", "intersection", "centre", "first-exposure", "--name", "i", "--reason", "T", as_user=owner
    )
    assert "1 data ID " in both.stdout

    one = cm("dataids", "combine", "union", "centre", "--name", "x", "--reason", "T", as_user=owner)
    assert "at least two" in assert_one_error_line(one)


def test_tag_waits_for_the_tagged_collection(cm, owner, butler_repo):
    from config.celery import app

    upload_query(cm, owner, "tag-me", where=SCIENCE_WHERE + " AND detector = 4")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the live server runs the task itself, as a worker would
    try:
        result = cm(
            "dataids",
            "tag",
            "tag-me",
            "--dataset-type",
            "raw",
            "--collections",
            "DemoCam/raw/all",
            "--collection",
            "u/alice/cli-test-tagged",
            "--wait",
            "--timeout",
            "60",
            as_user=owner,
        )
    finally:
        app.conf.task_always_eager = eager

    assert result.returncode == 0, result.stderr
    assert "Tagged 4 raw datasets of tag-me v1 into u/alice/cli-test-tagged." in result.stdout
    shown = cm("dataids", "show", "tag-me", as_user=owner)
    assert "done: 4 datasets in u/alice/cli-test-tagged" in shown.stdout


# --- exposures -----------------------------------------------------------------------------------


def test_exposures_of_one_night_and_type(cm, science_user, butler_repo):
    result = cm("exposures", "--night", str(NIGHT), "--type", "science", as_user=science_user)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["EXPOSURE", "OBS_ID", "NIGHT", "SEQ", "BAND", "TYPE", "EXPTIME", "TARGET"]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 4
    assert [int(r[0]) for r in rows] == [exposure_id(NIGHT, s) for s in (153, 152, 151, 150)]
    assert rows[-1][1] == f"DC_O_{NIGHT}_000150"
    assert all(r[5] == "science" for r in rows)

    limited = cm("exposures", "--repo", "demo", "--night", str(NIGHT), "--limit", "3", "--json", as_user=science_user)
    assert len(json.loads(limited.stdout)) == 3
    assert "only the first 3 exposures" in limited.stderr


# --- the Python client ---------------------------------------------------------------------------


def test_client_uploads_an_astropy_table_records_and_a_frame(client, api, owner, butler_repo):
    table = Table({"exposure": [exposure_id(NIGHT, 150), exposure_id(NIGHT, 152)], "detector": ["R22_S00", "R22_S01"]})

    version = client.upload_dataids(table, repo="demo", name="from-table", reason="Test", comment="in-process")

    assert version["number"] == 1
    assert version["count"] == 2
    assert version["source"]["format"] == "ecsv"
    _, rows = stored(api, owner, "from-table")
    assert sorted((r["exposure"], r["detector"]) for r in rows) == [
        (exposure_id(NIGHT, 150), 0),
        (exposure_id(NIGHT, 152), 1),
    ]

    # A list of mappings goes as JSON records; numpy values are fine. The same name makes version 2.
    records = [{"exposure": row["exposure"], "detector": 3} for row in table]
    again = client.upload_dataids(records, repo="demo", name="from-table", reason="Test")
    assert again["number"] == 2
    assert again["source_kind"] == "records"
    assert [v["number"] for v in client.dataid_versions("from-table")] == [2, 1]

    class Frame:  # what the client needs of a pandas DataFrame
        def to_csv(self, index: bool = True) -> str:
            assert index is False
            return f"day_obs,seq_num,detector\n{NIGHT},153,5\n"

    frame = client.upload_dataids(Frame(), repo="demo", name="from-frame", reason="Test", public=True)
    assert frame["count"] == 1
    assert client.dataid_set("from-frame")["visibility"] == "public"

    text = client.download_dataids("from-frame", format="csv")
    assert text.splitlines()[1:] and str(exposure_id(NIGHT, 153)) in text
    assert {s["name"] for s in client.dataid_sets(repo="demo")} == {"from-table", "from-frame"}


def test_client_upload_errors_are_one_line_with_every_problem_in_the_payload(client, butler_repo):
    table = Table({"exposure": [exposure_id(NIGHT, 150), exposure_id(NIGHT, 998), exposure_id(NIGHT, 999)]})
    table["detector"] = [0, 0, 0]

    with pytest.raises(ApiError) as caught:
        client.upload_dataids(table, repo="demo", name="bad-table", reason="Test")

    error = caught.value
    assert error.status == 400
    assert "\n" not in str(error)
    assert str(error).startswith("2 problems in 3 data IDs; nothing was stored.")
    assert "First problem: row 2, key exposure: " in str(error)
    assert error.payload["error_total"] == 2
    assert [p["where"] for p in error.payload["errors"]] == ["row 2", "row 3"]
    assert not DataIdSet.objects.exists()

    with pytest.raises(ApiError, match="list is empty"):
        client.upload_dataids([], repo="demo", name="empty", reason="Test")
    with pytest.raises(TypeError):
        client.upload_dataids(42, repo="demo", name="number", reason="Test")


def test_client_query_algebra_share_and_tag_status(client, live_server, science_user, butler_repo):
    client.dataids_from_query(SCIENCE_WHERE, dimensions="exposure, detector", repo="demo", name="a", reason="T")
    client.dataids_from_query(
        SCIENCE_WHERE + " AND detector IN (0, 1)",
        dimensions=["exposure", "detector"],
        repo="demo",
        name="b",
        reason="T",
    )

    both = client.dataids_algebra("intersection", ["a", "b"], "a-and-b", "Test", repo="demo")
    assert both["count"] == 8
    assert client.tag_status("a-and-b")["tag_status"] == "none"

    client.share_dataids("a-and-b", user="carol")
    carol = Client(url=live_server.url, token=token_for(science_user), use_config=False)
    assert [s["name"] for s in carol.dataid_sets()] == ["a-and-b"]
    with pytest.raises(ApiError, match="no DataID set named 'a'"):
        carol.dataid_set("a")
    with pytest.raises(ValueError):
        client.share_dataids("a", user="carol", group="science")
