"""The dashboards' rollups answer exactly as the metric values do, and stay so through ingest (PostgreSQL)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from campaigns.models import Group, Submission
from metrics import rollups, selectors
from metrics.models import MetricExposureRollup, MetricHistogramRollup, MetricRollupState, MetricValue
from metrics.selectors import MetricQuery
from metrics.services import metric_values_ingest
from tests.metrics import factories
from tests.metrics.conftest import flat_record

pytestmark = pytest.mark.django_db

E = factories.exposure_id
METRIC = "psfFwhm"
FILTERS = [
    {},
    {"band": "r"},
    {"night_from": 20251122},
    {"night_from": 20251121, "night_to": 20251121, "band": "g"},
    {"step": "step1"},
    {"step": "step2"},
]


def both_paths(monkeypatch, query: MetricQuery) -> tuple[selectors.ExplorerData, selectors.ExplorerData]:
    """The explorer's data from the rollups and from the values (the path the detector and value filters take)."""
    assert selectors.uses_rollups(query)
    rolled = selectors.metric_explorer_data(query=query, use_cache=False)
    with monkeypatch.context() as m:
        m.setattr(selectors, "uses_rollups", lambda q: False)
        raw = selectors.metric_explorer_data(query=query, use_cache=False)
    return rolled, raw


def assert_same(rolled: selectors.ExplorerData, raw: selectors.ExplorerData) -> None:
    assert rolled.histogram == raw.histogram  # the same bins and counts, exactly
    assert rolled.exposure_total == raw.exposure_total
    assert [(p.label, p.exposure, p.count, p.day_obs, p.band, p.begin) for p in rolled.points] == [
        (p.label, p.exposure, p.count, p.day_obs, p.band, p.begin) for p in raw.points
    ]
    # Means: a sum of sums against one sum, equal up to the rounding of the additions.
    assert [p.value for p in rolled.points] == pytest.approx([p.value for p in raw.points], rel=1e-12)
    assert rolled.detectors.keys() == raw.detectors.keys()
    for cid, cells in rolled.detectors.items():
        assert [(c.detector, c.count, c.full_name) for c in cells] == [
            (c.detector, c.count, c.full_name) for c in raw.detectors[cid]
        ]
        assert [c.value for c in cells] == pytest.approx([c.value for c in raw.detectors[cid]], rel=1e-12)


@pytest.mark.parametrize("filters", FILTERS)
def test_rollups_answer_as_the_values_under_every_filter_they_key(monkeypatch, campaign_a, campaign_b, filters):
    rolled, raw = both_paths(monkeypatch, MetricQuery([campaign_a, campaign_b], "demo.psf_fwhm", **filters))
    assert_same(rolled, raw)
    if not filters:
        assert sum(map(sum, (s.counts for s in rolled.histogram))) == 71 + 71
        assert rolled.exposure_total == 16


def test_detector_and_value_filters_read_the_values(campaign_a):
    for filters in ({"detector": 4}, {"value_min": 0.72}, {"value_max": 0.725}):
        assert not selectors.uses_rollups(MetricQuery([campaign_a], "demo.psf_fwhm", **filters))
    query = MetricQuery([campaign_a], "demo.psf_fwhm", detector=4, value_max=0.725)
    assert sum(selectors.metric_histogram(query=query)[0].counts) == 4


@pytest.fixture
def ingest_campaign(make_campaign, mirror, owner):
    """A campaign with one attempt whose RUN collection the ingest accepts."""
    campaign = make_campaign(name="ingested")
    group = Group.objects.create(step=campaign.steps.get(name="step1"), name="g0", position=0, status="succeeded")
    Submission.objects.create(group=group, number=1, state="succeeded", run_collection="ingested/run1")

    def ingest(values: dict[tuple[int, int], float]):
        records = [flat_record(e, d, psfFwhm=v) | {"run": "ingested/run1"} for (e, d), v in values.items()]
        return metric_values_ingest(user=owner, repo_label="demo", campaign_id=campaign.pk, records=records)

    campaign.ingest = ingest
    return campaign


def first_values(mirror, scale: float = 1.0) -> dict[tuple[int, int], float]:
    return {(e, d): round((0.8 + 0.01 * x.seq_num + 0.002 * d) * scale, 6) for e, x in mirror.items() for d in range(9)}


def test_ingest_keeps_the_rollups_equal_to_the_values_through_changes_and_additions(
    monkeypatch, ingest_campaign, mirror
):
    campaign = ingest_campaign
    report = campaign.ingest(first_values(mirror))
    assert report.created == 72
    state = MetricRollupState.objects.get(campaign=campaign, metric=METRIC)
    assert not state.dirty and state.grid == -4  # the range 0.03 + 0.016: bins of 0.0001
    query = MetricQuery([campaign], METRIC)
    before = selectors.metric_explorer_data(query=query, use_cache=False)
    assert_same(*both_paths(monkeypatch, query))

    # A re-ingest that changes values (the upsert updates rows in place: no new id) refreshes the rollups.
    changed = {key: v * 2 for key, v in list(first_values(mirror).items())[:20]}
    report = campaign.ingest(changed)
    assert (report.updated, report.created) == (20, 0)
    after = selectors.metric_explorer_data(query=query, use_cache=False)
    assert after.histogram != before.histogram
    assert max(p.value for p in after.points) > max(p.value for p in before.points)
    for filters in FILTERS:
        assert_same(*both_paths(monkeypatch, MetricQuery([campaign], METRIC, **filters)))

    # Values added (a new detector on every exposure) are in the rollups too.
    report = campaign.ingest({(e, 8): 5.0 for e in mirror} | {(next(iter(mirror)), 0): 0.1})
    assert report.stored == 9
    rolled, raw = both_paths(monkeypatch, query)
    assert_same(rolled, raw)
    assert raw.histogram[0].edges[0] <= 0.1 and raw.histogram[0].edges[-1] > 5.0
    assert MetricRollupState.objects.get(campaign=campaign, metric=METRIC).grid == -2


def test_values_stored_without_the_ingest_are_rolled_up_on_the_next_read(monkeypatch, campaign_a, mirror):
    query = MetricQuery([campaign_a], "demo.psf_fwhm")
    assert selectors.metric_explorer_data(query=query, use_cache=False).exposure_total == 8
    # COPY or bulk_create (what the benchmark and old tools do) leaves the rollups behind ...
    MetricValue.objects.bulk_create(
        MetricValue(
            metric="demo.psf_fwhm", value=9.0, data_id_key=f"instrument=DemoCam,exposure=1,detector={d}",
            instrument="DemoCam", exposure=1, detector=d, campaign=campaign_a, run="r", source_key="r",
        )
        for d in range(3)
    )  # fmt: skip
    # ... and the read sees the campaign's newest value is newer than them, and recomputes them first.
    rolled, raw = both_paths(monkeypatch, query)
    assert_same(rolled, raw)
    assert rolled.exposure_total == 9
    assert sum(rolled.histogram[0].counts) == 71 + 3


def test_a_dirty_rollup_is_recomputed_before_it_is_read(monkeypatch, campaign_a):
    MetricValue.objects.filter(campaign=campaign_a, detector=4).update(value=3.0)  # in place: the ids stay
    MetricRollupState.objects.filter(campaign=campaign_a).update(dirty=True)  # what an ingest batch does
    rolled, raw = both_paths(monkeypatch, MetricQuery([campaign_a], "demo.psf_fwhm"))
    assert_same(rolled, raw)
    assert rolled.detectors[campaign_a.pk][4].value == 3.0
    assert not MetricRollupState.objects.get(campaign=campaign_a).dirty


def test_the_rebuild_command_recomputes_all_and_drops_rollups_without_values(monkeypatch, campaign_a, campaign_b):
    MetricExposureRollup.objects.all().delete()
    MetricHistogramRollup.objects.all().delete()
    MetricValue.objects.filter(campaign=campaign_b).delete()
    call_command("metrics_rollups_rebuild", stdout=__import__("io").StringIO())
    assert MetricExposureRollup.objects.filter(campaign=campaign_a).count() == 8
    assert not MetricExposureRollup.objects.filter(campaign=campaign_b).exists()
    assert not MetricRollupState.objects.filter(campaign=campaign_b).exists()
    assert_same(*both_paths(monkeypatch, MetricQuery([campaign_a], "demo.psf_fwhm")))
    assert rollups.rebuild([campaign_b.pk]) == 0


def test_a_cached_dashboard_shows_a_value_the_ingest_changed_in_place(ingest_campaign, mirror):
    campaign = ingest_campaign
    campaign.ingest(first_values(mirror))
    query = MetricQuery([campaign], METRIC)
    before = selectors.metric_explorer_data(query=query)  # computed and cached
    assert selectors.metric_explorer_data(query=query) == before  # from the cache
    campaign.ingest({next(iter(first_values(mirror))): 7.0})  # an update in place: no new value id
    after = selectors.metric_explorer_data(query=query)
    assert max(p.value for p in after.points) > max(p.value for p in before.points)
