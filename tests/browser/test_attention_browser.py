"""What needs a person, in a real browser: the inbox, the campaign page's banner and list column, the group page
of a real failed quantum (BPS + Parsl) with its log, and the error summary; as staff and as a science user."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from campaigns.execution import campaign_launch
from campaigns.services import step_groups_define
from core.roles import set_role
from tests.conftest import PASSWORD
from tests.execution import conftest as execution_fixtures
from tests.execution.attention import waiting_campaign
from tests.execution.conftest import CLUSTER_BY_EXPOSURE, run_ready_groups

make_exec_campaign = execution_fixtures.make_exec_campaign  # the executor tests' campaign factory (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_broker(monkeypatch, settings, tmp_path):
    from campaigns.tasks import group_run

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    monkeypatch.setattr(group_run, "delay", lambda group_id: None)


def _rgb(color: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", color)[:3])


def test_the_inbox_banner_and_list_show_what_waits_and_staff_act_from_them(
    page,
    new_page,
    login,
    owner,
    other_staff,
    science_user,
    make_exec_campaign,
    screenshot,
):
    erin = get_user_model().objects.create_user("erin", "erin@example.org", PASSWORD)
    set_role(erin, "staff")
    waiting = waiting_campaign(
        make_exec_campaign, owner, step2_split={"by": "visit", "max_size": 50}, collaborators=["erin"]
    )
    name = waiting.campaign.name

    login(page, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    mine = page.locator("#mine-table")
    expect(mine.locator("tr.inbox-item")).to_have_count(2)
    expect(mine.locator("tr.inbox-approval")).to_contain_text("Step step2 awaits approval")
    expect(mine.locator("tr.inbox-failed_group")).to_contain_text("Group extra/night-20251121 failed")
    expect(mine.locator("tr.inbox-failed_group")).to_contain_text("InjectedFailure")
    screenshot(page, "inbox-staff")

    page.goto("/campaigns/")
    row = page.locator("#campaign-table tbody tr", has_text=name)
    expect(row.locator(".col-attention")).to_contain_text("1 step awaiting approval")
    expect(row.locator(".col-attention")).to_contain_text("1 failed group")
    screenshot(page, "campaign-list-needs-action")

    row.locator(".col-attention a").click()
    expect(page.locator("#campaign-state")).to_have_text("awaiting approval")
    banner = page.locator("#attention")
    expect(banner).to_contain_text("Needs action: awaiting approval")
    expect(banner).to_contain_text("you may act on this campaign")
    screenshot(page, "campaign-banner-staff")
    # A normal transition in the history is not drawn in red.
    page.locator("#history-tab-definition").click()
    old = page.locator("#history table.diff td.old").first
    expect(old).to_be_visible()
    r, g, b = _rgb(old.evaluate("el => getComputedStyle(el).color"))
    assert abs(r - g) < 30 and abs(g - b) < 30, (r, g, b)

    page.goto(f"/campaigns/{waiting.campaign.pk}/")
    page.fill("input[aria-label='Approval comment for step2']", "step1 QA looks fine")
    page.locator(".approve-form button").click()
    expect(page.locator(".msg-success")).to_contain_text("Step step2 approved")
    expect(page.locator("#campaign-state")).to_have_text("failed groups")
    page.goto("/inbox/")
    expect(page.locator("#mine-table tr.inbox-item")).to_have_count(1)

    other = new_page()
    login(other, "bob")
    other.goto("/inbox/")
    expect(other.locator("#inbox-mine")).to_contain_text("Nothing waits for you.")
    expect(other.locator("#others-table tr.inbox-item")).to_have_count(1)
    expect(other.locator("#others-table")).to_contain_text("alice and the collaborators")
    screenshot(other, "inbox-other-staff")

    science = new_page()
    login(science, "carol")
    expect(science.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox")).to_have_count(0)
    science.goto("/inbox/")
    expect(science.locator("#inbox-empty")).to_contain_text("Nothing here for you")
    screenshot(science, "inbox-science")
    science.goto(f"/campaigns/{waiting.campaign.pk}/")
    expect(science.locator("#attention")).to_contain_text("staff members act on it")
    expect(science.locator("#attention")).not_to_contain_text("Open the group to retry")
    expect(science.locator(".approve-form")).to_have_count(0)
    screenshot(science, "campaign-banner-science")


def test_a_real_failed_quantum_on_the_group_page_its_log_and_the_error_summary(
    page,
    new_page,
    login,
    owner,
    science_user,
    make_exec_campaign,
    screenshot,
):
    campaign = make_exec_campaign(
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
        bps={
            "compute_site": "local_threads",
            "wms": "parsl",
            "extra": {
                **CLUSTER_BY_EXPOSURE,
                "config_overrides": {"step1": {"failDataIds": ["exposure:2025112100151,detector:1"]}},
            },
        },
    )
    step = campaign.steps.get()
    one_night = [{"name": "n21", "data_query": "exposure.day_obs = 20251121"}]
    step_groups_define(user=owner, campaign_id=campaign.pk, step_name=step.name, groups=one_night)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    assert run_ready_groups(campaign) == ["failed"]
    group = step.groups.get()

    login(page, "alice")
    page.goto(f"/campaigns/{campaign.pk}/groups/{group.pk}/")
    expect(page.locator("#group-title")).to_contain_text("failed")
    expect(page.locator("#submit-dir")).to_contain_text("attempt1-")
    expect(page.locator("#report-1")).to_contain_text("step1")
    expect(page.locator("#attempt-log-1")).to_contain_text("Preparing")
    expect(page.locator("#rescue-means")).to_contain_text("the 3 quanta that succeeded are reused")
    expect(page.locator("#accept-means")).to_contain_text("3 of 4 quanta")
    quanta = page.locator("#failed-quanta")
    expect(quanta).to_contain_text("2025112100151")
    expect(quanta).to_contain_text("InjectedFailure")
    screenshot(page, "group-page-failed-quantum")

    quanta.locator("a.quantum-log-link").click()
    expect(page.locator("#log-title")).to_contain_text("Log of step1")
    expect(page.locator("#log-records tr.log-error")).to_contain_text("Exception InjectedFailure")
    screenshot(page, "quantum-log")

    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator("#campaign-state")).to_have_text("failed groups")
    page.locator("#error-summary-link").click()
    expect(page.locator("#errors-title")).to_have_text("Error summary")
    pattern = page.locator("#pattern-table li.pattern-item").first
    expect(pattern).to_contain_text("Injected failure in step# for data ID")
    expect(pattern).to_contain_text("detector 1, exposure 2025112100151")
    screenshot(page, "error-summary")
    pattern.locator("a.make-rule").click()
    expect(page.locator("#prefilled-from")).to_contain_text(f"error summary of {campaign.name}")
    expect(page.locator("#id_task_label")).to_have_value("step1")
    regex = page.locator("#id_message_regex").input_value()
    assert regex.startswith("Injected\\ failure\\ in\\ step\\d+") or regex.startswith("Injected failure in step\\d+")
    screenshot(page, "error-rule-prefilled")
    page.get_by_role("button", name="Add the rule").click()
    expect(page.locator(".msg-success")).to_contain_text("Rule added")
    expect(page.locator("#rule-table")).to_contain_text("Stop for a person to review")

    science = new_page()
    login(science, "carol")
    science.goto(f"/campaigns/{campaign.pk}/groups/{group.pk}/")
    expect(science.locator("#failed-quanta")).to_contain_text("InjectedFailure")
    expect(science.locator("#rescue-group")).to_have_count(0)
    expect(science.locator("#group-waits")).to_contain_text("its owner, collaborators")
    screenshot(science, "group-page-science")
    science.goto(f"/campaigns/{campaign.pk}/errors/")
    expect(science.locator("a.make-rule")).to_have_count(0)
    screenshot(science, "error-summary-science")
