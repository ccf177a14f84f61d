"""What a staff member found walking the pages, fixed and checked in headless Chromium: the campaign dashboard's
"running" line (groups running at each moment), the explorer (colours by band, detector labels, a Dec axis within
the sky, a sensible first metric), YAML export after a form edit (no CRLF), the clone form's output collection,
and adding a tag-table row that exists."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from campaigns.models import Campaign
from metrics.charts import BAND_COLOURS
from tests.browser.test_metrics_dashboards import wait_for_plots
from tests.metrics import factories
from tests.metrics.conftest import build_campaign_a

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def plot_data(page, plot_id: str):
    return page.evaluate("id => document.getElementById(id).data.map(t => ({name: t.name, x: t.x, y: t.y, "
                         "marker: t.marker, text: t.text}))", plot_id)  # fmt: skip


def test_the_dashboards_running_line_is_the_number_running_at_each_moment(page, login, owner, campaign, screenshot):
    factories.execution_rows(campaign, user=owner)  # four groups that ran one after the other
    login(page, "alice")
    page.goto(reverse("metrics:overview", args=[campaign.pk]))
    wait_for_plots(page, 5)
    traces = {t["name"]: t for t in plot_data(page, "plot-progress")}
    running = traces["running"]["y"]
    assert running == [1, 0, 1, 0, 1, 0, 1] and max(running) == 1  # not 1, 2, 3, 4
    assert traces["done (succeeded or accepted)"]["y"] == [1, 2, 2]
    expect(page.locator("#plot-progress .legendtext").first).to_have_text("running")
    screenshot(page, "campaign-dashboard-progress")


def test_the_explorer_colours_by_band_labels_detectors_bounds_dec_and_opens_on_the_main_metric(
    page, login, owner, make_campaign, demo_repo, screenshot
):
    mirror = {e.exposure_id: e for e in factories.mirror_rows(demo_repo)}
    campaign = build_campaign_a(make_campaign, mirror)  # demo.psf_fwhm: 8 exposures x 9 detectors
    factories.metric_values(campaign, "a.rarely_measured", {(factories.exposure_id(20251121, 1), 0): 1.0})
    login(page, "alice")
    page.goto(reverse("metrics:explorer") + f"?campaign={campaign.pk}")
    wait_for_plots(page, 4)
    # Not the alphabetically first metric: the one with the most values, and the page says so.
    expect(page.locator("#explorer-metric")).to_have_text("demo.psf_fwhm")
    expect(page.locator("#metric-reason")).to_contain_text(
        "the metric with the most values in this campaign (71)"
    )  # one is NaN

    time = plot_data(page, "plot-time")
    assert [t["name"] for t in time] == ["g", "r"]
    assert [t["marker"]["color"] for t in time] == [BAND_COLOURS["g"], BAND_COLOURS["r"]]
    expect(page.locator("#plot-time .legendtext")).to_have_text(["g", "r"])

    # Every detector is labelled on the focal plane.
    labels = page.locator(f"#plot-focal-{campaign.pk} text").all_text_contents()
    for name in factories.DETECTOR_NAMES:
        assert name in labels, labels

    # Dec stays within the sky, even zoomed out as far as Plotly goes.
    dec = page.evaluate("() => document.getElementById('plot-sky')._fullLayout.yaxis.range")
    assert -90 <= dec[0] < dec[1] <= 90 and dec[1] - dec[0] < 5  # the data's range: Dec -30 .. -29
    page.evaluate("() => Plotly.relayout('plot-sky', {'yaxis.range': [-400, 400], 'xaxis.range': [900, -500]})")
    dec = page.evaluate("() => document.getElementById('plot-sky')._fullLayout.yaxis.range")
    ra = page.evaluate("() => document.getElementById('plot-sky')._fullLayout.xaxis.range")
    assert dec == [-90, 90] and sorted(ra) == [0, 360], (dec, ra)
    screenshot(page, "metrics-explorer-by-band")

    # Choose the other metric: the next visit opens on it, saying why.
    page.select_option("#f-metric", "a.rarely_measured")
    page.click("#explorer-show")
    expect(page.locator("#explorer-metric")).to_have_text("a.rarely_measured")
    page.goto(reverse("metrics:explorer") + f"?campaign={campaign.pk}")
    expect(page.locator("#explorer-metric")).to_have_text("a.rarely_measured")
    expect(page.locator("#metric-reason")).to_contain_text("the metric you looked at last")


def test_a_description_edited_in_the_form_exports_without_crlf(page, login, owner, campaign):
    login(page, "alice")
    page.goto(f"/campaigns/{campaign.pk}/edit/")
    page.fill("#id_description", "# Plan\n\n- step1 by night\n- step2 by visit")
    page.click("#submit-campaign")
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    campaign.refresh_from_db()
    assert campaign.description == "# Plan\n\n- step1 by night\n- step2 by visit"  # the browser sent CRLF
    exported = page.request.get(f"/api/v1/campaigns/{campaign.pk}/export/").text()
    assert "\r" not in exported
    assert "description: |-\n  # Plan\n\n  - step1 by night\n  - step2 by visit\n" in exported


def test_the_clone_form_shows_the_copys_own_output_collection(page, login, owner, make_campaign, screenshot):
    source = make_campaign(output_collection="u/alice/w48-minidrp")
    login(page, "alice")
    page.goto(f"/campaigns/{source.pk}/clone/")
    collection = page.locator("#id_output_collection")
    expect(collection).to_have_value("u/alice/w48-minidrp-copy")
    page.fill("#id_name", "w49-minidrp")
    expect(collection).to_have_value("u/alice/w49-minidrp")  # follows the name
    screenshot(page, "campaign-clone-form")
    # The source's own collection is refused on its field.
    collection.fill("u/alice/w48-minidrp")
    page.get_by_role("button", name="Create the copy").click()
    expect(page.locator("form.stack")).to_contain_text("is the output collection of another campaign")
    # Edited by hand, it no longer follows the name.
    collection.fill("DemoCam/runs/w49")
    page.fill("#id_name", "w49-minidrp-b")
    expect(collection).to_have_value("DemoCam/runs/w49")
    page.get_by_role("button", name="Create the copy").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+/$"))
    assert Campaign.objects.get(name="w49-minidrp-b").output_collection == "DemoCam/runs/w49"


def test_adding_a_tag_row_that_exists_shows_its_values_and_updates_only_when_asked(
    page, login, owner, butler_repo, screenshot
):
    from tagging.models import TagRow
    from tagging.services import tagtables as svc
    from tests.tagging.tagtable_helpers import exposure_id, key_of, make_table

    table = make_table(owner, name="psf-wonky")
    svc.tag_rows_upsert(
        user=owner, table_id=table.pk, rows=[{"exposure": exposure_id(150), "seeing": 1.2, "quality": "good"}]
    )
    login(page, "alice")
    page.goto(f"/data/tag-tables/{table.pk}/")
    page.fill("#new-exposure", "DC_O_20251121_000150")  # the same exposure, by its obs_id
    page.fill("#new-col-seeing", "0.8")
    page.click("#add-row")
    error = page.locator("#new-row-error")
    expect(error).to_contain_text(f"{key_of(150)} already has a row: seeing = 1.2, quality = good")
    expect(error).to_contain_text("Nothing was stored.")
    screenshot(page, "tagtable-add-existing-row")
    assert TagRow.objects.get(key=key_of(150)).values["c1"] == 1.2
    page.click("#update-existing-row")
    cell = page.locator(f'#tag-grid tr[data-key="{key_of(150)}"] td[data-column="seeing"]')
    expect(cell).to_have_text("0.8")
    assert TagRow.objects.get(key=key_of(150)).values == {"c1": 0.8, "c5": "good"}
