"""The launch plan: groups, selections and estimated quanta before launch (service, page, API)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from campaigns.execution import campaign_launch, step_split_set
from campaigns.execution.plan import campaign_plan
from campaigns.models import Group, HistoryEntry

pytestmark = pytest.mark.django_db


def test_plan_estimates_quanta_per_group_and_writes_nothing(make_exec_campaign, owner):
    campaign = make_exec_campaign()
    history = HistoryEntry.objects.filter(campaign=campaign).count()
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    step1, step2 = plan.steps
    # Split by night: 2 nights x 2 science exposures x 2 detectors; step2 is per visit.
    assert [(g.name, g.quanta) for g in step1.groups] == [
        ("night-20251121", {"step1": 4}),
        ("night-20251122", {"step1": 4}),
    ]
    assert [(g.name, g.total) for g in step2.groups] == [("night-20251121", 2), ("night-20251122", 2)]
    assert step1.groups[0].where.endswith("(day_obs = 20251121)")
    assert step1.tasks == {"step1": ["instrument", "detector", "exposure"]} and step1.inputs_joined == ["raw"]
    assert not step1.upper_bound and step2.upper_bound
    assert (plan.total, plan.group_count, plan.launchable) == (12, 4, True)
    # Nothing was written: no groups, no history, still a draft.
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not Group.objects.filter(step__campaign=campaign).exists()
    assert HistoryEntry.objects.filter(campaign=campaign).count() == history

    # The estimate matches the QuantumGraph that launch then builds (the preflight's count).
    launched = campaign_launch(user=owner, campaign_id=campaign.pk)
    assert list(launched.steps.get(name="step1").groups.order_by("position").values_list("name", "where")) == [
        (g.name, g.where) for g in step1.groups
    ]


def test_plan_follows_the_split_rule_and_the_count_limit(make_exec_campaign, owner):
    campaign = make_exec_campaign()
    first = campaign.steps.order_by("position").first()
    step_split_set(user=owner, step_id=first.pk, split={"by": "exposure", "max_size": 3})
    plan = campaign_plan(user=owner, campaign_id=campaign.pk, max_counted=1)
    groups = plan.steps[0].groups
    assert [g.name for g in groups] == ["exposures-001", "exposures-002"]
    assert groups[0].quanta == {"step1": 6} and groups[1].quanta is None  # 3 exposures x 2 detectors; then limit
    assert plan.counted_groups == 1 and plan.uncounted_groups == 3


def test_plan_errors_name_the_problem(make_exec_campaign, owner):
    broken = make_exec_campaign(pipeline="demo/pipelines/nope.yaml")
    with pytest.raises(ValidationError, match="does not exist"):
        campaign_plan(user=owner, campaign_id=broken.pk)
    bad_query = make_exec_campaign(data_query="exposure.nonsense = 3")
    with pytest.raises(ValidationError) as info:
        campaign_plan(user=owner, campaign_id=bad_query.pk)
    assert "butler_repo" in info.value.message_dict


def test_plan_page_shows_groups_and_quanta_and_launches(client, make_exec_campaign, owner, monkeypatch):
    from campaigns.tasks import group_run

    monkeypatch.setattr(group_run, "delay", lambda group_id: None)
    campaign = make_exec_campaign()
    client.force_login(owner)
    detail = client.get(f"/campaigns/{campaign.pk}/run-panel/")
    assert f'href="/campaigns/{campaign.pk}/plan/"'.encode() in detail.content
    page = client.get(f"/campaigns/{campaign.pk}/plan/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="plan-quanta">12<' in text and 'id="plan-groups">4<' in text
    assert "night-20251121" in text and "(day_obs = 20251121)" in text and 'id="launch-campaign"' in text
    assert client.post(f"/campaigns/{campaign.pk}/launch/", {"comment": "as planned"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "running"
    again = client.get(f"/campaigns/{campaign.pk}/plan/").content.decode()
    assert 'id="launch-campaign"' not in again and "Plan, frozen at launch" in again


def test_plan_page_shows_why_a_campaign_cannot_launch(client, make_exec_campaign, owner):
    broken = make_exec_campaign(pipeline="demo/pipelines/nope.yaml")
    client.force_login(owner)
    page = client.get(f"/campaigns/{broken.pk}/plan/").content.decode()
    assert 'id="plan-error"' in page and "does not exist" in page and 'id="launch-campaign"' not in page


def test_plan_permissions(client, make_exec_campaign, owner, science_user, outsider):
    public = make_exec_campaign()
    private = make_exec_campaign(visibility="private")
    client.force_login(science_user)
    page = client.get(f"/campaigns/{public.pk}/plan/")
    assert page.status_code == 200 and b'id="launch-campaign"' not in page.content  # may look, not launch
    assert client.get(f"/api/v1/campaigns/{public.pk}/plan/").status_code == 200
    assert client.post(f"/campaigns/{public.pk}/launch/").status_code in (403, 404)
    client.force_login(outsider)
    assert client.get(f"/campaigns/{private.pk}/plan/").status_code == 404
    assert client.get(f"/api/v1/campaigns/{private.pk}/plan/").status_code == 404
    client.logout()
    assert client.get(f"/api/v1/campaigns/{public.pk}/plan/").status_code in (401, 403)
    assert client.get(f"/campaigns/{public.pk}/plan/").status_code == 302  # to the login page


def test_plan_api(client, make_exec_campaign, owner):
    campaign = make_exec_campaign()
    client.force_login(owner)
    body = client.get(f"/api/v1/campaigns/{campaign.pk}/plan/").json()
    assert body["quanta_total"] == 12 and body["groups"] == 4 and body["launchable"] is True
    step1 = body["steps"][0]
    assert step1["name"] == "step1" and step1["quanta_total"] == 8
    assert step1["groups"][0] == {
        "name": "night-20251121",
        "status": "",
        "where": step1["groups"][0]["where"],
        "data_id_tables": [],
        "quanta": {"step1": 4},
        "quanta_total": 4,
        "estimate_note": "",
        "ran": None,
    }
    assert step1["pipeline"] == "demo/pipelines/drp.yaml#step1"  # as written, not where the server found it
    assert step1["split"] == {"by": "night"} and step1["split_check"]["state"] == "partition"
    assert body["steps"][1]["depends_on"] == ["step1"] and body["steps"][1]["upper_bound"] is True
    broken = make_exec_campaign(pipeline="demo/pipelines/nope.yaml")
    response = client.get(f"/api/v1/campaigns/{broken.pk}/plan/")
    assert response.status_code == 400
    assert response.json()["pipeline"] == ["The pipeline file demo/pipelines/nope.yaml does not exist."]
