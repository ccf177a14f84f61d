"""A against B from the pair indexes (sorted arrays merged in numpy) answers as the SQL join over the values."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import pairs, rollups, selectors
from metrics.models import MetricPairIndex, MetricValue
from metrics.selectors import MetricQuery
from tests.metrics import factories

pytestmark = pytest.mark.django_db

E = factories.exposure_id
METRIC = "demo.psf_fwhm"
FILTERS = [
    {},
    {"band": "r"},
    {"band": "no-such-band"},
    {"night_from": 20251122},
    {"night_from": 20251121, "night_to": 20251121, "band": "g"},
    {"step": "step1"},
    {"step": "step2"},
    {"detector": 4},
    {"value_min": 0.72},
    {"value_max": 0.725, "night_to": 20251122},
]


def fresh(query: MetricQuery) -> None:
    rollups.ensure_fresh(query.campaign_ids, query.metric)
    rollups.ensure_pair_indexes(query.campaign_ids, query.metric)


def from_index(query: MetricQuery, cap: int = selectors.PAIR_CAP, top: int = 5, bins: int = 12):
    fresh(query)
    found = pairs.compare(query, cap, top, bins)
    assert found is not None, "the pair indexes were not used"
    return found


def assert_same(got: selectors.Comparison, expected: selectors.Comparison, *, sample: bool = True) -> None:
    assert (got.paired, got.only_a, got.only_b) == (expected.paired, expected.only_a, expected.only_b)
    assert got.differences.counts == expected.differences.counts
    assert got.differences.nulls == expected.differences.nulls
    assert got.differences.label == expected.differences.label
    assert got.differences.edges == pytest.approx(expected.differences.edges, rel=1e-12)
    assert [(p.data_id_key, p.a, p.b) for p in got.largest] == [(p.data_id_key, p.a, p.b) for p in expected.largest]
    assert [(p.exposure, p.detector, p.repo) for p in got.largest] == [
        (p.exposure, p.detector, p.repo) for p in expected.largest
    ]
    if sample:  # every pair drawn: the same pairs, whatever the order
        assert sorted(repr((p.data_id_key, p.a, p.b)) for p in got.pairs) == sorted(
            repr((p.data_id_key, p.a, p.b)) for p in expected.pairs
        )
    else:  # thinned: as many
        assert len(got.pairs) == len(expected.pairs)


@pytest.mark.parametrize("filters", FILTERS)
def test_the_pair_index_answers_as_the_sql_join_under_every_filter(campaign_a, campaign_b, filters):
    query = MetricQuery([campaign_a, campaign_b], METRIC, **filters)
    got = from_index(query)
    assert_same(got, selectors.comparison_sql(query, selectors.PAIR_CAP, 5, 12))
    if not filters:
        assert (got.paired, got.only_a, got.only_b, got.differences.nulls) == (71, 1, 0, 1)
        assert got.largest[0].diff == pytest.approx(1.05)
        assert (got.largest[0].exposure, got.largest[0].detector) == (E(20251122, 3), 4)
    if filters.get("band") == "no-such-band":
        assert got.paired == 0 and got.largest == [] and got.pairs == []


def test_the_scatter_is_thinned_evenly_to_the_cap(campaign_a, campaign_b):
    query = MetricQuery([campaign_a, campaign_b], METRIC)
    got = from_index(query, cap=10)
    assert_same(got, selectors.comparison_sql(query, 10, 5, 12), sample=False)
    assert len(got.pairs) == 71 // 8  # every 8th of the 71 pairs
    assert len({p.data_id_key for p in got.pairs}) == len(got.pairs)


def test_a_data_id_measured_twice_pairs_every_value_with_every_value(campaign_a, campaign_b, mirror):
    """Two runs of one campaign may measure the same data ID (a rerun group): the join pairs each with each."""
    again = {(E(20251121, 2), 3): 0.9, (E(20251121, 2), 5): None}
    for campaign, run in ((campaign_b, "psf-b/rerun"), (campaign_a, "psf-a/rerun")):
        for (exposure, detector), value in again.items():
            MetricValue.objects.create(
                metric=METRIC, value=value, unit="arcsec", instrument="DemoCam", exposure=exposure,
                detector=detector, day_obs=20251121, band=mirror[exposure].band, campaign=campaign, run=run,
                source_key=run, data_id_key=f"instrument=DemoCam,exposure={exposure},detector={detector}",
                step=campaign.steps.get(name="step1"),
            )  # fmt: skip
    query = MetricQuery([campaign_a, campaign_b], METRIC)
    got = from_index(query, top=80)
    assert_same(got, selectors.comparison_sql(query, selectors.PAIR_CAP, 80, 12))
    assert got.paired == 71 + 2 * 3  # two data IDs with two values on each side: 4 pairs each instead of 1
    twice = [p for p in got.pairs if p.data_id_key.endswith(f"exposure={E(20251121, 2)},detector=3")]
    assert sorted((p.a, p.b) for p in twice) == sorted([(0.723, 0.773), (0.723, 0.9), (0.9, 0.773), (0.9, 0.9)])


def test_ties_at_the_cut_are_ordered_by_data_id(make_campaign, mirror, monkeypatch):
    """Exact ties (B = A + 0.25 in binary fractions): the largest changes are the first data IDs in order."""
    values = {(e, d): 0.5 + d / 8 for e in mirror for d in range(9)}
    a, b = make_campaign(name="tie-a"), make_campaign(name="tie-b")
    factories.metric_values(a, METRIC, values, exposures=mirror)
    factories.metric_values(b, METRIC, {k: v + 0.25 for k, v in values.items()}, exposures=mirror)
    query = MetricQuery([a, b], METRIC)
    got = from_index(query, top=4)
    assert_same(got, selectors.comparison_sql(query, selectors.PAIR_CAP, 4, 12))
    keys = sorted(MetricValue.objects.filter(campaign=a).values_list("data_id_key", flat=True))
    assert [p.data_id_key for p in got.largest] == keys[:4]
    assert got.differences.counts.count(72) == 1  # every difference in one bin
    # Beyond TIE_LIMIT ties the cut is taken in hash order: still the top 4, all of the largest change.
    monkeypatch.setattr(pairs, "TIE_LIMIT", 5)
    many = from_index(query, top=4)
    assert len(many.largest) == 4 and {p.diff for p in many.largest} == {0.25}
    assert [p.data_id_key for p in many.largest] == sorted(p.data_id_key for p in many.largest)


def test_a_hash_collision_never_puts_a_wrong_data_id_on_the_page(campaign_a, campaign_b):
    """Give B's value of one data ID the hash of the data ID only A measured: the two are paired by hash,
    counted, but not shown (their keys differ)."""
    only_in_a = f"instrument=DemoCam,exposure={E(20251122, 4)},detector=8"
    victim = MetricValue.objects.get(campaign=campaign_b, exposure=E(20251121, 1), detector=2)
    query = MetricQuery([campaign_a, campaign_b], METRIC)
    fresh(query)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT hashtextextended(%s, 0)", [only_in_a])
        (collided,) = cursor.fetchone()
    index = MetricPairIndex.objects.get(campaign=campaign_b, metric=METRIC)
    columns = {name: np.frombuffer(bytes(getattr(index, name)), dtype=dtype) for name, dtype in pairs._COLUMNS.items()}
    keys = columns["keys"].copy()
    keys[columns["ids"] == victim.pk] = collided
    order = np.lexsort((columns["ids"], keys))
    for name, column in columns.items():
        setattr(index, name, (keys if name == "keys" else column)[order].tobytes())
    index.save()

    got = pairs.compare(query, selectors.PAIR_CAP, 100, 12)
    assert got is not None
    # The collision is counted as a pair (and A's value of the victim as unpaired) ...
    assert (got.paired, got.only_a, got.only_b) == (71, 1, 0)
    shown = [p.data_id_key for p in got.pairs] + [p.data_id_key for p in got.largest]
    assert only_in_a not in shown and victim.data_id_key not in shown  # ... but never shown
    assert len(got.pairs) == 70


def test_indexes_follow_new_values_and_are_built_when_missing(campaign_a, campaign_b):
    query = MetricQuery([campaign_a, campaign_b], METRIC)
    MetricPairIndex.objects.all().delete()  # e.g. rollups refreshed before pair indexes existed
    first = selectors.metric_comparison(query=query, use_cache=False)
    assert MetricPairIndex.objects.filter(metric=METRIC).count() == 2
    assert first.paired == 71
    # Values stored without the ingest (COPY, bulk_create): the next read refreshes the rollups and the index.
    MetricValue.objects.create(
        metric=METRIC, value=2.0, unit="arcsec", instrument="DemoCam", exposure=E(20251122, 4), detector=8,
        day_obs=20251122, campaign=campaign_b, run="psf-b/late", source_key="psf-b/late",
        data_id_key=f"instrument=DemoCam,exposure={E(20251122, 4)},detector=8",
    )  # fmt: skip
    after = selectors.metric_comparison(query=query, use_cache=False)
    assert (after.paired, after.only_a) == (72, 0)
    assert MetricPairIndex.objects.get(campaign=campaign_b, metric=METRIC).rows == 72


def test_an_index_of_another_hash_function_is_rebuilt_not_trusted(campaign_a, campaign_b):
    query = MetricQuery([campaign_a, campaign_b], METRIC)
    fresh(query)
    MetricPairIndex.objects.filter(campaign=campaign_b).update(probe=12345)  # as after a PostgreSQL upgrade
    assert pairs.compare(query, selectors.PAIR_CAP, 5, 12) is None
    got = selectors.metric_comparison(query=query, use_cache=False)
    assert got.paired == 71
    assert pairs.compare(query, selectors.PAIR_CAP, 5, 12) is not None  # rebuilt by the read


def test_a_campaign_too_large_for_an_index_is_compared_in_sql(monkeypatch, campaign_a, campaign_b):
    monkeypatch.setattr(pairs, "MAX_ROWS", 50)
    MetricPairIndex.objects.all().delete()
    query = MetricQuery([campaign_a, campaign_b], METRIC)
    got = selectors.metric_comparison(query=query, top=5, bins=12, use_cache=False)
    assert not MetricPairIndex.objects.exists()
    assert pairs.compare(query, selectors.PAIR_CAP, 5, 12) is None
    assert_same(got, selectors.comparison_sql(query, selectors.PAIR_CAP, 5, 12))
    assert got.paired == 71


def test_the_rebuild_drops_the_index_of_a_campaign_without_values(campaign_a, campaign_b):
    MetricValue.objects.filter(campaign=campaign_b).delete()
    rollups.rebuild()
    assert list(MetricPairIndex.objects.values_list("campaign_id", "rows")) == [(campaign_a.pk, 72)]
