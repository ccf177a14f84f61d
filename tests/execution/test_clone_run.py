"""A clone of a campaign that ran runs too (real BPS + Parsl): it writes to its own output collection, so its
groups do not fail their preflight on the source's RUN collections ("output RUN collection already exists")."""

from __future__ import annotations

import pytest

from campaigns import services
from campaigns.choices import CampaignStatus, GroupStatus
from campaigns.execution import campaign_launch
from tests.execution.conftest import SCIENCE, run_ready_groups

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_a_clone_of_a_campaign_that_ran_runs_in_its_own_collections(make_exec_campaign, owner, other_staff):
    source = make_exec_campaign(
        data_query=f"{SCIENCE} AND exposure.day_obs = 20251121 AND exposure.seq_num = 150",
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
    )
    source = campaign_launch(user=owner, campaign_id=source.pk)
    run_ready_groups(source)
    source.refresh_from_db()
    assert source.status == CampaignStatus.SUCCEEDED and source.output_collection == f"u/alice/{source.name}"

    copy = services.campaign_clone(user=other_staff, campaign_id=source.pk, name=f"{source.name}-again")
    assert copy.output_collection == f"u/bob/{source.name}-again"
    copy = campaign_launch(user=other_staff, campaign_id=copy.pk)
    run_ready_groups(copy)
    group = copy.steps.get().groups.get()
    assert group.status == GroupStatus.SUCCEEDED, group.error
    assert group.run_collection.startswith(f"u/bob/{source.name}-again/step1/")
    copy.refresh_from_db()
    assert copy.status == CampaignStatus.SUCCEEDED
