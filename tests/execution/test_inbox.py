"""What needs a person: the inbox page, GET /api/v1/inbox/, the campaign page's banner and the list's column, all
from one selector (campaigns.selectors_attention). No BPS runs here (tests/execution/attention.py)."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth import get_user_model

from campaigns.choices import Attention, CampaignStatus
from campaigns.execution import (
    campaign_pause,
    campaign_resume,
    error_rule_create,
    group_cancel,
)
from campaigns.models import Campaign
from campaigns.selectors_attention import inbox, needs_action
from core.roles import is_staff_member, set_role
from tests.conftest import PASSWORD
from tests.execution.attention import FAIL_ID, failed, run, waiting_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from campaigns.tasks import group_run

    monkeypatch.setattr(group_run, "delay", lambda group_id: None)


@pytest.fixture
def collaborator(db):
    user = get_user_model().objects.create_user("erin", "erin@example.org", PASSWORD)
    set_role(user, "staff")
    return user


@pytest.fixture
def waiting(make_exec_campaign, owner, collaborator):
    return waiting_campaign(make_exec_campaign, owner, collaborators=["erin"])


def _kinds(found) -> list[tuple[str, str, bool]]:
    return sorted((i.kind, i.step if not i.group else f"{i.step}/{i.group}", i.can_act) for i in found.items)


@pytest.mark.parametrize(
    ("who", "can_act"), [("owner", True), ("collaborator", True), ("other_staff", False), ("admin", True)]
)
def test_the_inbox_lists_the_step_awaiting_approval_and_the_failed_group(request, waiting, who, can_act, client, api):
    user = request.getfixturevalue(who)
    found = inbox(user=user)
    assert _kinds(found) == [
        ("approval", "step2", can_act),
        ("failed_group", "extra/night-20251121", can_act),
    ]
    assert found.total == 2 and found.more == 0
    approval, group = found.items  # blocking a whole step first
    assert approval.title == "Step step2 awaits approval" and approval.since is not None
    assert "requires approval" in approval.reason
    assert group.group_id == waiting.failed_group.pk and group.attempts == 1
    assert group.reason.startswith("step1 {") and "InjectedFailure" in group.reason

    client.force_login(user)
    page = client.get("/inbox/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Step step2 awaits approval" in text and "Group extra/night-20251121 failed" in text
    assert ('id="mine-table"' in text) is can_act and ('id="others-table"' in text) is (not can_act)
    assert f'href="/campaigns/{waiting.campaign.pk}/groups/{waiting.failed_group.pk}/"' in text

    body = api(user).get("/api/v1/inbox/").json()
    assert body["total"] == 2
    assert [(i["kind"], i["can_act"]) for i in body["items"]] == [("approval", can_act), ("failed_group", can_act)]
    assert body["items"][0]["actions"] == {"approve": f"/api/v1/steps/{waiting.step2.pk}/approve/"}
    assert set(body["items"][1]["actions"]) == {"retry", "rescue", "accept", "cancel"}
    (summary,) = body["campaigns"]
    assert summary["headline"] == "awaiting approval" and summary["counts"] == {"approval": 1, "failed_group": 1}
    mine = api(user).get("/api/v1/inbox/?mine=true").json()
    assert len(mine["items"]) == (2 if can_act else 0)


def test_a_science_user_has_nothing_actionable_and_cannot_act(waiting, science_user, client, api):
    assert inbox(user=science_user).items == []
    client.force_login(science_user)
    page = client.get("/inbox/").content.decode()
    assert "Nothing here for you" in page and "Step step2 awaits approval" not in page
    body = api(science_user).get("/api/v1/inbox/").json()
    assert body == {"total": 0, "more": 0, "items": [], "campaigns": []}
    denied = api(science_user).post(f"/api/v1/steps/{waiting.step2.pk}/approve/", {"comment": "looks fine"})
    assert denied.status_code == 403
    denied = api(science_user).post(f"/api/v1/groups/{waiting.failed_group.pk}/accept/", {"comment": "fine"})
    assert denied.status_code == 403
    # The campaign page still says what the campaign waits for, without anything to press.
    detail = client.get(f"/campaigns/{waiting.campaign.pk}/").content.decode()
    assert "Needs action: awaiting approval" in detail and "staff members act on it" in detail
    assert "Approve</button>" not in detail


def test_nothing_of_a_private_campaign_reaches_people_outside_it(
    make_exec_campaign, owner, collaborator, other_staff, science_user, outsider, client, api
):
    waiting_campaign(make_exec_campaign, owner, visibility="private", collaborators=["erin"])
    for user in (other_staff, science_user, outsider):
        assert inbox(user=user).items == [] and needs_action(user=user).campaigns == {}
        assert api(user).get("/api/v1/inbox/").json()["items"] == []
        client.force_login(user)
        assert b"awaits approval" not in client.get("/inbox/").content
        assert b"awaiting approval" not in client.get("/campaigns/").content
    assert len(inbox(user=collaborator).mine()) == 2


def test_the_campaign_page_says_awaiting_approval_instead_of_running_and_shows_the_banner(waiting, owner, client):
    client.force_login(owner)
    text = client.get(f"/campaigns/{waiting.campaign.pk}/").content.decode()
    state = text.split('id="campaign-state">', 1)[1].split("</span></span>", 1)[0]
    assert "awaiting approval" in state and "running" not in state
    assert "Campaign status: running" in text
    banner = text.split('id="attention"', 1)[1].split("</section>", 1)[0]
    assert "Needs action: awaiting approval" in banner and "you may act on this campaign" in banner
    assert "Step step2 awaits approval" in banner and "Group extra/night-20251121 failed" in banner
    assert f"/campaigns/{waiting.campaign.pk}/errors/" in banner
    # The self-refreshing panel carries the banner too.
    panel = client.get(f"/campaigns/{waiting.campaign.pk}/run-panel/").content.decode()
    assert 'id="attention"' in panel


def test_the_campaign_list_has_a_needs_action_column(waiting, owner, client, make_campaign, api):
    make_campaign(name="quiet-draft")
    client.force_login(owner)
    text = client.get("/campaigns/").content.decode()
    rows = {row.split('class="campaign-link"', 1)[1].split("</a>", 1)[0]: row for row in text.split("<tr>")[2:]}
    waiting_row = next(row for name, row in rows.items() if waiting.campaign.name in name)
    assert "1 step awaiting approval" in waiting_row and "1 failed group" in waiting_row
    quiet_row = next(row for name, row in rows.items() if "quiet-draft" in name)
    assert "awaiting approval" not in quiet_row and "failed group" not in quiet_row
    listed = {c["name"]: c["needs_action"] for c in api(owner).get("/api/v1/campaigns/").json()["results"]}
    assert listed == {waiting.campaign.name: {"approval": 1, "failed_group": 1}, "quiet-draft": {}}


def test_the_selector_costs_three_queries_for_one_or_many_campaigns(
    make_exec_campaign, owner, django_assert_num_queries
):
    waiting_campaign(make_exec_campaign, owner)
    is_staff_member(owner)  # the role is read once per request, before any selector
    with django_assert_num_queries(3):
        one = needs_action(user=owner)
    waiting_campaign(make_exec_campaign, owner)
    waiting_campaign(make_exec_campaign, owner)
    with django_assert_num_queries(3):
        three = needs_action(user=owner)
    assert one.total == 2 and three.total == 6 and len(three.items) == 6
    with django_assert_num_queries(3):
        limited = needs_action(user=owner, limit=2)
    assert limited.total == 6 and len(limited.items) == 2 and limited.more == 4


def test_a_campaign_that_is_cancelled_or_archived_needs_nothing(waiting, owner):
    from campaigns import services

    group_cancel(user=owner, group_id=waiting.failed_group.pk, comment="not needed")
    assert [i.kind for i in inbox(user=owner).items] == ["approval"]
    services.campaign_set_status(user=owner, campaign_id=waiting.campaign.pk, status="cancelled", comment="stop")
    assert inbox(user=owner).items == []


def test_an_error_rule_can_pause_the_campaign_and_the_inbox_says_who_paused_it(make_exec_campaign, owner, client, api):
    from campaigns.execution import campaign_launch

    rule = error_rule_create(user=owner, message_regex=r"calibration .* missing", action="pause")
    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1"}])
    campaign_launch(user=owner, campaign_id=campaign.pk)
    first, second = campaign.steps.get().groups.order_by("position")
    run(first, failed(message="the flat calibration for detector 1 is missing", exc="KeyError"))
    campaign.refresh_from_db()
    first.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED and first.status == "failed"
    found = inbox(user=owner)
    assert [i.kind for i in found.items] == [Attention.PAUSED, Attention.FAILED_GROUP]
    paused = found.items[0]
    assert f"error rule #{rule.pk}" in paused.reason and "step1/night-20251121" in paused.reason
    assert found.campaigns[campaign.pk].headline == "paused by the executor"
    body = api(owner).get("/api/v1/inbox/?kind=paused").json()
    assert [i["actions"] for i in body["items"]] == [{"resume": f"/api/v1/campaigns/{campaign.pk}/resume/"}]
    client.force_login(owner)
    text = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Needs action: paused by the executor" in text and f"error rule #{rule.pk}" in text

    # Resumed by a person, then paused by a person: that pause is a decision, not something waiting.
    campaign_resume(user=owner, campaign_id=campaign.pk, comment="calibrations are back")
    campaign_pause(user=owner, campaign_id=campaign.pk, comment="lunch")
    assert [i.kind for i in inbox(user=owner).items] == [Attention.FAILED_GROUP]
    assert second.pk  # the sibling was never submitted while paused (nothing ran it here)


def test_acting_through_the_endpoints_the_inbox_names_clears_the_items(waiting, owner, api):
    client = api(owner)
    items = client.get("/api/v1/inbox/").json()["items"]
    approve = items[0]["actions"]["approve"]
    assert client.post(approve, {"comment": "step1 looks fine"}).status_code == 200
    accept = items[1]["actions"]["accept"]
    assert client.post(accept, {"comment": "one detector is fine to lose"}).status_code == 202
    assert client.get("/api/v1/inbox/").json()["items"] == []


def test_the_inbox_api_refuses_what_it_does_not_know_and_is_in_the_schema(waiting, owner, api, client):
    assert api(owner).get("/api/v1/inbox/?kind=nonsense").status_code == 400
    bad = api(owner).get("/api/v1/inbox/?colour=red")
    assert bad.status_code == 400 and "colour" in bad.json()
    assert api(owner).get("/api/v1/inbox/?kind=failed_group").json()["items"][0]["group"] == "night-20251121"
    assert api(None).get("/api/v1/inbox/").status_code in (401, 403)
    client.force_login(owner)
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/inbox/"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"mine", "kind"}
    item = schema["components"]["schemas"]["InboxItem"]["properties"]
    assert {"kind", "title", "reason", "since", "can_act", "actions", "campaign"} <= set(item)


def test_a_failure_needing_review_is_its_own_kind(make_exec_campaign, owner):
    from campaigns.execution import campaign_launch

    error_rule_create(user=owner, message_regex="Injected failure", action="review")
    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1"}])
    campaign_launch(user=owner, campaign_id=campaign.pk)
    run(campaign.steps.get().groups.order_by("position").first(), failed(data_id=FAIL_ID))
    (item,) = inbox(user=owner).items
    assert item.kind == Attention.REVIEW and "asks for a review" in item.title
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING
