"""End-to-end checks of the web pages in a real browser (headless Debian Chromium via Playwright)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VALID_QUERY = "instrument = 'DemoCam' AND band IN ('g', 'r')"


def fill_campaign_form(page, *, name: str, data_query: str) -> None:
    page.fill("#id_name", name)
    page.select_option("#id_campaign_type", "mini-drp")
    page.fill("#id_reason", "Check the new PSF model on one week of data")
    page.select_option("#id_butler_repo", "demo")
    page.fill("#id_pipeline", "demo/pipelines/drp.yaml")
    page.fill("#id_input_collections", "DemoCam/raw/all")
    page.fill("#id_data_query", data_query)
    page.fill("#id_steps-0-name", "step1")
    page.fill("#id_steps-0-pipeline_subset", "step1")
    page.click("#add-step-row")  # one empty step row is offered; more on demand
    page.fill("#id_steps-1-name", "step2")
    page.fill("#id_steps-1-pipeline_subset", "step2")
    page.fill("#id_steps-1-depends_on", "step1")
    page.check("#id_steps-1-requires_approval")


def table_names(page) -> list[str]:
    return page.locator("#campaign-table tbody td.name-cell a.campaign-link").all_inner_texts()


def test_login_page_and_bad_password(page, owner, screenshot):
    page.goto("/campaigns/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "login")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator(".login-error")).to_contain_text("didn't match")
    screenshot(page, "login-error")


def test_staff_creates_campaign_and_finds_it(page, login, owner, demo_repo, make_campaign, screenshot):
    make_campaign(name="other-campaign", reason="Something unrelated")
    login(page, "alice")
    expect(page.locator("#campaign-table")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    screenshot(page, "campaign-form")
    fill_campaign_form(page, name="w49-psf-check", data_query=VALID_QUERY)
    page.click("#submit-campaign")

    expect(page.locator("#campaign-name")).to_contain_text("w49-psf-check")
    expect(page.locator(".msg-success")).to_contain_text("Campaign w49-psf-check was created.")
    steps = page.locator("#steps tbody tr")
    expect(steps).to_have_count(2)
    expect(steps.nth(1)).to_contain_text("step1")
    expect(steps.nth(1)).to_contain_text("needs approval")
    expect(page.locator("pre.query")).to_have_text(VALID_QUERY)
    expect(page.locator("#edit-campaign")).to_be_visible()
    screenshot(page, "campaign-detail-staff")

    campaign = Campaign.objects.get(name="w49-psf-check")
    assert campaign.owner == owner
    assert [s.name for s in campaign.steps.order_by("position")] == ["step1", "step2"]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    expect(page.locator("#campaign-table tbody tr")).to_have_count(2)
    page.fill("#id_q", "w49-psf")
    page.press("#id_q", "Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=w49-psf"))
    expect(page.locator("#campaign-table tbody tr")).to_have_count(1)
    expect(page.locator("#campaign-table")).to_contain_text("w49-psf-check")
    screenshot(page, "campaign-list-search")
    # Blank filter fields (as a form without JavaScript sends them) are no filter, not an error.
    page.goto("/campaigns/?q=w49-psf&campaign_type=&status=&owner=&archived=&created_after=&created_before=")
    expect(page.locator("#campaign-table tbody tr")).to_have_count(1)
    expect(page.locator(".msg-error")).to_have_count(0)
    page.locator("#campaign-table").get_by_role("link", name="w49-psf-check").click()
    expect(page.locator("#campaign-name")).to_contain_text("w49-psf-check")


def test_invalid_data_query_is_shown_on_its_field(page, login, owner, demo_repo, screenshot):
    login(page, "alice")
    page.goto("/campaigns/new/")
    fill_campaign_form(page, name="bad-query", data_query="band = = 'g'")
    page.click("#submit-campaign")

    field = page.locator("#field-data_query")
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(field.locator(".errorlist")).to_contain_text("Not a valid Butler 'where' expression")
    expect(page.locator(".msg-error").first).to_contain_text("was not saved")
    # What was typed is kept, so the user can fix it.
    expect(page.locator("#id_data_query")).to_have_value("band = = 'g'")
    expect(page.locator("#id_steps-1-depends_on")).to_have_value("step1")
    # Only that field is marked.
    expect(page.locator(".field.has-error")).to_have_count(1)
    screenshot(page, "campaign-form-errors")
    assert not Campaign.objects.filter(name="bad-query").exists()
    assert Campaign.objects.count() == 0


def test_science_user_only_looks(new_page, login, campaign, science_user, screenshot):
    Campaign.objects.filter(pk=campaign.pk).update(description="Mini-DRP over **week 48**.")
    page = new_page()
    login(page, "carol")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Campaigns")).to_be_visible()
    expect(nav.get_by_role("link", name="New campaign")).to_have_count(0)
    expect(nav.get_by_role("link", name="Import YAML")).to_have_count(0)
    expect(page.get_by_role("link", name="New campaign")).to_have_count(0)
    expect(page.locator(".role")).to_have_text("science")

    page.locator("#campaign-table").get_by_role("link", name=campaign.name).click()
    expect(page.locator("#campaign-name")).to_contain_text(campaign.name)
    expect(page.locator("#steps")).to_contain_text("step2")
    expect(page.locator("#history")).to_be_visible()
    actions = page.locator("#campaign-actions")
    expect(actions.get_by_role("link", name="Export YAML")).to_be_visible()
    for absent in ("#edit-campaign", "#sharing", "form.statusform", "#attachments form", "#id_status"):
        expect(page.locator(absent)).to_have_count(0)
    expect(actions.get_by_role("link", name="Clone")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"Archive|Attach|Apply|remove", re.I))).to_have_count(0)
    expect(page.locator(f'a[href$="/campaigns/{campaign.pk}/edit/"]')).to_have_count(0)
    screenshot(page, "campaign-detail-science")

    response = page.goto(f"/campaigns/{campaign.pk}/edit/")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="You may not do this")).to_be_visible()
    expect(page.locator("main")).to_contain_text("may view this campaign but not change it")
    expect(page.get_by_role("link", name="Back to the campaigns")).to_be_visible()
    screenshot(page, "error-403")

    response = page.goto("/campaigns/new/")
    assert response is not None and response.status == 403

    response = page.goto("/campaigns/999999/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    screenshot(page, "error-404")
    assert Campaign.objects.count() == 1


def test_list_sorts_filters_and_pages(page, login, owner, make_campaign, screenshot):
    made = {
        "alpha-run": "ready",
        "bravo-run": "running",
        "charlie-run": "draft",
        "delta-run": "running",
    }
    for name, status in made.items():
        campaign = make_campaign(name=name)
        path = {"ready": ["ready"], "running": ["ready", "running"], "draft": []}[status]
        for step in path:
            services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=step)
    for i in range(24):  # 28 campaigns: two pages of 25
        make_campaign(name=f"zz-filler-{i:02d}")

    login(page, "alice")
    page.goto("/campaigns/")
    expect(page.locator("#campaign-table tbody tr")).to_have_count(25)
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    screenshot(page, "campaign-list")

    table = page.locator("#campaign-table")
    table.get_by_role("link", name=re.compile(r"^Name")).click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    assert table_names(page)[:4] == ["alpha-run", "bravo-run", "charlie-run", "delta-run"]
    expect(table.locator("th[aria-sort=ascending]")).to_contain_text("Name")

    table.get_by_role("link", name=re.compile(r"^Name")).click()
    expect(page).to_have_url(re.compile(r"sort=-name"))
    assert table_names(page)[0] == "zz-filler-23"
    expect(table.locator("th[aria-sort=descending]")).to_contain_text("Name")

    page.get_by_role("link", name=re.compile("Next")).click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    assert table_names(page) == ["charlie-run", "bravo-run", "alpha-run"]

    page.select_option("#id_status", "running")
    page.click("#filter-submit")
    expect(page).to_have_url(re.compile(r"status=running"))
    expect(page).not_to_have_url(re.compile(r"page=2"))
    # The sort order is kept while filtering.
    assert table_names(page) == ["delta-run", "bravo-run"]
    expect(page.locator("#id_status")).to_have_value("running")
    expect(page.locator("#campaign-table tbody .badge-running")).to_have_count(2)
    screenshot(page, "campaign-list-filtered")

    page.select_option("#id_status", "succeeded")
    page.click("#filter-submit")
    expect(page.locator("#campaign-table")).to_have_count(0)
    expect(page.locator(".empty")).to_contain_text("No campaign matches these filters")
    page.get_by_role("link", name="Clear the filters").click()
    expect(page.locator("#campaign-table tbody tr")).to_have_count(25)


def test_staff_plans_a_launch_sees_estimated_quanta_and_launches(
    page, login, owner, butler_repo, monkeypatch, screenshot
):
    from campaigns.tasks import group_run
    from tests.conftest import definition

    monkeypatch.setattr(group_run, "delay", lambda group_id: None)  # no worker: only the plan and launch
    science = "exposure.observation_type = 'science' AND detector IN (0, 1) AND exposure.seq_num IN (150, 151)"
    campaign = services.campaign_create(
        user=owner, data=definition(name="plan-me", data_query=science, bps={"compute_site": "local_threads"})
    )
    login(page, "alice")
    page.goto(f"/campaigns/{campaign.pk}/")
    page.click("#plan-launch")
    expect(page.get_by_role("heading", name=re.compile("Launch plan"))).to_be_visible()
    expect(page.locator("#plan-groups")).to_have_text("4")
    expect(page.locator("#plan-quanta")).to_have_text("12")
    expect(page.locator(".plan-table").first).to_contain_text("night-20251121")
    screenshot(page, "launch-plan")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#launch-campaign")
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.locator("#pause-campaign")).to_be_visible()
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
