"""Uploading DataID sets: every input form, alternate keys, duplicates, every kind of bad input, quotas,
versions and set algebra. Real Butler repo (``butler_root``), real database, real API."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from astropy.table import Table
from django.core.files.uploadedfile import SimpleUploadedFile
from lsst.daf.butler import Butler

from tagging.models import DataIdRow, DataIdSet, DataIdSetVersion
from tagging.services import UploadSource, dataidset_create

from .helpers import NIGHT, NIGHT2, assert_nothing_stored, expected_pairs, exposure_id, ids, pairs

pytestmark = pytest.mark.django_db

URL = "/api/v1/dataid-sets/"


def post_file(client, content: bytes, filename: str, name: str = "myset", **fields: Any):
    data = {"name": name, "repo": "demo", "reason": "testing uploads", **fields}
    data["file"] = SimpleUploadedFile(filename, content)
    return client.post(URL, data, format="multipart")


def post_records(client, records: list, name: str = "myset", **fields: Any):
    return client.post(URL, {"name": name, "repo": "demo", "reason": "testing", "data_ids": records, **fields})


def created(response) -> DataIdSetVersion:
    assert response.status_code == 201, response.content
    return DataIdSetVersion.objects.get(pk=response.json()["id"])


def refused(response, total: int | None = None) -> dict:
    """A 400 in the error shape of DataID uploads, and nothing stored."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"]
    assert set(body) >= {"detail", "error_total", "errors"}
    if total is not None:
        assert body["error_total"] == total, body
    for problem in body["errors"]:
        assert set(problem) == {"where", "key", "message"}
    assert_nothing_stored()
    return body


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --- every input form ----------------------------------------------------------------------------


def test_a_json_list_of_mappings_is_stored_as_primary_keys(api, owner, butler_repo):
    records = ids([150, 151], [0, 4, 8])
    version = created(post_file(api(owner), json.dumps(records).encode(), "ids.json"))
    assert version.number == 1
    assert version.count == 6
    assert version.dimensions == ["instrument", "detector", "exposure"]
    assert pairs(version) == expected_pairs([150, 151], [0, 4, 8])
    assert set(version.rows.values_list("instrument", flat=True)) == {"DemoCam"}
    assert version.source_kind == "file"
    assert version.source["filename"] == "ids.json"
    assert version.source["format"] == "json"
    assert version.source["size"] == len(json.dumps(records))
    assert version.source["sha256"] == hashlib.sha256(json.dumps(records).encode()).hexdigest()
    assert version.dataid_set.owner == owner


def test_butler_to_simple_data_coordinates_are_accepted_with_their_records(api, owner, butler_repo, butler_root):
    registry = Butler.from_config(butler_root).registry
    simple = [
        registry.expandDataId(instrument="DemoCam", exposure=exposure_id(seq), detector=det).to_simple().model_dump()
        for seq in (150, 152)
        for det in (1, 2)
    ]
    # The serialised form holds implied values (band, day_obs, physical_filter, group) and full records.
    assert simple[0]["dataId"]["band"] and simple[0]["records"]
    payload = json.dumps(simple, default=list).encode()
    version = created(post_file(api(owner), payload, "coords.json"))
    assert version.dimensions == ["instrument", "detector", "exposure"]
    assert pairs(version) == expected_pairs([150, 152], [1, 2])
    # Implied values are derived by the Butler, not stored.
    assert not version.rows.exclude(band=None).exists()
    assert not version.rows.exclude(day_obs=None).exists()
    assert not version.rows.exclude(physical_filter=None).exists()


def test_a_single_butler_data_coordinate_is_accepted(api, owner, butler_repo, butler_root):
    coordinate = (
        Butler.from_config(butler_root)
        .registry.expandDataId(instrument="DemoCam", exposure=exposure_id(151), detector=3)
        .to_simple(minimal=True)
        .model_dump()
    )
    version = created(post_file(api(owner), json.dumps(coordinate).encode(), "one.json"))
    assert pairs(version) == {(exposure_id(151), 3)}


def test_an_object_with_data_ids_and_metadata_is_accepted(api, owner, butler_repo):
    payload = {
        "name": "from-a-notebook",
        "comment": "selected by eye",
        "instrument": "DemoCam",
        "data_ids": [{"exposure": exposure_id(150), "detector": d} for d in range(9)],
    }
    content = json.dumps(payload).encode()
    version = created(post_file(api(owner), content, "object.json"))
    assert version.count == 9
    # The object is read twice (metadata, then data IDs); the digest still covers the file once.
    assert version.source["sha256"] == hashlib.sha256(content).hexdigest()
    assert version.source["size"] == len(content)
    assert pairs(version) == expected_pairs([150], range(9))


def test_a_csv_with_dimension_names_is_stored(api, owner, butler_repo):
    content = csv_bytes(
        "instrument,exposure,detector",
        f"DemoCam,{exposure_id(150)},0",
        f"DemoCam,{exposure_id(153)},8",
        f"DemoCam,{exposure_id(1, NIGHT2)},5",
    )
    version = created(post_file(api(owner), content, "ids.csv"))
    assert version.source["format"] == "csv"
    assert pairs(version) == {(exposure_id(150), 0), (exposure_id(153), 8), (exposure_id(1, NIGHT2), 5)}


def test_a_csv_with_obs_id_and_detector_full_names_stores_primary_keys_only(api, owner, butler_repo):
    content = csv_bytes(
        "obs_id,detector",
        f"DC_O_{NIGHT}_000150,R22_S00",
        f"DC_O_{NIGHT}_000150,R22_S11",
        f"DC_O_{NIGHT2}_000153,R22_S22",
    )
    version = created(post_file(api(owner), content, "alt.csv"))
    assert version.dimensions == ["instrument", "detector", "exposure"]
    assert pairs(version) == {(exposure_id(150), 0), (exposure_id(150), 4), (exposure_id(153, NIGHT2), 8)}
    # Only primary keys: nothing of the alternate keys is kept.
    row = DataIdRow.objects.filter(version=version).first()
    assert row.day_obs is None and row.band is None and row.physical_filter is None and row.visit is None


def test_a_csv_with_day_obs_and_seq_num_is_converted_to_exposure_ids(api, owner, butler_repo):
    content = csv_bytes(
        "day_obs,seq_num,detector_full_name",
        f"{NIGHT},151,R22_S01",
        f"{NIGHT2},2,R22_S20",
    )
    version = created(post_file(api(owner), content, "dayseq.csv"))
    assert version.dimensions == ["instrument", "detector", "exposure"]
    assert pairs(version) == {(exposure_id(151), 1), (exposure_id(2, NIGHT2), 6)}
    assert not DataIdRow.objects.filter(version=version).exclude(day_obs=None).exists()


def test_visit_names_are_converted_to_visit_ids(api, owner, butler_repo):
    content = csv_bytes("visit_name,detector", f"DC_O_{NIGHT}_000152,R22_S12")
    version = created(post_file(api(owner), content, "visits.csv"))
    assert version.dimensions == ["instrument", "detector", "visit"]
    assert list(version.rows.values_list("visit", "detector")) == [(exposure_id(152), 5)]


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [("ids.ecsv", "ascii.ecsv"), ("ids.vot", "votable"), ("ids.parquet", "parquet")],
)
def test_astropy_tables_are_read(api, owner, butler_repo, tmp_path, filename, fmt):
    table = Table(
        {
            "instrument": ["DemoCam"] * 4,
            "exposure": [exposure_id(150), exposure_id(150), exposure_id(151, NIGHT2), exposure_id(3)],
            "detector": [0, 1, 7, 8],
        }
    )
    path = tmp_path / filename
    table.write(path, format=fmt)
    version = created(post_file(api(owner), path.read_bytes(), filename))
    assert version.source["format"] == filename.rsplit(".", 1)[1]
    assert pairs(version) == {
        (exposure_id(150), 0),
        (exposure_id(150), 1),
        (exposure_id(151, NIGHT2), 7),
        (exposure_id(3), 8),
    }


def test_an_astropy_table_with_alternate_keys_is_converted(api, owner, butler_repo, tmp_path):
    table = Table({"obs_id": [f"DC_O_{NIGHT}_000152"], "detector_full_name": ["R22_S21"]})
    path = tmp_path / "alt.ecsv"
    table.write(path, format="ascii.ecsv")
    version = created(post_file(api(owner), path.read_bytes(), "alt.ecsv"))
    assert pairs(version) == {(exposure_id(152), 7)}


def test_records_in_a_json_body_are_stored(api, owner, butler_repo):
    version = created(
        post_records(api(owner), [*ids([152], [2, 3]), {"obs_id": f"DC_O_{NIGHT}_000153", "detector": 4}])
    )
    assert version.source_kind == "records"
    assert version.source["count"] == 3
    assert pairs(version) == {(exposure_id(152), 2), (exposure_id(152), 3), (exposure_id(153), 4)}


def test_a_butler_query_is_stored_with_its_text(api, owner, butler_repo):
    where = f"instrument = 'DemoCam' AND exposure.day_obs = {NIGHT} AND exposure.observation_type = 'science'"
    response = api(owner).post(
        URL,
        {
            "name": "night1-science",
            "repo": "demo",
            "reason": "q",
            "query": where,
            "dimensions": ["exposure", "detector"],
        },
    )
    version = created(response)
    assert version.source_kind == "query"
    assert version.source == {"query": where, "dimensions": ["exposure", "detector"]}
    assert pairs(version) == expected_pairs([150, 151, 152, 153], range(9))


def test_a_butler_query_with_bad_syntax_is_refused(api, owner, butler_repo):
    response = api(owner).post(
        URL, {"name": "bad", "repo": "demo", "reason": "q", "query": "exposure = = 3", "dimensions": ["exposure"]}
    )
    body = refused(response)
    assert body["query"] and "where" in body["detail"]


def test_duplicates_are_removed_and_counted(api, owner, butler_repo):
    content = csv_bytes(
        "obs_id,detector",
        f"DC_O_{NIGHT}_000150,R22_S00",
        f"DC_O_{NIGHT}_000150,R22_S00",
        f"DC_O_{NIGHT}_000151,R22_S00",
    )
    # The same data ID spelled three ways: obs_id above, primary keys and day_obs + seq_num below.
    version = created(post_file(api(owner), content, "dups.csv"))
    assert (version.count, version.duplicates_removed) == (2, 1)
    records = [
        {"exposure": exposure_id(150), "detector": 0},
        {"obs_id": f"DC_O_{NIGHT}_000150", "detector": "R22_S00"},
        {"day_obs": NIGHT, "seq_num": 150, "detector": 0},
        {"exposure": exposure_id(151), "detector": 0},
    ]
    other = created(post_records(api(owner), records, name="dups2"))
    assert (other.count, other.duplicates_removed) == (2, 2)
    assert other.rows.count() == 2
    assert pairs(other) == {(exposure_id(150), 0), (exposure_id(151), 0)}


# --- bad input: the error says where and which key, and nothing is stored ------------------------


def test_malformed_json_says_where_and_stores_nothing(api, owner, butler_repo):
    good = json.dumps(ids([150], [0, 1]))[:-1]
    content = (good + ', {"exposure": 2025112100151, "detector": }]').encode()
    body = refused(post_file(api(owner), content, "broken.json"), total=1)
    assert body["errors"][0]["where"] == "index 2"
    assert "malformed JSON" in body["errors"][0]["message"]


def test_json_that_is_not_a_list_or_object_is_refused(api, owner, butler_repo):
    body = refused(post_file(api(owner), b'"just a string"', "str.json"), total=1)
    assert body["errors"][0]["where"] == "start of file"


def test_a_json_object_without_data_ids_is_refused(api, owner, butler_repo):
    body = refused(post_file(api(owner), b'{"name": "x", "ids": []}', "obj.json"), total=1)
    assert "data_ids" in body["errors"][0]["message"]


def test_a_csv_row_with_a_missing_value_is_refused(api, owner, butler_repo):
    content = csv_bytes(
        "exposure,detector",
        f"{exposure_id(150)},0",
        f"{exposure_id(150)},",
        f"{exposure_id(151)}",
    )
    body = refused(post_file(api(owner), content, "missing.csv"), total=2)
    first, second = body["errors"]
    assert (first["where"], first["key"]) == ("line 3", "detector")
    assert "empty" in first["message"]
    assert second["where"] == "line 4"
    assert "missing value for 'detector'" in second["message"]


def test_an_unknown_dimension_is_refused(api, owner, butler_repo):
    content = csv_bytes("exposure,detector,colour", f"{exposure_id(150)},0,red")
    body = refused(post_file(api(owner), content, "unknown.csv"), total=1)
    assert (body["errors"][0]["where"], body["errors"][0]["key"]) == ("line 2", "colour")
    assert "unknown dimension" in body["errors"][0]["message"]


def test_a_non_existent_exposure_is_refused(api, owner, butler_repo):
    records = [*ids([150], [0]), {"instrument": "DemoCam", "exposure": exposure_id(999), "detector": 0}]
    body = refused(post_records(api(owner), records), total=1)
    problem = body["errors"][0]
    assert (problem["where"], problem["key"]) == ("index 1", "exposure")
    assert str(exposure_id(999)) in problem["message"]


def test_a_visit_that_does_not_include_the_exposure_is_refused(api, owner, butler_repo):
    """Issue 3: each of visit and exposure existed, so a data ID pairing the wrong ones was accepted."""
    records = [
        {"instrument": "DemoCam", "exposure": exposure_id(150), "visit": exposure_id(150), "detector": 0},
        {"instrument": "DemoCam", "exposure": exposure_id(150), "visit": exposure_id(151), "detector": 1},
    ]
    body = refused(post_records(api(owner), records), total=1)
    assert body["errors"] == [
        {
            "where": "index 1",
            "key": "visit",
            "message": f"visit {exposure_id(151)} does not include exposure {exposure_id(150)} for instrument 'DemoCam'",
        }
    ]
    content = csv_bytes("instrument,exposure,visit,detector", f"DemoCam,{exposure_id(152)},{exposure_id(153)},2")
    body = refused(post_file(api(owner), content, "pairs.csv"), total=1)
    assert (body["errors"][0]["where"], body["errors"][0]["key"]) == ("line 2", "visit")


def test_a_visit_and_its_own_exposure_are_stored(api, owner, butler_repo):
    records = [
        {"instrument": "DemoCam", "exposure": exposure_id(s), "visit": exposure_id(s), "detector": 0}
        for s in (150, 151)
    ]
    version = created(post_records(api(owner), records))
    assert version.dimensions == ["instrument", "detector", "exposure", "visit"]
    assert set(version.rows.values_list("exposure", "visit")) == {(exposure_id(s), exposure_id(s)) for s in (150, 151)}


def test_an_unknown_obs_id_or_detector_name_is_refused(api, owner, butler_repo):
    content = csv_bytes("obs_id,detector", f"DC_O_{NIGHT}_000150,R22_S99", f"DC_O_{NIGHT}_000777,R22_S00")
    body = refused(post_file(api(owner), content, "alt.csv"), total=2)
    assert [(p["where"], p["key"]) for p in body["errors"]] == [("line 2", "detector"), ("line 3", "obs_id")]


def test_a_wrong_instrument_is_refused(api, owner, butler_repo):
    records = [{"instrument": "LSSTCam", "exposure": exposure_id(150), "detector": 0}]
    body = refused(post_records(api(owner), records))
    keys = {(p["where"], p["key"]) for p in body["errors"]}
    assert ("index 0", "instrument") in keys
    assert any("LSSTCam" in p["message"] for p in body["errors"])


def test_an_empty_file_is_refused(api, owner, butler_repo):
    response = post_file(api(owner), b"", "empty.csv")
    assert response.status_code == 400
    assert "empty" in json.dumps(response.json()["file"])
    assert_nothing_stored()


@pytest.mark.parametrize(("filename", "where"), [("blank.csv", "line 1"), ("blank.json", "start of file")])
def test_a_file_with_only_blank_lines_is_refused(api, owner, butler_repo, filename, where):
    body = refused(post_file(api(owner), b"\n  \n", filename), total=1)
    assert body["errors"][0]["where"] == where
    assert "empty" in body["errors"][0]["message"]


def test_an_empty_stream_given_to_the_service_is_refused(owner, butler_repo):
    from core.errors import InputError

    source = UploadSource(kind="file", filename="empty.json", stream=io.BytesIO(b""), size=0)
    with pytest.raises(InputError, match="empty"):
        dataidset_create(user=owner, repo_label="demo", name="e", reason="r", source=source)
    assert_nothing_stored()


def test_a_file_over_the_size_limit_is_refused(api, owner, butler_repo, settings):
    settings.CM_DATAID_UPLOAD_MAX_BYTES = 100
    content = json.dumps(ids([150, 151], range(3))).encode()
    assert len(content) > 100
    body = refused(post_file(api(owner), content, "big.json"))
    assert f"{len(content):,} bytes" in body["detail"]
    assert "100 bytes" in body["detail"]
    assert body["file"] == [body["detail"]]


@pytest.mark.parametrize("good_lines", [1, 400])
def test_non_utf8_bytes_in_a_csv_are_refused_on_their_line(api, owner, butler_repo, good_lines):
    lines = ["obs_id,detector"] + [f"DC_O_{NIGHT}_000150,R22_S00"] * good_lines
    content = csv_bytes(*lines) + b"DC_O_20251121_000151,R22_S0\xe9\n" + csv_bytes(f"DC_O_{NIGHT}_000152,R22_S01")
    body = refused(post_file(api(owner), content, "latin1.csv"), total=1)
    problem = body["errors"][0]
    assert problem["where"] == f"line {good_lines + 2}"
    assert "not UTF-8" in problem["message"] and "0xe9" in problem["message"]


def test_non_utf8_bytes_in_json_are_refused(api, owner, butler_repo):
    content = b'[{"obs_id": "DC_O_20251121_000150", "detector": "R22_S0\xe9"}]'
    body = refused(post_file(api(owner), content, "latin1.json"), total=1)
    problem = body["errors"][0]
    assert "UTF8" in problem["message"].replace("-", "")
    assert problem["where"] == "index 0"


def test_a_utf16_file_is_refused_with_a_hint(api, owner, butler_repo):
    content = "exposure,detector\n2025112100150,0\n".encode("utf-16")
    body = refused(post_file(api(owner), content, "utf16.csv"), total=1)
    assert "UTF-16" in body["detail"]


def test_more_than_fifty_errors_show_fifty_and_the_total(api, owner, butler_repo):
    records = [{"exposure": exposure_id(1000 + i), "detector": 0} for i in range(73)]
    body = refused(post_records(api(owner), records), total=73)
    assert len(body["errors"]) == 50
    assert [p["where"] for p in body["errors"]] == [f"index {i}" for i in range(50)]
    assert {p["key"] for p in body["errors"]} == {"exposure"}
    assert "73 problems in 73 data IDs" in body["detail"]


def test_drop_invalid_stores_the_valid_ones_and_reports_the_dropped(api, owner, butler_repo):
    records = [
        *ids([150], [0, 1]),
        {"exposure": exposure_id(999), "detector": 0},
        {"exposure": exposure_id(150), "detector": 42},
        {"exposure": exposure_id(151), "detector": 2, "colour": "red"},
        *ids([151], [3]),
    ]
    version = created(post_records(api(owner), records, drop_invalid=True))
    assert version.count == 3
    assert pairs(version) == {(exposure_id(150), 0), (exposure_id(150), 1), (exposure_id(151), 3)}
    assert version.dropped_count == 3
    assert [(p["where"], p["key"]) for p in version.dropped_report] == [
        ("index 2", "exposure"),
        ("index 3", "detector"),
        ("index 4", "colour"),
    ]


def test_drop_invalid_counts_a_row_with_a_dimension_outside_the_set_as_dropped(api, owner, butler_repo):
    records = [*ids([150], [0]), {"exposure": exposure_id(151), "detector": 1, "tract": 7}]
    version = created(post_records(api(owner), records, drop_invalid=True))
    assert version.count == 1
    assert [(p["where"], p["key"]) for p in version.dropped_report] == [("index 1", "tract")]
    assert version.dropped_count == 1


def test_drop_invalid_with_nothing_valid_stores_nothing(api, owner, butler_repo):
    records = [{"exposure": exposure_id(999), "detector": 0}]
    body = refused(post_records(api(owner), records, drop_invalid=True), total=1)
    assert "No valid data ID" in body["detail"]


def test_a_quota_that_would_be_exceeded_stores_nothing(api, owner, butler_repo, settings):
    settings.CM_DATAID_QUOTA = 5
    body = refused(post_records(api(owner), ids([150], range(6))))
    assert body["quota"] == [body["detail"]]
    assert "quota is 5" in body["detail"]
    assert "6 more data IDs" in body["detail"]


def test_the_quota_counts_what_is_already_stored(api, owner, butler_repo, settings):
    settings.CM_DATAID_QUOTA = 5
    first = created(post_records(api(owner), ids([150], range(3))))
    response = post_records(api(owner), ids([151], range(3)))
    assert response.status_code == 400
    assert "already store 3" in response.json()["detail"]
    assert list(DataIdSetVersion.objects.values_list("pk", flat=True)) == [first.pk]
    assert DataIdRow.objects.count() == 3


# --- versions ------------------------------------------------------------------------------------


def test_a_second_upload_with_the_same_name_makes_version_two_and_keeps_version_one(api, owner, butler_repo):
    client = api(owner)
    v1 = created(post_records(client, ids([150], [0, 1])))
    v2 = created(post_records(client, ids([151], [2, 3, 4]), comment="more detectors"))
    assert (v1.number, v2.number) == (1, 2)
    assert v1.dataid_set_id == v2.dataid_set_id
    assert DataIdSet.objects.count() == 1
    v1.refresh_from_db()
    assert v1.count == 2
    assert pairs(v1) == expected_pairs([150], [0, 1])
    assert pairs(v2) == expected_pairs([151], [2, 3, 4])
    assert v2.comment == "more detectors"
    listed = client.get(f"{URL}{v1.dataid_set_id}/versions/").json()
    assert [(v["number"], v["count"]) for v in listed] == [(2, 3), (1, 2)]


def test_a_new_version_with_other_dimensions_is_refused(api, owner, butler_repo):
    client = api(owner)
    v1 = created(post_records(client, ids([150], [0, 1])))
    response = post_records(client, [{"exposure": exposure_id(151)}])
    assert response.status_code == 400
    body = response.json()
    assert body["dimensions"] and "another name" in body["detail"]
    assert list(DataIdSetVersion.objects.values_list("pk", flat=True)) == [v1.pk]
    assert DataIdRow.objects.count() == 2


def test_another_staff_member_cannot_add_a_version_to_my_set(api, owner, other_staff, butler_repo):
    created(post_records(api(owner), ids([150], [0])))
    response = post_records(api(other_staff), ids([151], [0]))
    assert response.status_code == 400
    assert "is not available in demo" in json.dumps(response.json())
    assert DataIdSetVersion.objects.count() == 1


# --- set algebra ---------------------------------------------------------------------------------


@pytest.fixture
def two_sets(make_set):
    a = make_set("set-a", ids([150, 151], [0, 1, 2]))
    b = make_set("set-b", ids([151, 152], [0, 1, 2]))
    return a, b


@pytest.mark.parametrize(
    ("operation", "seqs"),
    [("union", [150, 151, 152]), ("intersection", [151]), ("difference", [150])],
)
def test_set_algebra_counts_and_provenance(api, owner, two_sets, operation, seqs):
    a, b = two_sets
    response = api(owner).post(
        f"{URL}algebra/",
        {
            "operation": operation,
            "parents": [{"set": a.dataid_set_id}, {"set": b.dataid_set_id, "version": 1}],
            "name": f"{operation}-ab",
            "reason": "combine",
        },
    )
    version = created(response)
    assert version.count == 3 * len(seqs)
    assert version.rows.count() == version.count
    assert pairs(version) == expected_pairs(seqs, [0, 1, 2])
    assert version.source_kind == "algebra"
    assert version.source == {
        "operation": operation,
        "parents": [
            {"set": "set-a", "version": 1, "version_id": a.pk},
            {"set": "set-b", "version": 1, "version_id": b.pk},
        ],
    }
    assert version.dimensions == a.dimensions
    assert version.dataid_set.owner == owner


def test_set_algebra_of_different_dimensions_is_refused(api, owner, two_sets, make_set):
    a, _ = two_sets
    exposures_only = make_set("exposures", [{"exposure": exposure_id(150)}, {"exposure": exposure_id(151)}])
    assert exposures_only.dimensions == ["instrument", "exposure"]
    response = api(owner).post(
        f"{URL}algebra/",
        {
            "operation": "union",
            "parents": [{"set": a.dataid_set_id}, {"set": exposures_only.dataid_set_id}],
            "name": "mixed",
            "reason": "combine",
        },
    )
    assert response.status_code == 400
    assert "must be the same" in response.json()["parents"][0]
    assert not DataIdSet.objects.filter(name="mixed").exists()
    assert DataIdSetVersion.objects.count() == 3


def test_set_algebra_respects_the_quota(api, owner, two_sets, settings):
    a, b = two_sets
    settings.CM_DATAID_QUOTA = 14  # 12 stored; a union would add 9
    response = api(owner).post(
        f"{URL}algebra/",
        {
            "operation": "union",
            "parents": [{"set": a.dataid_set_id}, {"set": b.dataid_set_id}],
            "name": "u",
            "reason": "r",
        },
    )
    assert response.status_code == 400
    assert response.json()["quota"]
    assert not DataIdSet.objects.filter(name="u").exists()


# --- the upload page -----------------------------------------------------------------------------


def page_upload(user, content: bytes, filename: str, **fields: Any):
    from django.test import Client

    client = Client()
    client.force_login(user)
    data = {"source": "file", "repo": "demo", "name": "from-page", "reason": "page", "visibility": "private", **fields}
    data["file"] = SimpleUploadedFile(filename, content)
    return client.post("/data/sets/new/", data, follow=True)


def test_the_upload_page_lists_the_problems_and_stores_nothing(owner, butler_repo):
    content = csv_bytes("obs_id,detector", f"DC_O_{NIGHT}_000150,R22_S00", f"DC_O_{NIGHT}_000150,R22_S77")
    response = page_upload(owner, content, "bad.csv")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="upload-errors"' in html
    assert "<td>line 3</td><td><code>detector</code></td>" in html
    assert "Nothing was stored" in html
    assert_nothing_stored()


def test_the_upload_page_stores_a_file_and_reports_duplicates_and_drops(owner, butler_repo):
    content = csv_bytes(
        "obs_id,detector",
        f"DC_O_{NIGHT}_000150,R22_S00",
        f"DC_O_{NIGHT}_000150,R22_S00",
        f"DC_O_{NIGHT}_000150,R22_S77",
        f"DC_O_{NIGHT}_000151,R22_S00",
    )
    response = page_upload(owner, content, "ok.csv", drop_invalid="on")
    version = DataIdSetVersion.objects.get()
    assert response.redirect_chain[-1][0] == f"/data/sets/{version.dataid_set_id}/"
    assert (version.count, version.duplicates_removed, version.dropped_count) == (2, 1, 1)
    assert "2 data IDs stored as from-page v1; 1 duplicates removed, 1 invalid data IDs dropped" in (
        response.content.decode()
    )


def test_the_upload_page_refuses_a_file_over_the_size_limit(owner, butler_repo, settings):
    settings.CM_DATAID_UPLOAD_MAX_BYTES = 10
    response = page_upload(owner, csv_bytes("exposure,detector", f"{exposure_id(150)},0"), "big.csv")
    assert response.status_code == 200
    assert "at most 10" in response.content.decode()
    assert_nothing_stored()
