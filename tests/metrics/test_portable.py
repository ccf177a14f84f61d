"""The SQLite (portable) twins of the dashboard reads give the PostgreSQL answers on the same data.

``make run`` serves the app on SQLite, where ``metrics.selectors`` dispatch to ``metrics.portable``;
here both run on PostgreSQL and are compared, so the normal suite checks both paths."""

from __future__ import annotations

import pytest
from django.db import connection

from core.sqlite_functions import percentile, width_bucket
from metrics import portable, selectors
from metrics.selectors import MetricQuery
from metrics.services import _aggregate
from tests.metrics import factories

pytestmark = pytest.mark.django_db

E = factories.exposure_id


def _explorer_pg(query, bins=selectors.HISTOGRAM_BINS, cap=selectors.POINT_CAP):
    return selectors.metric_explorer_data(query=query, bins=bins, cap=cap, use_cache=False)


def test_names_and_stamps_match(campaign_a, campaign_b):
    factories.metric_values(campaign_b, "demo.zeropoint", {(E(20251121, 1), 0): 31.2}, unit="mag")
    ids = [campaign_a.pk, campaign_b.pk]
    assert portable.campaign_metric_names(campaign_ids=ids) == selectors.campaign_metric_names(campaign_ids=ids)
    assert portable.campaign_metric_names(campaign_ids=ids) == [("demo.psf_fwhm", "arcsec"), ("demo.zeropoint", "mag")]
    # PostgreSQL also stamps when the rollups were refreshed; SQLite has no rollups: the newest ids agree.
    assert portable.data_stamp(ids) == [stamp[0] for stamp in selectors.data_stamp(ids)]
    assert all(isinstance(n, int) for n in portable.data_stamp(ids))


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"band": "r", "night_from": 20251122, "night_to": 20251122},
        {"step": "step1", "detector": 4, "value_max": 0.725},
        {"value_min": 0.73},
    ],
)
@pytest.mark.parametrize("cap", [selectors.POINT_CAP, 3])
def test_explorer_data_matches(campaign_a, campaign_b, filters, cap):
    query = MetricQuery([campaign_a, campaign_b], "demo.psf_fwhm", **filters)
    expected = _explorer_pg(query, bins=10, cap=cap)
    got = portable.explorer_data(query, 10, cap)
    assert got.exposure_total == expected.exposure_total
    assert [(p.label, p.exposure, p.count, p.day_obs, p.begin, p.band) for p in got.points] == [
        (p.label, p.exposure, p.count, p.day_obs, p.begin, p.band) for p in expected.points
    ]
    assert [p.value for p in got.points] == pytest.approx([p.value for p in expected.points])
    assert got.detectors.keys() == expected.detectors.keys()
    for cid, cells in expected.detectors.items():
        assert [(c.detector, c.count, c.full_name) for c in got.detectors[cid]] == [
            (c.detector, c.count, c.full_name) for c in cells
        ]
        assert [c.value for c in got.detectors[cid]] == pytest.approx([c.value for c in cells])
    for mine, theirs in zip(got.histogram, expected.histogram, strict=True):
        assert (mine.label, mine.counts, mine.nulls) == (theirs.label, theirs.counts, theirs.nulls)
        assert mine.edges == pytest.approx(theirs.edges)
    if not filters and cap > 3:
        assert sum(got.histogram[0].counts) == 71 and got.histogram[0].nulls == 1  # real figures, not empty


def test_comparison_matches(campaign_a, campaign_b):
    query = MetricQuery([campaign_a, campaign_b], "demo.psf_fwhm")
    expected = selectors.metric_comparison(query=query, top=3, bins=12, use_cache=False)
    got = portable.comparison(query, selectors.PAIR_CAP, 3, 12)
    assert (got.paired, got.only_a, got.only_b) == (expected.paired, expected.only_a, expected.only_b)
    assert got.paired == 71  # real figures: 72 data IDs in A, one NaN
    assert got.differences.counts == expected.differences.counts
    assert got.differences.nulls == expected.differences.nulls
    assert got.differences.edges == pytest.approx(expected.differences.edges)
    assert [p.data_id_key for p in got.largest] == [p.data_id_key for p in expected.largest]
    assert sorted(p.data_id_key for p in got.pairs) == sorted(p.data_id_key for p in expected.pairs)
    # Thinned to a cap: as many pairs as PostgreSQL draws (which ones depends on the join order).
    thinned = selectors.metric_comparison(query=query, cap=10, use_cache=False)
    assert len(portable.comparison(query, 10, 3, 12).pairs) == pytest.approx(len(thinned.pairs), abs=1)


def test_sqlite_functions_match_postgresql():
    """The functions registered on SQLite connections answer as PostgreSQL's built-ins do."""
    values = [3.5, 1.0, 7.25, 2.0, 9.0, 4.75]
    with connection.cursor() as cursor:
        for fraction in (0.0, 0.1, 0.5, 0.9, 1.0):
            cursor.execute(
                "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY v) FROM unnest(%s::float8[]) AS t(v)",
                [fraction, values],
            )
            assert percentile(fraction, values) == pytest.approx(cursor.fetchone()[0])
        for v in (-1.0, 0.0, 0.3, 2.5, 4.99, 5.0, 7.0):
            cursor.execute("SELECT width_bucket(%s::float8, 0.0::float8, 5.0::float8, 7)", [v])
            assert width_bucket(v, 0.0, 5.0, 7) == cursor.fetchone()[0]


def test_statistics_aggregate_is_the_percentile_on_both(campaign_a):
    """Quality gates and re-observation measure medians/percentiles with ``_aggregate``: on SQLite it is the
    registered percentile_cont(fraction, value); here its answer is checked against Python's."""
    from metrics.conditions import statistic
    from metrics.models import MetricValue

    values = MetricValue.objects.filter(campaign=campaign_a, value__isnull=False)
    numbers = list(values.values_list("value", flat=True))
    for name in ("median", "p90", "p10"):
        measured = values.aggregate(m=_aggregate(name))["m"]
        assert measured == pytest.approx(statistic(name, numbers))
