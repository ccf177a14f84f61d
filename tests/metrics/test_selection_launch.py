"""Issue 6's loop back closed: a threshold selection from the metrics explorer is frozen as a DataID set, and
that set — as the next campaign's include or exclude set — launches a campaign whose groups (real BPS + Parsl)
process only the selected data IDs."""

from __future__ import annotations

import pytest
from astropy.table import Table

from campaigns.choices import GroupStatus
from campaigns.execution import campaign_launch
from metrics import services
from metrics.selectors import MetricQuery
from tests.execution.conftest import SCIENCE, run_ready_groups
from tests.metrics import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

E = factories.exposure_id


@pytest.fixture
def measured(make_campaign, butler_repo):
    """An earlier campaign with psf_fwhm = 0.7 + 0.1 * (seq - 150) + 0.001 * detector for the science exposures."""
    campaign = make_campaign(name="psf-earlier")
    values = {
        (E(night, seq), d): 0.7 + 0.1 * (seq - 150) + 0.001 * d
        for night in (20251121, 20251122)
        for seq in range(150, 154)
        for d in range(9)
    }
    factories.metric_values(campaign, "demo.psf_fwhm", values, step=campaign.steps.get(name="step1"))
    return campaign


def _processed(butler_root, group) -> set[tuple[int, int]]:
    from lsst.daf.butler import Butler

    butler = Butler.from_config(butler_root)
    try:
        refs = butler.query_datasets("calexpSummary", collections=group.run_collection, explain=False)
        return {(r.dataId["exposure"], r.dataId["detector"]) for r in refs}
    finally:
        butler.close()


def test_a_threshold_selection_is_the_next_campaigns_include_set(
    measured, make_exec_campaign, owner, butler_root, django_capture_on_commit_callbacks
):
    sharp = services.metric_selection_create(
        user=owner,
        query=MetricQuery([measured], "demo.psf_fwhm", night_to=20251121),
        campaign=measured,
        operator="lt",
        threshold=0.75,
        name="sharp-psf",
        reason="sharp enough for coadds",
        whole_exposures=True,
    )
    assert sharp.count == 1  # exposure 150 of the first night
    # The next campaign's data query names seq 150 and 151 of both nights; the set keeps one exposure.
    campaign = make_exec_campaign(
        data_query=SCIENCE, include_sets=["sharp-psf"], steps=[{"name": "step1", "pipeline_subset": "step1"}]
    )
    assert campaign.include_sets == [{"dataid_set": "sharp-psf", "version": 1}]
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get().groups.get()  # a night split: no group for the night the set leaves out
    assert group.name == "night-20251121"
    assert list(Table.read(group.data_id_table, format="ascii.ecsv")["exposure"]) == [E(20251121, 150)]
    with django_capture_on_commit_callbacks(execute=True):
        run_ready_groups(campaign)
    group.refresh_from_db()
    assert group.status == GroupStatus.SUCCEEDED and group.quanta_total == 2
    assert _processed(butler_root, group) == {(E(20251121, 150), 0), (E(20251121, 150), 1)}


def test_a_threshold_selection_is_the_next_campaigns_exclude_set(
    measured, make_exec_campaign, owner, butler_root, django_capture_on_commit_callbacks
):
    # Detector-level: seq 151 has 0.8 + 0.001 * d, so "> 0.8005" picks detectors 1..8 of both nights' 151.
    wide = services.metric_selection_create(
        user=owner,
        query=MetricQuery([measured], "demo.psf_fwhm", night_to=20251121),
        campaign=measured,
        operator="gt",
        threshold=0.8005,
        name="wide-psf",
        reason="PSF too wide",
    )
    assert set(wide.dimensions) == {"instrument", "exposure", "detector"}
    campaign = make_exec_campaign(
        data_query=f"{SCIENCE} AND exposure.day_obs = 20251121",
        exclude_sets=["wide-psf"],
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
    )
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get().groups.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_ready_groups(campaign)
    group.refresh_from_db()
    assert group.status == GroupStatus.SUCCEEDED and group.quanta_total == 3
    # 151 detector 1 is excluded (wide PSF); 151 detector 0 (0.800) is kept.
    assert _processed(butler_root, group) == {(E(20251121, 150), 0), (E(20251121, 150), 1), (E(20251121, 151), 0)}
