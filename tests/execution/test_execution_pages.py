"""Pages and API of the executor: who may launch, pause, approve and act on groups, and what they see.

No BPS runs here: ``group_run.delay`` is replaced by a recorder.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from campaigns import services
from campaigns.execution.services import campaign_launch
from campaigns.models import Campaign, ErrorRule, Group
from tests.conftest import definition

pytestmark = pytest.mark.django_db

PIPELINE = str(settings.BASE_DIR / "pipelines" / "drp.yaml")
SCIENCE = "exposure.observation_type = 'science' AND detector IN (0, 1)"


@pytest.fixture(autouse=True)
def sent(monkeypatch, settings, tmp_path) -> list[int]:
    from campaigns.tasks import group_run

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    ids: list[int] = []
    monkeypatch.setattr(group_run, "delay", lambda group_id: ids.append(group_id))
    return ids


@pytest.fixture
def run_campaign(owner, butler_repo):
    def make(**overrides) -> Campaign:
        data = definition(pipeline=PIPELINE, data_query=SCIENCE, bps={"compute_site": "local_threads"})
        data.update(overrides)
        return services.campaign_create(user=owner, data=data)

    return make


def test_the_owner_launches_from_the_page_and_groups_are_planned(client, owner, run_campaign):
    campaign = run_campaign()
    client.force_login(owner)
    response = client.post(f"/campaigns/{campaign.pk}/launch/", {"comment": "go"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "running"
    groups = Group.objects.filter(step__campaign=campaign)
    assert {g.name for g in groups.filter(step__name="step1")} == {"night-20251121", "night-20251122"}
    page = client.get(f"/campaigns/{campaign.pk}/")
    assert b'id="run-panel"' in page.content and b'data-refresh-seconds="5"' in page.content
    panel = client.get(f"/campaigns/{campaign.pk}/run-panel/")
    assert panel.status_code == 200 and panel["X-Refresh-Seconds"] == "5"
    assert b"night-20251121" in panel.content
    assert b'id="pause-campaign"' in panel.content


@pytest.mark.parametrize("who", ["science_user", "other_staff"])
def test_people_without_change_rights_cannot_launch_or_pause(client, request, owner, run_campaign, who):
    campaign = run_campaign()
    client.force_login(request.getfixturevalue(who))
    assert client.post(f"/campaigns/{campaign.pk}/launch/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    campaign_launch(user=owner, campaign_id=campaign.pk)
    assert client.post(f"/campaigns/{campaign.pk}/pause/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "running"


def test_a_science_user_sees_the_run_but_no_controls(client, owner, science_user, run_campaign):
    campaign = run_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = Group.objects.filter(step__campaign=campaign).first()
    client.force_login(science_user)
    panel = client.get(f"/campaigns/{campaign.pk}/run-panel/")
    assert panel.status_code == 200
    assert b"pause-campaign" not in panel.content and b"Approve" not in panel.content
    page = client.get(f"/campaigns/{campaign.pk}/groups/{group.pk}/")
    assert page.status_code == 200
    assert b"cancel-group" not in page.content and b"rescue-group" not in page.content
    assert client.post(f"/campaigns/{campaign.pk}/groups/{group.pk}/cancel/").status_code == 403
    assert Group.objects.get(pk=group.pk).status == group.status


def test_a_private_campaigns_run_is_invisible_to_others(client, owner, other_staff, run_campaign):
    campaign = run_campaign(visibility="private")
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = Group.objects.filter(step__campaign=campaign).first()
    client.force_login(other_staff)
    assert client.get(f"/campaigns/{campaign.pk}/run-panel/").status_code == 404
    assert client.get(f"/campaigns/{campaign.pk}/groups/{group.pk}/").status_code == 404
    assert client.post(f"/campaigns/{campaign.pk}/groups/{group.pk}/cancel/").status_code == 404


def test_a_group_of_another_campaign_is_not_found_under_this_one(client, owner, run_campaign):
    first = run_campaign()
    second = run_campaign(name="another")
    campaign_launch(user=owner, campaign_id=second.pk)
    group = Group.objects.filter(step__campaign=second).first()
    client.force_login(owner)
    assert client.get(f"/campaigns/{first.pk}/groups/{group.pk}/").status_code == 404


def test_the_owner_cancels_a_ready_group_from_its_page(client, owner, run_campaign):
    campaign = run_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = Group.objects.filter(step__campaign=campaign, step__name="step1").first()
    client.force_login(owner)
    response = client.post(f"/campaigns/{campaign.pk}/groups/{group.pk}/cancel/", {"comment": "not needed"})
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.status == "cancelled"
    assert group.transitions.filter(to_status="cancelled", actor=owner).exists()


def test_api_launch_pause_resume_and_run_status(api, owner, science_user, run_campaign, sent):
    campaign = run_campaign()
    assert api(science_user).post(f"/api/v1/campaigns/{campaign.pk}/launch/").status_code == 403
    launched = api(owner).post(f"/api/v1/campaigns/{campaign.pk}/launch/", {"comment": "go"})
    assert launched.status_code == 202 and launched.json()["status"] == "running"
    status = api(science_user).get(f"/api/v1/campaigns/{campaign.pk}/run-status/").json()
    assert [s["name"] for s in status["steps"]] == ["step1", "step2"]
    assert len(status["steps"][0]["groups"]) == 2
    assert api(owner).post(f"/api/v1/campaigns/{campaign.pk}/pause/").json()["status"] == "paused"
    before = len(sent)
    assert api(owner).post(f"/api/v1/campaigns/{campaign.pk}/resume/").json()["status"] == "running"
    assert len(sent) >= before  # resuming queues the ready groups again (on commit)


def test_api_group_actions_check_comments_and_rights(api, owner, science_user, run_campaign):
    campaign = run_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    group = Group.objects.filter(step__campaign=campaign, step__name="step1").first()
    step2 = campaign.steps.get(name="step2")
    assert api(science_user).post(f"/api/v1/groups/{group.pk}/cancel/").status_code == 403
    assert api(owner).post(f"/api/v1/groups/{group.pk}/accept/", {}).status_code == 400  # a comment is required
    assert api(owner).post(f"/api/v1/steps/{step2.pk}/approve/", {}).status_code == 400
    cancelled = api(owner).post(f"/api/v1/groups/{group.pk}/cancel/", {"comment": "no"})
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    detail = api(science_user).get(f"/api/v1/groups/{group.pk}/").json()
    assert detail["transitions"][0]["to_status"] == "cancelled"


def test_error_rules_page_is_read_only_for_science_users(client, owner, science_user):
    client.force_login(science_user)
    assert client.get("/campaigns/error-rules/").status_code == 200
    assert (
        client.post("/campaigns/error-rules/", {"message_regex": "x", "action": "fail", "max_retries": 1}).status_code
        == 403
    )
    assert not ErrorRule.objects.exists()
    client.force_login(owner)
    bad = client.post("/campaigns/error-rules/", {"message_regex": "(", "action": "fail", "max_retries": 1})
    assert bad.status_code == 200 and "regular expression" in str(bad.context["form"].errors)
    assert not ErrorRule.objects.exists()
    good = client.post(
        "/campaigns/error-rules/",
        {"message_regex": "Timeout", "action": "auto-retry", "max_retries": 2, "task_label": "step1"},
    )
    assert good.status_code == 302
    rule = ErrorRule.objects.get()
    assert (rule.task_label, rule.action, rule.max_retries, rule.created_by) == ("step1", "auto-retry", 2, owner)
