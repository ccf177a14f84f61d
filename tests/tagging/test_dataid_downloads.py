"""Downloading DataID sets as JSON, CSV and ECSV: the files read back (and upload again) to the same
data IDs; the ECSV is a typed astropy table; any version can be downloaded."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from astropy.table import Table
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tagging.models import DataIdSetVersion

from .helpers import NIGHT2, exposure_id, ids, pairs

pytestmark = pytest.mark.django_db

URL = "/api/v1/dataid-sets/"

RECORDS = ids([150, 153], [0, 5, 8]) + ids([2], [4], day_obs=NIGHT2)


def body(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def version(make_set) -> DataIdSetVersion:
    return make_set("download-me", RECORDS)


def download(client, version: DataIdSetVersion, fmt: str | None, number: int | None = None):
    params = {}
    if fmt:
        params["format"] = fmt
    if number is not None:
        params["version"] = number
    return client.get(f"{URL}{version.dataid_set_id}/download/", params)


def expected_dicts() -> list[dict]:
    return [{"instrument": r["instrument"], "detector": r["detector"], "exposure": r["exposure"]} for r in RECORDS]


def reupload(api, owner, content: bytes, filename: str, name: str) -> DataIdSetVersion:
    response = api(owner).post(
        URL,
        {"name": name, "repo": "demo", "reason": "round trip", "file": SimpleUploadedFile(filename, content)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return DataIdSetVersion.objects.get(pk=response.json()["id"])


def test_json_download_round_trips(api, owner, version):
    response = download(api(owner), version, "json")
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="download-me-v1.json"'
    content = body(response)
    data = json.loads(content)
    assert data == expected_dicts()  # storage order, primary keys only, integers stay integers
    again = reupload(api, owner, content, "download-me-v1.json", "json-copy")
    assert pairs(again) == pairs(version)
    assert again.dimensions == version.dimensions


def test_json_is_the_default_format_of_the_api(api, owner, version):
    assert json.loads(body(download(api(owner), version, None))) == expected_dicts()


def test_csv_download_round_trips(api, owner, version):
    response = download(api(owner), version, "csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="download-me-v1.csv"'
    content = body(response)
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows[0] == ["instrument", "detector", "exposure"]
    assert rows[1:] == [[r["instrument"], str(r["detector"]), str(r["exposure"])] for r in expected_dicts()]
    again = reupload(api, owner, content, "copy.csv", "csv-copy")
    assert pairs(again) == pairs(version)


def test_ecsv_download_is_a_typed_astropy_table_that_round_trips(api, owner, version):
    response = download(api(owner), version, "ecsv")
    assert response["Content-Disposition"] == 'attachment; filename="download-me-v1.ecsv"'
    content = body(response)
    assert content.startswith(b"# %ECSV")
    table = Table.read(content.decode(), format="ascii.ecsv")
    assert table.colnames == ["instrument", "detector", "exposure"]
    assert table["instrument"].dtype.kind == "U"
    assert np.issubdtype(table["detector"].dtype, np.integer)
    assert table["exposure"].dtype == np.int64
    assert len(table) == len(RECORDS)
    assert [(str(r["instrument"]), int(r["detector"]), int(r["exposure"])) for r in table] == [
        (d["instrument"], d["detector"], d["exposure"]) for d in expected_dicts()
    ]
    assert table.meta["dataid_set"] == "download-me"
    assert table.meta["version"] == 1
    assert table.meta["repo"] == "demo"
    again = reupload(api, owner, content, "copy.ecsv", "ecsv-copy")
    assert pairs(again) == pairs(version)


def test_ecsv_of_a_set_of_exposures_only(api, owner, make_set):
    v = make_set("exposures", [{"exposure": exposure_id(150)}, {"exposure": exposure_id(5, NIGHT2)}])
    table = Table.read(body(download(api(owner), v, "ecsv")).decode(), format="ascii.ecsv")
    assert table.colnames == ["instrument", "exposure"]
    assert list(table["exposure"]) == [exposure_id(150), exposure_id(5, NIGHT2)]
    assert table["exposure"].dtype == np.int64


def test_an_unknown_format_is_refused(api, owner, version):
    response = download(api(owner), version, "xlsx")
    assert response.status_code == 400
    assert response.json()["format"]
    page = Client()
    page.force_login(owner)
    assert page.get(f"/data/sets/{version.dataid_set_id}/download/?format=xlsx").status_code == 404


def test_a_specific_version_can_be_downloaded(api, owner, make_set, version):
    v2 = make_set("download-me", ids([151], [1, 2]))
    assert v2.number == 2
    client = api(owner)
    latest = json.loads(body(download(client, version, "json")))
    assert {(d["exposure"], d["detector"]) for d in latest} == {(exposure_id(151), 1), (exposure_id(151), 2)}
    first = json.loads(body(download(client, version, "json", number=1)))
    assert first == expected_dicts()
    response = download(client, version, "csv", number=2)
    assert response["Content-Disposition"] == 'attachment; filename="download-me-v2.csv"'
    assert len(body(response).decode().splitlines()) == 3
    table = Table.read(body(download(client, version, "ecsv", number=1)).decode(), format="ascii.ecsv")
    assert len(table) == len(RECORDS) and table.meta["version"] == 1
    for missing in (3, 0, "abc", "-1"):
        assert download(client, version, "json", number=missing).status_code == 404, missing


def test_the_download_page_serves_csv_by_default_and_any_version(owner, make_set, version):
    make_set("download-me", ids([151], [1]))
    page = Client()
    page.force_login(owner)
    url = f"/data/sets/{version.dataid_set_id}/download/"
    latest = body(page.get(url)).decode().splitlines()
    assert latest == ["instrument,detector,exposure", f"DemoCam,1,{exposure_id(151)}"]
    first = body(page.get(url, {"version": 1, "format": "json"}))
    assert json.loads(first) == expected_dicts()
    assert page.get(url, {"version": "x"}).status_code == 404
