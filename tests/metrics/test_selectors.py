"""Aggregations of the metrics selectors, on PostgreSQL."""

from __future__ import annotations

import pytest

from metrics import selectors
from metrics.selectors import MetricQuery
from tests.metrics import factories
from tests.metrics.conftest import psf_values

pytestmark = pytest.mark.django_db

E = factories.exposure_id


def test_metric_names_of_campaigns_come_with_their_unit(campaign_a, mirror):
    factories.metric_values(campaign_a, "demo.zeropoint", {(E(20251121, 1), 0): 31.2}, unit="mag")
    assert selectors.campaign_metric_names(campaign_ids=[campaign_a.pk]) == [
        ("demo.psf_fwhm", "arcsec"),
        ("demo.zeropoint", "mag"),
    ]
    assert selectors.campaign_metric_names(campaign_ids=[]) == []


def test_histogram_bins_every_finite_value_in_sql_and_counts_nan_apart(campaign_a, campaign_b):
    series = selectors.metric_histogram(query=MetricQuery([campaign_a, campaign_b], "demo.psf_fwhm"), bins=10)
    a, b = series
    assert (a.label, b.label) == ("psf-a", "psf-b")
    assert sum(a.counts) == 71 and a.nulls == 1  # 8 exposures x 9 detectors, one NaN
    assert sum(b.counts) == 71 and b.nulls == 0  # one data ID not measured by B
    assert a.edges == b.edges and len(a.edges) == 11
    # The common range runs from A's smallest to B's largest (the outlier), in equal bins made of whole fine
    # bins of the rollups' grid (0.01 here: B's range is about 1): the largest value is in the last bin.
    largest = 0.7 + 0.03 + 0.004 + 0.05 + 1.0
    assert a.edges[0] <= 0.71 < a.edges[1] and a.edges[-2] <= largest < a.edges[-1]
    widths = {round(hi - lo, 9) for lo, hi in zip(a.edges, a.edges[1:], strict=False)}
    assert len(widths) == 1 and round(widths.pop() / 0.01, 6).is_integer()
    assert b.counts[-1] == 1


def test_histogram_of_a_single_value_still_has_a_range(campaign_a, make_campaign, mirror):
    solo = make_campaign(name="solo")
    factories.metric_values(solo, "m", {(E(20251121, 1), 0): 2.0})
    (series,) = selectors.metric_histogram(query=MetricQuery([solo], "m"), bins=4)
    assert series.counts == [0, 0, 1, 0] or sum(series.counts) == 1
    assert series.edges[0] < 2.0 < series.edges[-1]


def test_filters_by_band_night_step_detector_and_value(campaign_a):
    q = MetricQuery([campaign_a], "demo.psf_fwhm", band="r", night_from=20251122, night_to=20251122)
    (series,) = selectors.metric_histogram(query=q)
    assert sum(series.counts) == 2 * 9  # seq 1 and 3 of the second night are r
    q = MetricQuery([campaign_a], "demo.psf_fwhm", step="step2")
    assert sum(selectors.metric_histogram(query=q)[0].counts) == 0
    q = MetricQuery([campaign_a], "demo.psf_fwhm", step="step1", detector=4, value_max=0.725)
    assert sum(selectors.metric_histogram(query=q)[0].counts) == 4  # seq 1 and 2 on both nights


def test_per_exposure_means_come_with_time_band_and_pointing_from_the_mirror(campaign_a, mirror):
    points, total = selectors.metric_per_exposure(query=MetricQuery([campaign_a], "demo.psf_fwhm"))
    assert total == 8 and len(points) == 8
    first = points[0]  # in time order
    exposure = mirror[first.exposure]
    assert first.exposure == E(20251121, 1)
    assert (first.begin, first.ra, first.dec, first.band, first.day_obs) == (
        exposure.begin, exposure.ra, exposure.dec, "r", 20251121,
    )  # fmt: skip
    assert first.count == 8  # the NaN of detector 0 is left out of the mean
    assert first.value == pytest.approx(0.71 + sum(0.001 * d for d in range(1, 9)) / 8)
    assert first.repo == "demo"


def test_per_exposure_points_are_thinned_evenly_to_the_cap(campaign_a):
    points, total = selectors.metric_per_exposure(query=MetricQuery([campaign_a], "demo.psf_fwhm"), cap=3)
    assert total == 8
    assert len(points) == 3
    assert [p.begin for p in points] == sorted(p.begin for p in points)


def test_per_detector_means_carry_the_detector_full_names(campaign_a):
    cells = selectors.metric_per_detector(query=MetricQuery([campaign_a], "demo.psf_fwhm"))[campaign_a.pk]
    assert [c.detector for c in cells] == list(range(9))
    assert cells[4].full_name == "R22_S11"
    assert cells[4].count == 8
    assert cells[0].count == 7  # one NaN
    assert cells[4].value == pytest.approx(0.7 + 0.025 + 0.004)


def test_comparison_pairs_the_same_data_ids_and_finds_the_largest_change(campaign_a, campaign_b):
    comparison = selectors.metric_comparison(query=MetricQuery([campaign_a, campaign_b], "demo.psf_fwhm"), top=3)
    assert comparison.paired == 71
    assert (comparison.only_a, comparison.only_b) == (1, 0)
    assert comparison.differences.nulls == 1  # the NaN in A
    assert sum(comparison.differences.counts) == 70
    largest = comparison.largest[0]
    assert (largest.exposure, largest.detector) == (E(20251122, 3), 4)
    assert largest.diff == pytest.approx(1.05)
    assert len(comparison.pairs) == 71
    thinned = selectors.metric_comparison(query=MetricQuery([campaign_a, campaign_b], "demo.psf_fwhm"), cap=10)
    assert len(thinned.pairs) == 71 // 8  # every 8th pair


def test_overview_counts_states_progress_failures_and_run_times(campaign, owner):
    made = factories.execution_rows(campaign, user=owner)
    overview = selectors.campaign_overview(campaign=campaign)
    assert overview.total_groups == 5
    assert {k: v for k, v in overview.states.items() if v} == {
        "succeeded": 2, "failed": 1, "running": 1, "waiting": 1,
    }  # fmt: skip
    # The groups ran one after the other (a change every 5 minutes): one was running at a time, never four.
    series = {s.state: s for s in overview.progress}
    assert series["running"].counts == [1, 0, 1, 0, 1, 0, 1]
    assert series["succeeded"].counts == [1, 2, 2]  # carried on to the last change
    assert series["failed"].counts == [1, 1]
    minutes = [int((t - factories.START).total_seconds() // 60) for t in series["running"].times]
    assert minutes == [0, 5, 10, 15, 20, 25, 30]
    assert overview.failures_by_task == [("isr", 2), ("calibrate", 1)]
    assert overview.failures_by_rule == [("isr /timeout/ → auto-retry", 2), ("no rule matched", 1)]
    assert overview.failed_quanta == 3
    assert sorted(d for _, d in overview.run_times) == [600.0, 1200.0, 1800.0]
    assert made["rule"].pk


def test_exposure_campaigns_list_each_visible_campaign_with_its_metrics(campaign_a, campaign_b, mirror, owner):
    exposure = mirror[E(20251121, 1)]
    found = selectors.exposure_campaigns(user=owner, exposure=exposure)
    assert {e.campaign.name for e in found} == {"psf-a", "psf-b"}
    a = next(e for e in found if e.campaign.name == "psf-a")
    (row,) = a.metrics
    assert row["metric"] == "demo.psf_fwhm" and row["n"] == 9
    assert row["mean"] == pytest.approx(sum(0.71 + 0.001 * d for d in range(1, 9)) / 8)


def test_psf_values_helper_is_deterministic(mirror):
    assert psf_values(mirror)[(E(20251121, 2), 3)] == 0.723
