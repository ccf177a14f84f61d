"""`cm` and a step's split: set one step's split or where with `--set steps.STEP...`, read it back in
`cm campaign steps|show|export`, see a bad rule or a split that drops data refused in one line, and read the
plan of a launched campaign (frozen groups, their estimates, what ran). Against a live server."""
# ruff: noqa: F811 - pytest fixtures imported from test_cli_execution are named as test arguments

from __future__ import annotations

import pytest
import yaml

from campaigns.execution.services import campaign_launch
from tests.cli.test_cli_execution import (  # noqa: F401 - fixtures
    assert_one_error_line,
    cm,
    fast_password_hasher,
    finish_attempt,
    group_of,
    ok,
    rows_after,
    run_campaign,
    sent,
    submit_root,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_cm_sets_a_steps_split_and_where_and_reads_them_back(cm, run_campaign, owner):
    campaign = run_campaign()
    out = ok(
        cm(
            "campaign", "edit", campaign.name,
            "--set", "steps.step2.split={by: visit, max_size: 1}",
            "--set", "steps.step2.where=band = 'g'",
            "--comment", "one visit per group",
            as_user=owner,
        )
    )  # fmt: skip
    assert "version 1 → 2" in out
    steps = {s.name: s for s in campaign.steps.all()}
    assert steps["step2"].split == {"by": "visit", "max_size": 1} and steps["step2"].where == "band = 'g'"
    assert steps["step1"].split == {"by": "night"}  # the other step is sent back unchanged

    table = ok(cm("campaign", "steps", campaign.name, as_user=owner))
    rows = rows_after(table, ["#", "STEP", "SUBSET", "AFTER", "APPROVAL", "SPLIT", "WHERE", "GROUPS"])
    assert [r[5] for r in rows] == ["by night", "by visit (<= 1)"] and rows[1][6] == "band = 'g'"
    shown = ok(cm("campaign", "show", campaign.name, as_user=owner))
    assert "2. step2  (subset step2; after step1; needs approval; by visit (<= 1); where band = 'g')" in shown
    exported = yaml.safe_load(ok(cm("campaign", "export", campaign.name, as_user=owner)))
    assert exported["steps"][1]["split"] == {"by": "visit", "max_size": 1}

    # A bad part is one line naming its path; nothing changes.
    bad = assert_one_error_line(
        cm("campaign", "edit", campaign.name, "--set", "steps.step2.split.max_size=0", as_user=owner)
    )
    assert "steps[1].split.max_size" in bad and "from 1 to" in bad
    unknown = assert_one_error_line(
        cm("campaign", "edit", campaign.name, "--set", "steps.step9.split=band", as_user=owner)
    )
    assert "no step 'step9' (steps: step1, step2)" in unknown
    campaign.refresh_from_db()
    assert campaign.version == 2


def test_cm_plan_checks_the_split_before_launch(cm, run_campaign, owner):
    campaign = run_campaign()
    out = ok(cm("campaign", "plan", campaign.name, as_user=owner))
    assert (
        "split check (partition): by night: a partition by construction (every task's data IDs have a day_obs)" in out
    )
    assert "pipeline " in out and "/pipelines/drp.yaml#step1" in out
    dropping = run_campaign(steps=[{"name": "step1", "pipeline_subset": "step1", "split": {
        "by": "list", "groups": [{"name": "only-150", "where": "exposure.seq_num = 150"}],
    }}])  # fmt: skip
    error = assert_one_error_line(cm("campaign", "plan", dropping.name, as_user=owner))
    assert "drops data: 4 of the 8 data IDs of task step1" in error


def test_cm_plan_of_a_launched_campaign_shows_the_frozen_groups_and_what_ran(cm, run_campaign, owner, sent):
    campaign = run_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    finish_attempt(group_of(campaign, "step1", "night-20251121"), failed=1)
    out = ok(cm("campaign", "plan", campaign.name, as_user=owner))
    assert "frozen at launch" in out
    rows = rows_after(out, ["GROUP", "STATUS", "ESTIMATE", "PER TASK", "RAN", "WHERE"])
    assert rows[0][:5] == ["night-20251121", "failed", "4", "step1 4", "3 ok, 1 failed of 4"]
    assert rows[1][:5] == ["night-20251122", "ready", "4", "step1 4", "not run"]
