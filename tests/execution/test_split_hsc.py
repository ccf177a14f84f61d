"""The tract split on records nobody here made: daf_butler's export of real HSC RC2 dimension records
(``hsc-rc2-subset-v0.yaml``: visits 11690 in g and 23868 in r, skymap ``hsc_rings_v1`` with tracts 9615 and
9813, patches 14 and 72), loaded with ``Butler.import_`` into a fresh repo. Nothing DemoCam-shaped: HSC
visits mostly have no exposure records, tracts and patches are real ones, and the default instrument is HSC.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.execution import campaign_launch
from campaigns.execution.plan import campaign_plan
from campaigns.models import Group
from tests.conftest import definition

pytestmark = pytest.mark.django_db

SKYMAP = "hsc_rings_v1"


@pytest.fixture(scope="module")
def hsc_root(tmp_path_factory) -> str:
    import lsst.daf.butler.tests.registry_data as registry_data
    from lsst.daf.butler import Butler

    export = Path(registry_data.__file__).parent / "hsc-rc2-subset-v0.yaml"
    root = tmp_path_factory.mktemp("hsc") / "repo"
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    try:
        with pytest.warns(UserWarning, match="day_obs"):  # an export older than the day_obs dimension
            butler.import_(filename=str(export))
    finally:
        butler.close()
    return str(root)


@pytest.fixture
def hsc_campaign(owner, hsc_root, settings, tmp_path):
    from tagging.services import butler_repo_upsert

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    butler_repo_upsert(label="hsc", config_uri=hsc_root, default_instrument="HSC")

    def make(split: dict, **overrides):
        data = definition(
            name=overrides.pop("name", "hsc-coadds"),
            butler_repo="hsc",
            pipeline="demo/pipelines/drp.yaml",
            input_collections=[],
            data_query="visit IN (11690, 23868)",
            steps=[{"name": "coadd", "pipeline_subset": "step3", "split": split, **overrides}],
        )
        return services.campaign_create(user=owner, data=data)

    return make


def test_the_tracts_of_real_hsc_visits_make_the_groups(hsc_campaign, owner):
    campaign = hsc_campaign({"by": "tract", "skymap": SKYMAP, "max_size": 1})
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    (step,) = plan.steps
    assert [(g.name, g.quanta) for g in step.groups] == [
        ("tract-9615", {"step3": 1}),  # visit 23868 (r) over patch 14
        ("tract-9813", {"step3": 1}),  # visit 11690 (g) over patch 72
    ]
    assert step.groups[0].where == (
        f"((instrument = 'HSC') AND (visit IN (11690, 23868))) AND (skymap = '{SKYMAP}' AND tract = 9615)"
    )
    assert step.split_check["state"] == "partition"
    campaign_launch(user=owner, campaign_id=campaign.pk)
    assert list(Group.objects.filter(step__campaign=campaign).values_list("name", flat=True)) == [
        "tract-9615",
        "tract-9813",
    ]


def test_a_steps_own_where_narrows_the_tracts(hsc_campaign, owner):
    campaign = hsc_campaign({"by": "tract", "skymap": SKYMAP}, where="band = 'g'")
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert [g.name for g in plan.steps[0].groups] == ["tract-9813"]


def test_a_list_of_tracts_that_leaves_one_out_is_refused(hsc_campaign, owner):
    # The registry wants a tract's skymap named: said on the split, as the Butler says it.
    vague = hsc_campaign({"by": "list", "groups": [{"name": "south", "where": "tract = 9615"}]}, name="vague")
    with pytest.raises(ValidationError) as info:
        campaign_plan(user=owner, campaign_id=vague.pk)
    assert info.value.message_dict == {
        "steps[0].split": [
            "Step coadd: The Butler refused the query: Query 'where' expression references a dimension "
            "dependent on skymap without constraining it directly."
        ]
    }
    south = f"skymap = '{SKYMAP}' AND tract = 9615"
    campaign = hsc_campaign({"by": "list", "groups": [{"name": "south", "where": south}]})
    with pytest.raises(ValidationError) as info:
        campaign_plan(user=owner, campaign_id=campaign.pk)
    (message,) = info.value.message_dict["steps[0].split"]
    assert "drops data: 1 of the 2 data IDs of task step3 (band, skymap, tract, patch)" in message
    assert f"{{band: g, skymap: {SKYMAP}, tract: 9813, patch: 72}}" in message


def test_a_skymap_the_repo_lacks_is_named(hsc_campaign, owner):
    campaign = hsc_campaign({"by": "tract", "skymap": "lsst_cells_v1"})
    with pytest.raises(ValidationError) as info:
        campaign_plan(user=owner, campaign_id=campaign.pk)
    assert info.value.message_dict == {
        "steps[0].split.skymap": [f"Step coadd: The repo has no skymap 'lsst_cells_v1' (it has: {SKYMAP})."]
    }
