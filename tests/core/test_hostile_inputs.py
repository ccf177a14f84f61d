"""Hostile inputs against every reader of user input, through the real API: each limit kind of each reader
answers 400 with a message that names the limit (its setting) and where it was passed, and stores nothing.

docs/security.md ("Hostile inputs the tests try") lists these cases; the memory each costs is measured in
test_hostile_memory.py.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Campaign
from metrics.models import MetricValue
from tagging.models import DataIdSetVersion, ExposureFlag, TagRow
from tests.tagging.tagtable_helpers import make_table

pytestmark = pytest.mark.django_db

EXPOSURE = 20251121 * 100_000 + 150  # in the test repo (tests/conftest.py butler_root)
DEEP = 100  # levels; the limit is 32


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [str(value)]


def assert_refused(response, *expected: str) -> str:
    """A 400 whose body (JSON) says every ``expected`` text somewhere; returns the body's text."""
    assert response.status_code == 400, (response.status_code, response.content[:500])
    text = " | ".join(_texts(response.json()))
    for part in expected:
        assert part in text, (part, text)
    return text


def assert_nothing_stored() -> None:
    assert not DataIdSetVersion.objects.exists()
    assert not TagRow.objects.exists()
    assert not MetricValue.objects.exists()
    assert not ExposureFlag.objects.exists()
    assert not Campaign.objects.exists()


# --- the readers: each takes (api client, filename, bytes) ------------------------------------------------


def dataids(client, name: str, content: bytes, fmt: str = ""):
    data = {"name": "hostile", "repo": "demo", "reason": "hostile input", "file": SimpleUploadedFile(name, content)}
    if fmt:
        data["format"] = fmt
    return client.post("/api/v1/dataid-sets/", data, format="multipart")


def tagrows(client, name: str, content: bytes, table):
    return client.post(
        f"/api/v1/tag-tables/{table.pk}/upload/", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


def metrics(client, name: str, content: bytes, **fields):
    data = {"repo": "demo", "source": "hostile", "file": SimpleUploadedFile(name, content), **fields}
    return client.post("/api/v1/metrics/ingest/", data, format="multipart")


def flags(client, name: str, content: bytes):
    return client.post(
        "/api/v1/flags/import/", {"repo": "demo", "file": SimpleUploadedFile(name, content)}, format="multipart"
    )


def campaign_yaml(client, text: str):
    return client.post("/api/v1/campaigns/import/", data=text.encode(), content_type="application/yaml")


def json_body(client, body: bytes):
    return client.post("/api/v1/selections/count", data=body, content_type="application/json")


# --- JSON shapes ------------------------------------------------------------------------------------------


def deep_row() -> bytes:
    return b'[{"exposure": ' + b"[" * DEEP + b"]" * DEEP + b"}]"


def long_string_row() -> bytes:
    return b'[{"exposure": "' + b"x" * 70_000 + b'"}]'


def many_elements_row() -> bytes:
    return b'[{"exposure": [' + b"0," * 20_000 + b"0]}]"


def long_row() -> bytes:
    # Under the string limit, over a row limit lowered to 4,000 bytes.
    return b'[{"exposure": 1}, {"exposure": 2, "a": "' + b"y" * 3_000 + b'", "b": "' + b"y" * 3_000 + b'"}]'


@dataclass
class Case:
    id: str
    send: Callable[..., Any]
    expected: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)


ROW_JSON_CASES = [
    ("depth", deep_row, ("nested deeper than 32 levels", "CM_INPUT_MAX_DEPTH", "index 0"), {}),
    ("string", long_string_row, ("a string longer than 65,536 bytes", "CM_INPUT_MAX_STRING_BYTES", "index 0"), {}),
    (
        "row_elements",
        many_elements_row,
        ("a row of more than 10,000 elements", "CM_INPUT_MAX_ROW_ELEMENTS", "index 0"),
        {},
    ),
    (
        "row_bytes",
        long_row,
        ("a row longer than 4,000 bytes", "CM_INPUT_MAX_ROW_BYTES", "index 1"),
        {"CM_INPUT_MAX_ROW_BYTES": 4_000},
    ),
]

CSV_CASES = [
    (
        "string",
        b"exposure\n" + b"1" * 70_000 + b"\n",
        ("longer than 65,536", "CM_INPUT_MAX_STRING_BYTES", "line 2"),
        {},
    ),
    (
        "row_elements",
        b"exposure\n" + b"1," * 10_001 + b"1\n",
        ("more than 10,000 cells", "CM_INPUT_MAX_ROW_ELEMENTS", "line 2"),
        {},
    ),
    (
        "row_bytes",
        # Text, so the general reader takes it (the fast path reads integers only, in 4 MiB blocks).
        b"exposure,detector\n1,2\n" + b"3," + b"x" * 5_000 + b"\n",
        ("a line longer than 4,000 characters", "CM_INPUT_MAX_ROW_BYTES", "line 3"),
        {"CM_INPUT_MAX_ROW_BYTES": 4_000},
    ),
]


def _apply(settings, overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        setattr(settings, key, value)


@pytest.mark.parametrize(("kind", "make", "expected", "overrides"), ROW_JSON_CASES, ids=[c[0] for c in ROW_JSON_CASES])
def test_a_hostile_dataid_json_upload_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, make, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(dataids(api(owner), "ids.json", make()), *expected)
    assert_nothing_stored()


@pytest.mark.parametrize(("kind", "make", "expected", "overrides"), ROW_JSON_CASES, ids=[c[0] for c in ROW_JSON_CASES])
def test_a_hostile_dataid_json_object_upload_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, make, expected, overrides
):
    _apply(settings, overrides)
    content = b'{"name": "x", "data_ids": ' + make() + b"}"
    assert_refused(dataids(api(owner), "ids.json", content), *[e for e in expected if not e.startswith("index")])
    assert_nothing_stored()


@pytest.mark.parametrize(("kind", "content", "expected", "overrides"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_a_hostile_dataid_csv_upload_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, content, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(dataids(api(owner), "ids.csv", content), *expected)
    assert_nothing_stored()


@pytest.mark.parametrize(("kind", "make", "expected", "overrides"), ROW_JSON_CASES, ids=[c[0] for c in ROW_JSON_CASES])
def test_a_hostile_tag_table_json_upload_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, make, expected, overrides
):
    table = make_table(owner)
    _apply(settings, overrides)
    assert_refused(tagrows(api(owner), "rows.json", make(), table), *expected)
    assert_nothing_stored()


@pytest.mark.parametrize(("kind", "content", "expected", "overrides"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_a_hostile_tag_table_csv_upload_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, content, expected, overrides
):
    table = make_table(owner)
    _apply(settings, overrides)
    assert_refused(tagrows(api(owner), "rows.csv", content, table), *expected)
    assert_nothing_stored()


def test_a_tag_table_upload_of_more_rows_than_the_upload_limit_is_refused(api, owner, butler_repo, settings):
    table = make_table(owner)
    settings.CM_UPLOAD_MAX_ROWS = 3
    content = "exposure,seeing\n" + "".join(f"{EXPOSURE},{i}\n" for i in range(4))
    assert_refused(tagrows(api(owner), "rows.csv", content.encode(), table), "more than 3 rows", "CM_UPLOAD_MAX_ROWS")
    assert_nothing_stored()


@pytest.mark.parametrize("reader", ["dataids", "tagrows"])
def test_an_upload_larger_than_the_upload_limit_is_refused_naming_it(api, owner, butler_repo, settings, reader):
    table = make_table(owner)
    settings.CM_DATAID_UPLOAD_MAX_BYTES = 100
    content = b"exposure\n" + f"{EXPOSURE}\n".encode() * 20
    response = (
        dataids(api(owner), "ids.csv", content) if reader == "dataids" else tagrows(api(owner), "r.csv", content, table)
    )
    assert_refused(response, "at most 100 bytes", "CM_DATAID_UPLOAD_MAX_BYTES")
    assert_nothing_stored()


# --- metric ingest ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "make", "expected", "overrides"), ROW_JSON_CASES, ids=[c[0] for c in ROW_JSON_CASES])
def test_a_hostile_metric_record_list_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, make, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(metrics(api(owner), "records.json", make(), format="flat"), *expected)
    assert_nothing_stored()


JSONL_CASES = [
    ("depth", b'{"exposure": 1, "m": ' + b"[" * DEEP + b"]" * DEEP + b"}\n", ("nested deeper than 32", "line 1"), {}),
    ("string", b'{"exposure": 1, "m": "' + b"x" * 70_000 + b'"}\n', ("CM_INPUT_MAX_STRING_BYTES", "line 1"), {}),
    (
        "row_elements",
        b'{"exposure": 1, "m": 2}\n{"exposure": 1, "m": [' + b"0," * 20_000 + b"0]}\n",
        ("more than 10,000 elements", "CM_INPUT_MAX_ROW_ELEMENTS", "line 2"),
        {},
    ),
    (
        "row_bytes",
        b'{"exposure": 1, "m": 2}\n{"exposure": 1, "m": 3' + b" " * 5_000 + b"}\n",
        ("a line longer than 4,000 bytes", "CM_INPUT_MAX_ROW_BYTES", "line 2"),
        {"CM_INPUT_MAX_ROW_BYTES": 4_000},
    ),
]


@pytest.mark.parametrize(("kind", "content", "expected", "overrides"), JSONL_CASES, ids=[c[0] for c in JSONL_CASES])
def test_hostile_metric_json_lines_are_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, content, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(metrics(api(owner), "records.jsonl", content, format="flat"), *expected)
    assert_nothing_stored()


BUNDLE_CASES = [
    (
        "depth",
        b'{"psfMetrics": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        ("nested deeper than 32", "CM_INPUT_MAX_DEPTH"),
        {},
    ),
    ("string", b'{"psfMetrics": [{"metric": "' + b"x" * 70_000 + b'"}]}', ("CM_INPUT_MAX_STRING_BYTES",), {}),
    (
        "elements",
        b'{"psfMetrics": [' + b"{}," * 2_000 + b"{}]}",
        ("more than 1,000 elements", "CM_INPUT_MAX_ELEMENTS"),
        {"CM_INPUT_MAX_ELEMENTS": 1_000},
    ),
]


@pytest.mark.parametrize(("kind", "content", "expected", "overrides"), BUNDLE_CASES, ids=[c[0] for c in BUNDLE_CASES])
def test_a_hostile_metric_bundle_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, content, expected, overrides
):
    _apply(settings, overrides)
    response = metrics(api(owner), "bundle.json", content, format="bundle", data_id=f"exposure={EXPOSURE},detector=4")
    assert_refused(response, *expected)
    assert_nothing_stored()


# --- exposure-log import ----------------------------------------------------------------------------------

FLAG_CASES = [
    ("depth", b"[" * DEEP + b"]" * DEEP, ("nested deeper than 32", "CM_INPUT_MAX_DEPTH", "line 1, byte 33"), {}),
    ("string", b'[{"message_text": "' + b"x" * 70_000 + b'"}]', ("CM_INPUT_MAX_STRING_BYTES",), {}),
    (
        "elements",
        b"[" + b"{}," * 2_000 + b"{}]",
        ("more than 1,000 elements", "CM_INPUT_MAX_ELEMENTS"),
        {"CM_INPUT_MAX_ELEMENTS": 1_000},
    ),
    (
        "bytes",
        b"[" + b"{}," * 2_000 + b"{}]",
        ("larger than 1,000 bytes", "CM_IMPORT_MAX_BYTES"),
        {"CM_IMPORT_MAX_BYTES": 1_000},
    ),
]


@pytest.mark.parametrize(("kind", "content", "expected", "overrides"), FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_a_hostile_exposure_log_export_is_refused_naming_the_limit(
    api, owner, butler_repo, settings, kind, content, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(flags(api(owner), "messages.json", content), *expected)
    assert_nothing_stored()


# --- JSON request bodies ------------------------------------------------------------------------------------

BODY_CASES = [
    (
        "depth",
        b'{"recipe": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        ("nested deeper than 32", "CM_INPUT_MAX_DEPTH"),
        {},
    ),
    ("string", b'{"recipe": {"repo": "' + b"x" * 70_000 + b'"}}', ("CM_INPUT_MAX_STRING_BYTES",), {}),
    (
        "elements",
        b'{"recipe": [' + b"0," * 2_000 + b"0]}",
        ("more than 1,000 elements", "CM_INPUT_MAX_ELEMENTS"),
        {"CM_INPUT_MAX_ELEMENTS": 1_000},
    ),
    (
        "bytes",
        b'{"recipe": "' + b"x" * 2_000 + b'"}',
        ("larger than 1,000 bytes", "CM_REQUEST_MAX_BYTES"),
        {"DATA_UPLOAD_MAX_MEMORY_SIZE": 1_000},
    ),
    ("nan", b'{"recipe": {"repo": "demo", "sample": {"fraction": NaN}}}', ("NaN is not a number JSON allows",), {}),
    ("int64", b'{"recipe": {"sample": {"size": 99999999999999999999}}}', ("out of range (a 64-bit integer)",), {}),
    ("float", b'{"recipe": {"sample": {"fraction": 1e999}}}', ("beyond the range of a 64-bit float",), {}),
]


@pytest.mark.parametrize(("kind", "body", "expected", "overrides"), BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_a_hostile_json_request_body_is_refused_naming_the_limit(
    api, science_user, butler_repo, settings, kind, body, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(json_body(api(science_user), body), *expected)


def test_a_deep_json_string_in_a_form_field_is_refused_not_a_recursion_error(api, owner, butler_repo):
    response = api(owner).post(
        "/api/v1/metrics/ingest/",
        {"repo": "demo", "source": "s", "bundle": "[" * 100_000 + "]" * 100_000, "data_id": f"exposure={EXPOSURE}"},
        format="multipart",
    )
    assert_refused(response, "nested deeper than 32", "CM_INPUT_MAX_DEPTH")


def test_selection_recipe_numbers_must_be_finite_64_bit_values():
    from tagging.selection.recipe import RecipeError, normalize_recipe

    with pytest.raises(RecipeError) as caught:
        normalize_recipe({"repo": "demo", "sample": {"size": 2**70, "seed": 2**64}})
    messages = [p["message"] for p in caught.value.problems]
    assert "sample.size: is out of range (a 64-bit integer)." in messages
    assert "sample.seed: is out of range (a 64-bit integer)." in messages
    with pytest.raises(RecipeError) as caught:
        normalize_recipe({"repo": "demo", "sample": {"fraction": float("nan")}})
    assert caught.value.problems[0]["message"] == "sample.fraction: must be a finite number, got nan."


# --- campaign YAML ----------------------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

YAML_CASES = [
    ("alias", BILLION_LAUGHS, ("line 2, column 8", "an alias (*a) is not accepted"), {}),
    ("duplicate_key", "name: a\nreason: b\nname: c\n", ("line 3", "duplicate key 'name' (first given at line 1)"), {}),
    ("depth", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", ("nested deeper than 32 levels", "CM_INPUT_MAX_DEPTH"), {}),
    ("string", "name: " + "x" * 70_000 + "\n", ("line 1, column 7", "CM_INPUT_MAX_STRING_BYTES"), {}),
    (
        "elements",
        "a: [" + "0, " * 2_000 + "0]\n",
        ("more than 1,000 elements", "CM_INPUT_MAX_ELEMENTS"),
        {"CM_INPUT_MAX_ELEMENTS": 1_000},
    ),
    (
        "bytes",
        "name: " + "x" * 2_000 + "\n",
        ("at most 1000\xa0bytes is accepted", "CM_YAML_MAX_BYTES"),
        {"CM_YAML_MAX_BYTES": 1_000},
    ),
    (
        "int64",
        "name: x\nversion: 123456789012345678901234\n",
        ("line 2, column 10", "out of range (a 64-bit integer)"),
        {},
    ),
]


@pytest.mark.parametrize(("kind", "text", "expected", "overrides"), YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_hostile_campaign_yaml_is_refused_naming_the_limit_and_line(
    api, owner, butler_repo, settings, kind, text, expected, overrides
):
    _apply(settings, overrides)
    assert_refused(campaign_yaml(api(owner), text), *expected)
    assert_nothing_stored()


def test_bps_extra_yaml_in_the_campaign_form_refuses_aliases():
    from campaigns.forms import CampaignForm

    form = CampaignForm.__new__(CampaignForm)
    form.cleaned_data = {"bps_extra": "a: &x [1, 2]\nb: *x\n"}
    with pytest.raises(Exception) as caught:
        form.clean_bps_extra()
    assert "an alias (*x) is not accepted" in str(caught.value)


# --- tables: headers and metadata checked before reading --------------------------------------------------


def _parquet(table: pa.Table, **kwargs) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **kwargs)
    return out.getvalue()


def _fits(rows: int) -> bytes:
    out = io.BytesIO()
    Table({"exposure": np.full(rows, EXPOSURE), "detector": np.arange(rows) % 9}).write(out, format="fits")
    return out.getvalue()


def test_a_parquet_file_with_more_rows_than_the_quota_leaves_is_refused_from_its_metadata(
    api, owner, butler_repo, settings
):
    settings.CM_DATAID_QUOTA = 5
    content = _parquet(pa.table({"exposure": [EXPOSURE] * 10, "detector": [*range(9), 0]}))
    assert_refused(
        dataids(api(owner), "ids.parquet", content), "the table holds 10 rows", "quota leaves (5", "CM_DATAID_QUOTA"
    )
    assert_nothing_stored()


def test_a_parquet_file_whose_metadata_says_it_decodes_past_the_limit_is_refused(api, owner, butler_repo, settings):
    content = _parquet(pa.table({"exposure": [str(i) * 100 for i in range(20_000)]}), compression="zstd")
    settings.CM_DATAID_UPLOAD_MAX_BYTES = 1_000_000
    assert len(content) < settings.CM_DATAID_UPLOAD_MAX_BYTES
    assert_refused(
        dataids(api(owner), "ids.parquet", content),
        "bytes once decoded, more than 1,000,000",
        "CM_DATAID_UPLOAD_MAX_BYTES",
    )
    assert_nothing_stored()


def test_a_zstd_parquet_bomb_is_refused_once_its_decoded_bytes_pass_the_limit(api, owner, butler_repo, settings):
    content = _parquet(pa.table({"exposure": ["x" * 1000] * 20_000}), compression="zstd")
    settings.CM_DATAID_UPLOAD_MAX_BYTES = 1_000_000
    assert len(content) < 100_000  # 20 MB of values in a small file
    assert_refused(
        dataids(api(owner), "ids.parquet", content),
        "more than 1,000,000 bytes once decoded",
        "CM_DATAID_UPLOAD_MAX_BYTES",
    )
    assert_nothing_stored()


def test_a_fits_table_with_more_rows_than_the_quota_leaves_is_refused_from_its_header(
    api, owner, butler_repo, settings
):
    settings.CM_DATAID_QUOTA = 5
    assert_refused(dataids(api(owner), "ids.fits", _fits(10)), "the table holds 10 rows", "CM_DATAID_QUOTA")
    assert_nothing_stored()


def test_a_fits_header_that_claims_more_data_than_the_file_holds_is_refused(api, owner, butler_repo):
    content = bytearray(_fits(3))
    card = content.find(b"NAXIS2  =")
    content[card : card + 80] = f"{'NAXIS2':8}= {10**12:>20}".ljust(80).encode()
    assert_refused(dataids(api(owner), "ids.fits", bytes(content)), "the FITS header says its data is")
    assert_nothing_stored()


def test_a_gzip_bomb_is_refused_after_reading_at_most_the_limit(api, owner, butler_repo, settings):
    settings.CM_DATAID_UPLOAD_MAX_BYTES = 2_000_000
    content = gzip.compress(_fits(3) + b"\0" * 20_000_000)
    assert len(content) < 100_000
    assert_refused(
        dataids(api(owner), "ids.fits", content),
        "(gzip) decompresses to more than 2,000,000 bytes",
        "CM_DATAID_UPLOAD_MAX_BYTES",
    )
    assert_nothing_stored()


def test_a_gzip_compressed_fits_table_within_the_limits_is_read(api, owner, butler_repo):
    response = dataids(api(owner), "ids.fits", gzip.compress(_fits(3)))
    assert response.status_code == 201, response.content
    assert DataIdSetVersion.objects.get().count == 3


def test_a_zstd_compressed_table_is_refused(api, owner, butler_repo):
    assert_refused(dataids(api(owner), "ids.fits", b"\x28\xb5\x2f\xfd" + b"\0" * 100), "compressed with zstd")
    assert_nothing_stored()


VOTABLE = """<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE><TABLE>
  <FIELD name="exposure" datatype="long"/>
  <DATA>{data}</DATA>
 </TABLE></RESOURCE>
</VOTABLE>
"""


@pytest.mark.parametrize(
    ("case", "content", "expected"),
    [
        (
            "href",
            VOTABLE.format(data='<BINARY><STREAM href="file:///etc/passwd"/></BINARY>'),
            ("a STREAM that points elsewhere (href) is not accepted",),
        ),
        (
            "entities",
            '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            + VOTABLE.split("\n", 1)[1].format(data="<TABLEDATA><TR><TD>&b;</TD></TR></TABLEDATA>"),
            ("a VOTable with a DOCTYPE (entities) is not accepted",),
        ),
        (
            "depth",
            VOTABLE.format(data="<TABLEDATA>" + "<TR>" * 50 + "</TR>" * 50 + "</TABLEDATA>"),
            ("nested deeper than 32 levels", "CM_INPUT_MAX_DEPTH"),
        ),
    ],
)
def test_a_hostile_votable_is_refused_before_astropy_reads_it(api, owner, butler_repo, case, content, expected):
    assert_refused(dataids(api(owner), "ids.vot", content.encode()), *expected)
    assert_nothing_stored()


def test_an_ecsv_header_with_aliases_is_refused(api, owner, butler_repo):
    content = (
        "# %ECSV 1.0\n# ---\n# datatype:\n# - &x {name: exposure, datatype: int64}\n# - *x\n"
        f"# schema: astropy-2.0\nexposure\n{EXPOSURE}\n"
    )
    assert_refused(
        dataids(api(owner), "ids.ecsv", content.encode()), "the ECSV header has an alias (*x) is not accepted"
    )
    assert_nothing_stored()


def test_an_ecsv_file_with_more_rows_than_the_quota_leaves_is_refused_before_astropy_reads_it(
    api, owner, butler_repo, settings
):
    settings.CM_DATAID_QUOTA = 2
    out = io.StringIO()
    Table({"exposure": [EXPOSURE] * 3, "detector": [0, 1, 2]}).write(out, format="ascii.ecsv")
    assert_refused(
        dataids(api(owner), "ids.ecsv", out.getvalue().encode()), "the table holds 3 rows", "CM_DATAID_QUOTA"
    )


def test_a_streamed_upload_stops_once_it_holds_more_data_ids_than_the_quota_leaves(api, owner, butler_repo, settings):
    settings.CM_DATAID_QUOTA = 2
    rows = [{"exposure": EXPOSURE, "detector": d} for d in range(5)]
    assert_refused(
        dataids(api(owner), "ids.json", json.dumps(rows).encode()), "holds more than 2 data IDs", "CM_DATAID_QUOTA"
    )


# --- integers beyond 64 bits, NaN and infinity -----------------------------------------------------------


def test_integers_beyond_64_bits_in_dataid_uploads_are_problems_by_row(api, owner, butler_repo):
    big = 2**64 + 5
    for name, content in (
        ("ids.csv", f"exposure,detector\n{EXPOSURE},1\n{big},2\n".encode()),
        (
            "ids.parquet",
            _parquet(pa.table({"exposure": pa.array([EXPOSURE, 2**64 - 1], pa.uint64()), "detector": [1, 2]})),
        ),
    ):
        text = assert_refused(dataids(api(owner), name, content), "out of range (a 64-bit integer)")
        assert "line 3" in text or "row 2" in text
    text = assert_refused(dataids(api(owner), "ids.json", f'[{{"exposure": {big}, "detector": 1}}]'.encode()))
    assert "an integer beyond the 64-bit range" in text
    text = assert_refused(dataids(api(owner), "ids.json", b'[{"exposure": NaN, "detector": 1}]'))
    assert "malformed JSON" in text
    assert_nothing_stored()


def test_integers_beyond_64_bits_and_nan_in_tag_rows_are_problems_by_line(api, owner, butler_repo):
    table = make_table(
        owner,
        columns=[{"name": "count", "type": "int"}, {"name": "seeing", "type": "float"}],
    )
    content = f"exposure,count,seeing\n{EXPOSURE},{2**64},1.0\n{EXPOSURE + 1},1,nan\n{EXPOSURE + 2},1,1{'0' * 400}\n"
    text = assert_refused(tagrows(api(owner), "rows.csv", content.encode(), table))
    assert "out of range (a 64-bit integer)" in text
    assert "is not a finite number" in text
    assert_nothing_stored()


def test_a_metric_data_id_beyond_64_bits_is_a_problem_and_infinite_values_are_null(api, owner, butler_repo):
    content = (
        f'{{"exposure": 1e300, "detector": 1, "m": 1.0}}\n{{"exposure": {EXPOSURE}, "detector": 1, "m": Infinity}}\n'
        f'{{"exposure": {EXPOSURE}, "detector": 2, "m": {10**400}}}\n'
    ).encode()
    response = metrics(api(owner), "records.jsonl", content, format="flat")
    assert response.status_code == 200, response.content
    report = response.json()
    problems = {(p["where"], p["key"]): p["message"] for p in report["problems"]}
    assert "out of range (a 64-bit integer)" in problems[("line 1", "exposure")]
    assert (
        "the integer 10000000000000000000... (401 digits) is out of range (a 64-bit integer)"
        in problems[("line 3", "")]
    )
    assert MetricValue.objects.get().value is None  # line 2: infinity is stored as null, as documented


def test_exposure_log_numbers_beyond_their_columns_are_problems_by_index(api, owner, butler_repo):
    message = {
        "id": "00000000-0000-0000-0000-000000000001",
        "obs_id": "DC_O_20251121_000150",
        "instrument": "DemoCam",
        "day_obs": 20251121,
        "seq_num": 2**40,
        "message_text": "hello",
        "level": 2**40,
    }
    text = assert_refused(flags(api(owner), "messages.json", json.dumps([message]).encode()))
    assert "must be a non-negative integer (at most 2147483647)" in text
    assert "must be an integer (Python logging level)" in text
    assert_nothing_stored()


@pytest.mark.parametrize("threshold", ["nan", "inf", "-Infinity"])
def test_a_re_observation_threshold_must_be_finite(threshold):
    from django.core.exceptions import ValidationError

    from metrics.reobserve import clean_request

    with pytest.raises(ValidationError) as caught:
        clean_request({"metric": "psf_fwhm", "op": "<", "threshold": threshold})
    assert caught.value.message_dict["threshold"] == [f"Must be a finite number, got {threshold!r}."]


def test_a_gate_value_beyond_a_double_is_not_a_number_rather_than_an_overflow():
    from metrics.conditions import _number

    assert _number(10**400) is None
    assert _number(2.5) == 2.5
