"""Exposure flags and bad data in a real browser: add, edit and delete (with confirmation) on the exposure page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tagging.models import ExposureFlag
from tagging.services.baddata import bad_data_add

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXPOSURE = 2025112100151


def test_staff_flag_an_exposure_edit_it_and_delete_it(page, login, owner, butler_repo, screenshot):
    bad_data_add(
        user=owner,
        repo_label="demo",
        summary="Hot amplifier",
        data_id={"instrument": "DemoCam", "exposure": EXPOSURE, "detector": 4},
    )
    login(page, "alice")
    page.goto(f"/data/repos/demo/exposures/{EXPOSURE}/")
    page.fill("#add-flag textarea[name=message_text]", "Dome light on")
    page.select_option("#add-flag select[name=exposure_flag]", "questionable")
    page.fill("#add-flag input[name=tags]", "dome")
    page.click("#flag-submit")
    expect(page.locator("#flags .flag-item")).to_have_count(1)
    expect(page.locator("#bad-data")).to_contain_text("Hot amplifier")
    screenshot(page, "exposure-page-flags")

    page.click("#flags .flag-item summary")
    page.fill("#flags .flag-edit textarea[name=message_text]", "Dome light on: unusable")
    page.select_option("#flags .flag-edit select[name=exposure_flag]", "junk")
    page.click("#flags .flag-edit button[type=submit]")
    expect(page.locator("#flags .flag-item")).to_contain_text("Dome light on: unusable")
    expect(page.locator("#flags .flag-item .badge")).to_have_text("junk")

    page.click("#flags .flag-item a:has-text('history')")
    expect(page.locator("#history li")).to_have_count(2)
    screenshot(page, "flag-history")
    page.go_back()
    page.click("#flags .flag-item summary")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#flags .flag-item button.danger")
    expect(page.locator("#flags")).to_contain_text("No valid flags")
    assert ExposureFlag.objects.count() == 2 and not ExposureFlag.objects.filter(is_valid=True).exists()
    page.goto("/data/flags/?is_valid=any")
    expect(page.locator("#flag-table tbody tr")).to_have_count(2)
    screenshot(page, "flag-list")
    page.click("#to-bad-data")
    expect(page.locator("#baddata-table tbody tr")).to_have_count(1)
    screenshot(page, "bad-data-list")
    page.click("#baddata-table a.strong")
    screenshot(page, "bad-data-detail")
