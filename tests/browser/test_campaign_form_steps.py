"""The new-campaign form in a real browser (headless Debian Chromium): a staff member adds step rows as the
tag-table form adds columns, gives each step its split (the fields of the chosen rule only), and the page
never grows wider than the window. A split the service refuses comes back on its step's field, with its path."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def overflow(page) -> int:
    """How many pixels the page is wider than its window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def card(page, index: int):
    return page.locator(f"#step-row-{index}")


def test_staff_adds_steps_with_their_splits_and_the_form_fits_the_window(page, login, owner, demo_repo, screenshot):
    login(page, "alice")
    page.goto("/campaigns/new/")
    assert overflow(page) <= 0
    expect(page.locator("[data-step-row]")).to_have_count(1)

    page.fill("#id_name", "w50-drp")
    page.select_option("#id_campaign_type", "mini-drp")
    page.fill("#id_reason", "A DRP cut by tract")
    page.select_option("#id_butler_repo", "demo")
    page.fill("#id_pipeline", "demo/pipelines/drp.yaml")
    page.fill("#id_data_query", "exposure.observation_type = 'science'")
    for _ in range(3):
        page.click("#add-step-row")
    expect(page.locator("[data-step-row]")).to_have_count(4)
    expect(card(page, 3).locator("legend")).to_contain_text("Step 4")
    expect(page.locator("#id_steps-TOTAL_FORMS")).to_have_value("4")

    page.fill("#id_steps-0-name", "step1")
    page.fill("#id_steps-0-pipeline_subset", "step1")
    # The night rule takes nothing more: its other fields are out of the way.
    expect(card(page, 0).locator("#id_steps-0-split_max_size")).to_be_hidden()
    expect(card(page, 0).locator("#id_steps-0-split_groups")).to_be_hidden()

    page.fill("#id_steps-1-name", "step2")
    page.fill("#id_steps-1-pipeline_subset", "step2")
    page.fill("#id_steps-1-depends_on", "step1")
    page.check("#id_steps-1-requires_approval")
    page.select_option("#id_steps-1-split_by", "visit")
    expect(page.locator("#id_steps-1-split_max_size")).to_be_visible()
    expect(page.locator("#id_steps-1-split_skymap")).to_be_hidden()
    page.fill("#id_steps-1-split_max_size", "10")

    page.fill("#id_steps-2-name", "step3")
    page.fill("#id_steps-2-pipeline_subset", "step3")
    page.fill("#id_steps-2-depends_on", "step2")
    page.fill("#id_steps-2-where", "band IN ('g', 'r')")
    page.select_option("#id_steps-2-split_by", "tract")
    expect(page.locator("#id_steps-2-split_skymap")).to_be_visible()
    page.fill("#id_steps-2-split_skymap", "demo_sky_v1")
    page.fill("#id_steps-2-split_max_size", "2")

    page.fill("#id_steps-3-name", "step4")
    page.fill("#id_steps-3-pipeline_subset", "step4")
    page.fill("#id_steps-3-depends_on", "step3")
    page.select_option("#id_steps-3-split_by", "list")
    expect(page.locator("#id_steps-3-split_groups")).to_be_visible()
    expect(page.locator("#id_steps-3-split_max_size")).to_be_hidden()
    page.fill("#id_steps-3-split_groups", "west: tract IN (0, 2, 4, 6)\neast: tract IN (1, 3, 5, 7)")
    assert overflow(page) <= 0, "the form is wider than the window"
    shot = screenshot(page, "campaign-form-steps")
    assert shot.stat().st_size > 0

    # A narrow window too: the step fields wrap instead of pushing the page sideways.
    page.set_viewport_size({"width": 760, "height": 900})
    assert overflow(page) <= 0, "the form is wider than a narrow window"
    screenshot(page, "campaign-form-steps-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("#submit-campaign")
    expect(page.locator(".msg-success")).to_contain_text("Campaign w50-drp was created.")
    campaign = Campaign.objects.get(name="w50-drp")
    steps = {s.name: s for s in campaign.steps.all()}
    assert steps["step1"].split == {"by": "night"}
    assert steps["step2"].split == {"by": "visit", "max_size": 10} and steps["step2"].requires_approval
    assert steps["step3"].split == {"by": "tract", "skymap": "demo_sky_v1", "max_size": 2}
    assert steps["step3"].where == "band IN ('g', 'r')"
    assert steps["step4"].split == {
        "by": "list",
        "groups": [
            {"name": "west", "where": "tract IN (0, 2, 4, 6)"},
            {"name": "east", "where": "tract IN (1, 3, 5, 7)"},
        ],
    }
    expect(page.locator("#steps")).to_contain_text("by tract of demo_sky_v1, at most 2 patches per group")

    # Editing shows each step's split in its fields, and the service's refusal comes back on the field at fault.
    page.click("#edit-campaign")
    expect(page.locator("[data-step-row]")).to_have_count(5)  # the four steps and one empty row
    expect(page.locator("#id_steps-2-split_by")).to_have_value("tract")
    expect(page.locator("#id_steps-2-split_skymap")).to_have_value("demo_sky_v1")
    expect(page.locator("#id_steps-3-split_groups")).to_have_value(
        "west: tract IN (0, 2, 4, 6)\neast: tract IN (1, 3, 5, 7)"
    )
    page.fill("#id_steps-3-split_groups", "west: tract IN (0, 2, 4, 6)\neast:")
    page.click("#submit-campaign")
    groups_field = card(page, 3).locator(".field", has=page.locator("#id_steps-3-split_groups"))
    expect(groups_field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(groups_field.locator(".errorlist")).to_contain_text(
        "steps[3].split.groups[1].where: A non-empty Butler 'where' expression is required."
    )
    expect(card(page, 3)).to_have_class(re.compile(r"\bhas-error\b"))
    assert overflow(page) <= 0
    screenshot(page, "campaign-form-split-error")
    campaign.refresh_from_db()
    assert campaign.version == 1  # nothing saved
