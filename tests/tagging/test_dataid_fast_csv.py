"""The vectorised path for CSV files of primary keys (``tagging.dataids.fastcsv``).

Every file is uploaded twice through the real service: once as it runs (fast path where it applies)
and once with the fast path switched off (the general per-row checker). Both must store the same
data IDs with the same counts and provenance, or refuse with the same problems (where, key, message).
Valid files of primary keys must not reach the general checker at all.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pytest

import tagging.services.dataids as dataid_services
from core.errors import InputError
from tagging.dataids.normalize import CheckResult, ColumnRows, DataIdChecker
from tagging.models import DataIdRow, DataIdSet, DataIdSetVersion
from tagging.services import UploadSource, dataidset_create

from .helpers import NIGHT, NIGHT2, exposure_id

pytestmark = pytest.mark.django_db

SEQS = [(NIGHT, s) for s in (1, 2, 3, 4, 5, 6, 150, 151, 152, 153)] + [(NIGHT2, s) for s in (1, 2, 150, 153)]


def upload(user, content: bytes, name: str, dimensions: list[str] | None = None, **extra: Any) -> tuple[str, Any]:
    """("stored", what was stored) or ("refused", the problems), and nothing else kept in the database."""
    source = UploadSource(
        kind="file", filename=f"{name}.csv", stream=io.BytesIO(content), size=len(content), dimensions=dimensions
    )
    try:
        version = dataidset_create(user=user, repo_label="demo", name=name, reason="fast path", source=source, **extra)
    except InputError as exc:
        assert DataIdRow.objects.count() == 0
        return "refused", (exc.message, exc.problems, exc.total, exc.field)
    stored = (
        version.dimensions,
        set(version.rows.values_list(*version.dimensions)),
        version.count,
        version.duplicates_removed,
        version.dropped_count,
        version.dropped_report,
        {k: v for k, v in version.source.items()},
    )
    assert version.rows.count() == version.count
    DataIdSet.objects.filter(pk=version.dataid_set_id).delete()
    return "stored", stored


def both_ways(monkeypatch, user, content: bytes, *, fast_expected: bool, **extra: Any) -> tuple[str, Any]:
    general_runs = []
    real_run = DataIdChecker.run

    def counting_run(self, rows):
        general_runs.append(1)
        return real_run(self, rows)

    with monkeypatch.context() as m:
        m.setattr(DataIdChecker, "run", counting_run)
        outcome = upload(user, content, "as-is", **extra)
    assert (not general_runs) == fast_expected, "fast path used" if general_runs == [] else "general path used"
    with monkeypatch.context() as m:
        m.setattr(dataid_services, "check_csv_fast", lambda stream, checker: None)
        reference = upload(user, content, "as-is", **extra)
    assert outcome == reference
    return outcome


def lines(*rows: str, header: str = "instrument,exposure,detector", end: str = "\n") -> bytes:
    return (end.join([header, *rows]) + end).encode()


def good_rows(order_seed: int = 1) -> list[str]:
    rows = [f"DemoCam,{exposure_id(s, d)},{det}" for d, s in SEQS for det in range(9)]
    rows += rows[:7]  # duplicates
    np.random.default_rng(order_seed).shuffle(rows)
    return rows


def test_a_valid_file_of_primary_keys_is_checked_in_bulk_and_stored_like_the_general_path(
    monkeypatch, owner, butler_repo
):
    content = lines(*good_rows())
    kind, stored = both_ways(monkeypatch, owner, content, fast_expected=True)
    assert kind == "stored"
    dimensions, rows, count, duplicates, dropped, report, source = stored
    assert dimensions == ["instrument", "detector", "exposure"]
    assert count == len(SEQS) * 9 and duplicates == 7 and dropped == 0 and report == []
    assert rows == {("DemoCam", det, exposure_id(s, d)) for d, s in SEQS for det in range(9)}
    assert source["sha256"] == hashlib.sha256(content).hexdigest() and source["size"] == len(content)
    assert source["format"] == "csv"


@pytest.mark.parametrize(
    "content",
    [
        lines(*good_rows(), end="\r\n"),
        b"\xef\xbb\xbf" + lines(*good_rows()),
        lines(*good_rows())[:-1],  # no newline at the end
        lines(*[f'"DemoCam","{exposure_id(150)}",{d}' for d in range(9)]),
        lines(*[f"{exposure_id(151)},{d}" for d in range(9)], header="exposure,detector"),  # default instrument
        lines(*[f"{d},{exposure_id(152)}" for d in range(9)], header=" detector , exposure"),
        lines(*[f"DemoCam, {exposure_id(152)} ,{d}" for d in range(9)]),  # spaces around integers
        lines(*[f"{exposure_id(150)}" for _ in range(3)], header="exposure"),
        lines(*[f"{exposure_id(150)},{d}" for d in (0, 3)], header="visit,detector"),  # science exposures' visits
    ],
    ids=[
        "crlf",
        "bom",
        "no-final-newline",
        "quoted",
        "no-instrument",
        "header-spaces",
        "int-spaces",
        "exposures-only",
        "visits",
    ],
)
def test_valid_variants_take_the_fast_path(monkeypatch, owner, butler_repo, content):
    kind, _ = both_ways(monkeypatch, owner, content, fast_expected=True)
    assert kind == "stored"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (lines(f"DemoCam,{exposure_id(150)},0", f" DemoCam ,{exposure_id(150)},1"), "stored"),  # stripped
        (lines(f"DemoCam,{exposure_id(150)},0x1"), "refused"),  # pyarrow reads 0x1 as 1; int() does not
        (lines(f"DemoCam,{exposure_id(150)},0", f"DemoCam,{exposure_id(150)},1_0"), "refused"),
        (lines(f"DemoCam,{exposure_id(150)},NA"), "refused"),
        (lines(f"DemoCam,{exposure_id(150)},", f"DemoCam,{exposure_id(150)}"), "refused"),
        (lines(f"DemoCam,{exposure_id(150)},1,2"), "refused"),
        (lines(*good_rows()[:20], "", *good_rows()[20:40], ""), "stored"),  # blank lines: kept line numbers
        (lines(f"DemoCam,{exposure_id(150)},1", "   ", f"DemoCam,{exposure_id(151)},1"), "stored"),
        (lines(f"DemoCam,{exposure_id(150)},1", ",,", f"DemoCam,{exposure_id(151)},1"), "stored"),
        (lines(f"DemoCam,{exposure_id(150)},1") + b"DemoCam,2025112100151,\xe9\n", "refused"),
        (lines(f"DemoCam,{exposure_id(150)},1.0"), "refused"),
        (lines(f"DC_O_{NIGHT}_000150,R22_S11", header="obs_id,detector"), "stored"),  # alternate keys
        (lines(f"DemoCam,{exposure_id(150)},1,red", header="instrument,exposure,detector,colour"), "refused"),
        (lines(header="instrument,exposure,detector"), "refused"),  # header only
        (lines('"DemoCam",1', header='"instrument",exposure'), "refused"),
    ],
)
def test_anything_irregular_goes_to_the_general_path_with_the_same_outcome(
    monkeypatch, owner, butler_repo, content, kind
):
    outcome_kind, outcome = both_ways(monkeypatch, owner, content, fast_expected=False)
    assert outcome_kind == kind, outcome


@pytest.mark.parametrize(
    "content",
    [
        lines(f"DemoCam,{exposure_id(150)},0", f"DemoCam,{exposure_id(999)},1", f"DemoCam,{exposure_id(151)},42"),
        lines(f"DemoCam,{exposure_id(150)},0", f"LSSTCam,{exposure_id(150)},1"),  # unknown instrument
        lines(f"DemoCam,{exposure_id(150)},-1"),
        lines(f"{exposure_id(1)},1", header="visit,detector"),  # a calibration: no visit
        lines(*[f"DemoCam,{exposure_id(999)},{d}" for d in range(9)] * 8),  # more problems than the sample
        lines(f"DemoCam,{exposure_id(150)},0", f"DemoCam,{exposure_id(999)},1", end="\r\n"),
    ],
    ids=["exposure-and-detector", "instrument", "negative-detector", "calibration-visit", "many", "crlf"],
)
def test_values_the_repo_does_not_hold_are_refused_by_the_fast_path_as_the_general_path_words_it(
    monkeypatch, owner, butler_repo, content
):
    kind, (_, problems, total, _) = both_ways(monkeypatch, owner, content, fast_expected=True)
    assert kind == "refused" and total >= 1 and problems
    assert all(p["where"].startswith("line ") for p in problems)


def test_a_bad_file_with_blank_lines_goes_to_the_general_path_for_its_line_numbers(monkeypatch, owner, butler_repo):
    content = lines(f"DemoCam,{exposure_id(150)},0", "", f"DemoCam,{exposure_id(999)},1")
    kind, (_, problems, _, _) = both_ways(monkeypatch, owner, content, fast_expected=False)
    assert kind == "refused" and problems[0]["where"] == "line 4"


class _CountingStream(io.BytesIO):
    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self.bytes_read += n
        return n


def test_a_failing_strict_upload_reads_the_file_once(monkeypatch, owner, butler_repo):
    """Issue 3: a bad large file used to be read twice (fast path, then the general path from the start)."""
    rows = good_rows() * 40
    rows[1000] = f"DemoCam,{exposure_id(777)},3"
    content = lines(*rows)
    stream = _CountingStream(content)
    monkeypatch.setattr(DataIdChecker, "run", lambda self, rows: pytest.fail("the general path read the file again"))
    with pytest.raises(InputError) as caught:
        dataidset_create(
            user=owner, repo_label="demo", name="bad", reason="r",
            source=UploadSource(kind="file", filename="bad.csv", stream=stream, size=len(content)),
        )  # fmt: skip
    assert stream.bytes_read == len(content)
    assert caught.value.total == 1
    assert caught.value.problems == [
        {
            "where": "line 1002",
            "key": "exposure",
            "message": f"exposure {exposure_id(777)} does not exist for instrument 'DemoCam'",
        }
    ]
    assert DataIdRow.objects.count() == 0 and DataIdSet.objects.count() == 0


def test_problems_in_a_large_file_are_reported_with_their_lines(monkeypatch, owner, butler_repo):
    rows = good_rows() * 3
    rows[100] = f"DemoCam,{exposure_id(777)},3"
    rows[250] = f"DemoCam,{exposure_id(150)},9"
    kind, (message, problems, total, _) = both_ways(monkeypatch, owner, lines(*rows), fast_expected=True)
    assert kind == "refused" and total == 2
    assert [(p["where"], p["key"]) for p in problems] == [("line 102", "exposure"), ("line 252", "detector")]
    assert "nothing was stored" in message


def test_drop_invalid_and_declared_dimensions(monkeypatch, owner, butler_repo):
    clean = lines(*good_rows())
    assert both_ways(monkeypatch, owner, clean, fast_expected=True, drop_invalid=True)[0] == "stored"
    assert both_ways(monkeypatch, owner, clean, fast_expected=True, dimensions=["exposure", "detector"])[0] == "stored"
    # Declared dimensions that differ from the columns: the general path decides (and refuses).
    assert both_ways(monkeypatch, owner, clean, fast_expected=False, dimensions=["exposure"])[0] == "refused"
    dirty = lines(*good_rows()[:30], f"DemoCam,{exposure_id(999)},0")
    kind, stored = both_ways(monkeypatch, owner, dirty, fast_expected=True, drop_invalid=True)
    assert kind == "stored" and stored[4] == 1
    assert stored[5] == [
        {
            "where": "line 32",
            "key": "exposure",
            "message": f"exposure {exposure_id(999)} does not exist for instrument 'DemoCam'",
        }
    ]


def test_a_new_version_from_the_fast_path_keeps_the_set_and_its_dimensions(owner, butler_repo):
    content = lines(*good_rows())
    first = dataidset_create(
        user=owner, repo_label="demo", name="twice", reason="r",
        source=UploadSource(kind="file", filename="a.csv", stream=io.BytesIO(content), size=len(content)),
    )  # fmt: skip
    second = dataidset_create(
        user=owner, repo_label="demo", name="twice", reason="r",
        source=UploadSource(kind="file", filename="b.csv", stream=io.BytesIO(content), size=len(content)),
    )  # fmt: skip
    assert (first.number, second.number) == (1, 2)
    assert DataIdRow.objects.filter(version=second).count() == second.count == first.count


def test_columns_of_several_instruments_are_stored_by_binary_copy(owner, butler_repo):
    """The store step on its own: one record layout per instrument, rows of every group kept."""
    dataid_set = DataIdSet.objects.create(name="multi", repo=butler_repo, owner=owner, reason="r")
    version = DataIdSetVersion.objects.create(
        dataid_set=dataid_set, number=1, dimensions=["instrument", "detector", "exposure"], source_kind="file",
        created_by=owner,
    )  # fmt: skip
    columns = ColumnRows(
        count=5,
        arrays={"exposure": np.array([5, 6, 7, 7, 2**40], dtype=np.int64), "detector": np.array([0, 1, 2, 3, 4])},
        instrument_codes=np.array([0, 0, 1, 1, 2]),
        instruments=["A", "LongerName", "Ü"],
    )
    result = CheckResult(dimensions=["instrument", "detector", "exposure"], rows=[], columns=columns)
    dataid_services._store_rows(version, result)
    stored = list(version.rows.order_by("pk").values_list("instrument", "detector", "exposure", "visit"))
    assert stored == [
        ("A", 0, 5, None),
        ("A", 1, 6, None),
        ("LongerName", 2, 7, None),
        ("LongerName", 3, 7, None),
        ("Ü", 4, 2**40, None),
    ]


@pytest.mark.parametrize("dense_max", [0, 1 << 26], ids=["sorting", "counting"])
def test_both_ways_of_removing_duplicates_give_the_sorted_distinct_rows(monkeypatch, dense_max):
    from tagging.dataids import fastcsv

    monkeypatch.setattr(fastcsv, "DENSE_KEYS_MAX", dense_max)
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 2, 5000)
    exposures = rng.integers(2025112100000, 2025112100300, 5000)
    detectors = rng.integers(0, 9, 5000)
    (out_codes, out_exposures, out_detectors), duplicates = fastcsv._unique_rows([codes, exposures, detectors])
    expected = sorted(set(zip(codes.tolist(), exposures.tolist(), detectors.tolist(), strict=True)))
    assert list(zip(out_codes.tolist(), out_exposures.tolist(), out_detectors.tolist(), strict=True)) == expected
    assert duplicates == 5000 - len(expected)


def test_the_mirror_is_re_read_only_when_the_registry_holds_what_it_lacks(monkeypatch, owner, butler_repo):
    import tagging.services as tagging_services
    from tagging.models import Exposure

    syncs = []
    real_sync = tagging_services.repo_mirror_sync
    monkeypatch.setattr(tagging_services, "repo_mirror_sync", lambda **kw: (syncs.append(1), real_sync(**kw))[1])
    # An unknown exposure: the registry is asked about it alone, and the mirror is not re-read.
    kind, (_, problems, _, _) = upload(
        owner, lines(f"DemoCam,{exposure_id(150)},0", f"DemoCam,{exposure_id(999)},1"), "u"
    )
    assert kind == "refused" and problems[0]["key"] == "exposure" and syncs == []
    # The mirror is behind the registry (an exposure is missing from it): re-read once, then stored.
    Exposure.objects.filter(repo=butler_repo, exposure_id=exposure_id(151)).delete()
    kind, stored = upload(owner, lines(f"DemoCam,{exposure_id(150)},0", f"DemoCam,{exposure_id(151)},1"), "b")
    assert kind == "stored" and stored[2] == 2 and syncs == [1]
    assert Exposure.objects.filter(repo=butler_repo, exposure_id=exposure_id(151)).exists()
