"""The tag-table grid in a real browser (headless Debian Chromium via Playwright): a staff member edits a
cell, adds a row, sees a refused value on its cell, reloads and finds the change and its history."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tagging.models import TagRow, TagRowChange
from tagging.services import tagtables as svc
from tests.tagging.tagtable_helpers import exposure_id, key_of, make_table

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def cell(page, key: str, column: str):
    return page.locator(f'#tag-grid tr[data-key="{key}"] td[data-column="{column}"]')


def test_staff_edits_the_grid_and_sees_errors_and_history(page, login, owner, butler_repo, screenshot):
    table = make_table(owner, name="psf-wonky")
    svc.tag_rows_upsert(
        user=owner, table_id=table.pk, rows=[{"exposure": exposure_id(150), "seeing": 1.0, "quality": "good"}]
    )
    login(page, "alice")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_text("Data", exact=True).click()  # the drop-down of data pages
    nav.get_by_role("link", name="Tag tables").click()
    page.get_by_role("link", name="psf-wonky").click()
    expect(page.locator("#tagtable-name")).to_contain_text("psf-wonky")
    page.fill("#edit-reason", "PSF elongated by wind shake")

    # Edit a cell: Enter saves through the API.
    seeing = cell(page, key_of(150), "seeing")
    seeing.click()
    seeing.locator("input").fill("1.75")
    seeing.locator("input").press("Enter")
    expect(seeing).to_have_text("1.75")
    expect(page.locator("#grid-status")).to_contain_text("Saved seeing")

    # An enum cell is a select.
    quality = cell(page, key_of(150), "quality")
    quality.click()
    quality.locator("select").select_option("wonky")
    expect(quality).to_have_text("wonky")

    # A bad value stays on the cell with the server's message; nothing is stored.
    n_sat = cell(page, key_of(150), "n_sat")
    n_sat.click()
    n_sat.locator("input").fill("lots")
    n_sat.locator("input").press("Enter")
    expect(n_sat.locator(".cell-msg")).to_have_text("'lots' is not an integer")
    expect(n_sat).to_have_class(re.compile(r"\bcell-error\b"))
    screenshot(page, "tagtable-grid-error")

    # Add a row by obs_id; a missing required value is shown first, then fixed.
    page.fill("#new-exposure", "DC_O_20251121_000151")
    page.fill("#new-col-comment", "satellite trail")
    page.click("#add-row")
    expect(page.locator("#new-row-error")).to_contain_text("required column 'seeing' has no value")
    expect(page.locator("#new-col-seeing")).to_have_class("input-error")
    page.fill("#new-col-seeing", "2.1")
    page.click("#add-row")
    expect(cell(page, key_of(151), "comment")).to_have_text("satellite trail")

    # After a reload the changes are there, and the row's history tells who, what and why.
    page.reload()
    expect(cell(page, key_of(150), "seeing")).to_have_text("1.75")
    expect(cell(page, key_of(150), "quality")).to_have_text("wonky")
    expect(cell(page, key_of(150), "n_sat")).to_have_text("")
    expect(page.locator("#row-count")).to_have_text("2")
    screenshot(page, "tagtable-grid")
    page.locator(f'#tag-grid tr[data-key="{key_of(150)}"] a.row-history').click()
    expect(page.locator("#history-key")).to_have_text(key_of(150))
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("wonky")
    expect(rows.nth(1)).to_contain_text("1.75")
    expect(rows.nth(1)).to_contain_text("PSF elongated by wind shake")
    expect(rows.nth(1)).to_contain_text("alice")
    screenshot(page, "tagtable-history")

    assert TagRow.objects.get(table=table, key=key_of(150)).values == {"c1": 1.75, "c5": "wonky"}
    assert TagRowChange.objects.filter(table=table).count() == 4


def test_staff_deletes_a_row_with_a_reason(page, login, owner, butler_repo):
    table = make_table(owner, name="to-prune")
    svc.tag_rows_upsert(user=owner, table_id=table.pk, rows=[{"exposure": exposure_id(152), "seeing": 1.0}])
    login(page, "alice")
    page.goto(f"/data/tag-tables/{table.pk}/")
    page.once("dialog", lambda dialog: dialog.accept("re-taken the next night"))
    page.locator(f'#tag-grid tr[data-key="{key_of(152)}"] .delete-row').click()
    expect(page.locator(f'#tag-grid tr[data-key="{key_of(152)}"]')).to_have_count(0)
    change = TagRowChange.objects.get(table=table, action="delete")
    assert change.reason == "re-taken the next night" and change.old == {"c1": 1.0}


def test_science_user_sees_the_grid_read_only(new_page, login, owner, science_user, butler_repo):
    table = make_table(owner, name="public-notes", visibility="public")
    svc.tag_rows_upsert(user=owner, table_id=table.pk, rows=[{"exposure": exposure_id(150), "seeing": 1.0}])
    page = new_page()
    login(page, "carol")
    page.goto(f"/data/tag-tables/{table.pk}/")
    seeing = cell(page, key_of(150), "seeing")
    expect(seeing).to_have_text("1.0")
    seeing.click()
    expect(seeing.locator("input")).to_have_count(0)
    expect(page.locator("#add-row")).to_have_count(0)


def test_staff_creates_a_table_with_the_form_and_edits_its_schema(page, login, owner, butler_repo, screenshot):
    login(page, "alice")
    page.goto("/data/tag-tables/")
    page.click("#new-tagtable")
    page.select_option("#id_repo", "demo")
    page.fill("#id_name", "dome-light")
    page.fill("#id_key_dimensions", "exposure")
    page.select_option("#id_polarity", "reject")
    page.fill("#id_purpose", "junk: dome light on")
    page.fill("#id_columns-0-name", "lamp")
    page.select_option("#id_columns-0-type", "enum")
    page.fill("#id_columns-0-enum_values", "on, off, unknown")
    page.fill("#id_columns-1-name", "flux")
    page.select_option("#id_columns-1-type", "float")
    page.fill("#id_columns-1-unit", "ADU")
    page.click("#add-column-row")
    expect(page.locator("#column-rows tbody tr")).to_have_count(5)
    screenshot(page, "tagtable-create")
    page.click("#create-tagtable")
    expect(page.locator("#tagtable-name")).to_contain_text("dome-light")
    expect(page.locator("#column-summary tbody tr")).to_have_count(2)

    page.click("#schema-link")
    page.fill('input[aria-label="Name of flux"]', "background")
    page.locator("#column-c2 button", has_text="Save").click()
    expect(page.locator(".msg-success")).to_contain_text("Column background was saved.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#column-c1 button", has_text="Retire").click()
    expect(page.locator("#column-c1")).to_contain_text("retired")
    expect(page.locator("#event-table tbody tr").first).to_contain_text("Retired")
    screenshot(page, "tagtable-schema")
    page.goto("/data/tag-tables/")
    expect(page.locator("#tagtable-table")).to_contain_text("dome-light")
    screenshot(page, "tagtable-list")
