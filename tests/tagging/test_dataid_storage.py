"""How a version's data IDs are stored: chunks of typed arrays (``tagging.dataids.storage``), the
``tagging_dataidrow`` view over them, and the readers every user of a set goes through."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from tagging.dataids import storage
from tagging.models import DataIdChunk, DataIdRow, DataIdSet, DataIdSetVersion
from tagging.services import dataidset_algebra

pytestmark = pytest.mark.django_db


def make_version(owner, repo, name: str, dimensions: list[str], rows: list[tuple]) -> DataIdSetVersion:
    dataid_set = DataIdSet.objects.create(name=name, repo=repo, owner=owner, reason="storage test")
    version = DataIdSetVersion.objects.create(
        dataid_set=dataid_set, number=1, dimensions=dimensions, count=len(rows), source_kind="records", created_by=owner
    )
    storage.store(version.pk, dimensions, storage.columns_from_tuples(dimensions, rows))
    return version


def test_a_large_version_is_cut_into_chunks_and_read_back_in_order(owner, butler_repo, monkeypatch):
    monkeypatch.setattr(storage, "CHUNK_ROWS", 1000)
    monkeypatch.setattr(storage, "SQLITE_CHUNK_ROWS", 1000)
    dims = ["instrument", "detector", "exposure"]
    rows = [("B", i % 9, 10_000 + i) for i in range(2500)] + [("A", 1, 5), ("A", 0, 7)]
    version = make_version(owner, butler_repo, "big", dims, rows)
    chunks = list(DataIdChunk.objects.filter(version=version).order_by("seq").values_list("instrument", "size"))
    # Grouped by instrument (first seen first, file order kept inside), never a chunk across two.
    assert chunks == [("B", 1000), ("B", 1000), ("B", 500), ("A", 2)]
    assert list(storage.iter_rows(version.pk, dims)) == rows
    columns = storage.read_columns(version.pk, dims)
    assert columns["exposure"].dtype == np.int64 and columns["instrument"][0] == "B"
    assert columns["exposure"].tolist() == [r[2] for r in rows]
    # The view: one row per data ID, ``id`` in stored order, joinable and filterable in SQL.
    assert list(version.rows.order_by("pk").values_list(*dims)) == rows
    assert DataIdRow.objects.filter(version=version, exposure__gte=12_000).count() == 500
    zone = DataIdChunk.objects.get(version=version, seq=1)
    assert (zone.exposure_min, zone.exposure_max) == (11_000, 11_999)


def test_text_dimensions_and_versions_containing_an_exposure_or_visit(owner, butler_repo):
    dims = ["instrument", "band", "day_obs", "physical_filter"]
    text = make_version(
        owner, butler_repo, "bands", dims, [("DemoCam", "g", 20251121, "g_01"), ("DemoCam", "r", 20251121, "r_03")]
    )
    assert list(storage.iter_rows(text.pk, dims)) == [
        ("DemoCam", "g", 20251121, "g_01"),
        ("DemoCam", "r", 20251121, "r_03"),
    ]
    one = make_version(
        owner, butler_repo, "one", ["instrument", "detector", "exposure"], [("DemoCam", 0, 7), ("DemoCam", 1, 9)]
    )
    two = make_version(
        owner, butler_repo, "two", ["instrument", "detector", "exposure"], [("DemoCam", 0, 8), ("LSSTCam", 1, 7)]
    )
    visits = make_version(owner, butler_repo, "visits", ["instrument", "detector", "visit"], [("DemoCam", 3, 7)])
    assert storage.versions_containing("DemoCam", exposure=7) == {one.pk}
    assert storage.versions_containing("DemoCam", exposure=8) == {two.pk}  # in one's zone (7-9), not in one
    assert storage.versions_containing("LSSTCam", exposure=7) == {two.pk}
    assert storage.versions_containing("DemoCam", visit=7) == {visits.pk}
    assert storage.versions_containing("DemoCam", exposure=10) == set()


def test_set_algebra_reads_and_writes_chunks(owner, butler_repo):
    dims = ["instrument", "detector", "exposure"]
    a = make_version(owner, butler_repo, "a", dims, [("DemoCam", d, 1) for d in range(5)])
    b = make_version(owner, butler_repo, "b", dims, [("DemoCam", d, 1) for d in range(3, 8)])
    union = dataidset_algebra(user=owner, operation="union", parent_version_ids=[a.pk, b.pk], name="u", reason="r")
    assert union.count == 8 and list(storage.iter_rows(union.pk, dims)) == [("DemoCam", d, 1) for d in range(8)]
    diff = dataidset_algebra(user=owner, operation="difference", parent_version_ids=[a.pk, b.pk], name="d", reason="r")
    assert list(storage.iter_rows(diff.pk, dims)) == [("DemoCam", d, 1) for d in range(3)]


def test_deleting_a_set_deletes_its_chunks(owner, butler_repo):
    version = make_version(owner, butler_repo, "gone", ["instrument", "detector", "exposure"], [("DemoCam", 0, 1)])
    DataIdSet.objects.filter(pk=version.dataid_set_id).delete()
    assert not DataIdChunk.objects.exists() and not DataIdRow.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL storage details")
def test_arrays_are_native_postgresql_arrays(owner, butler_repo):
    version = make_version(
        owner, butler_repo, "native", ["instrument", "detector", "exposure"], [("DemoCam", 4, 2**40)]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_typeof(exposure)::text, pg_typeof(detector)::text, exposure[1], visit IS NULL "
            "FROM tagging_dataidchunk WHERE version_id = %s",
            [version.pk],
        )
        assert cursor.fetchone() == ("bigint[]", "integer[]", 2**40, True)
