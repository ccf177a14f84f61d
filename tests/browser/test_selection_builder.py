"""The selection builder in headless Chromium: add terms, watch the live count change, freeze, land on
the new set page that explains the recipe."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tagging.models import DataIdSetVersion
from tests.tagging.selection_factories import add_flag, add_tag_rows, make_tag_table


def test_staff_builds_counts_and_freezes_a_selection(page, login, owner, butler_repo, screenshot):
    from tagging.models import Exposure

    table = make_tag_table(
        owner=owner,
        repo=butler_repo,
        name="seeing",
        key_dimensions=["instrument", "exposure"],
        columns=[("seeing", "float"), ("dome_open", "bool")],
    )
    science = list(Exposure.objects.filter(observation_type="science").order_by("exposure_id"))
    add_tag_rows(
        table,
        [
            ({"instrument": "DemoCam", "exposure": e.exposure_id}, {"seeing": 0.5 + i / 10, "dome_open": i == 0})
            for i, e in enumerate(science)
        ],
        user=owner,
    )
    add_flag(exposure=science[1], flag="junk")
    login(page, owner.username)
    page.goto("/data/selections/")
    expect(page.locator("h1")).to_have_text("Selection builder")
    count = page.locator("#sel-count")
    expect(count).to_have_text("20")  # no term yet: every exposure of the repo

    page.click("[data-add=where]")
    page.locator(".sel-term[data-kind=where] [data-name=where]").fill("exposure.observation_type = 'science'")
    expect(count).to_have_text("8")

    page.click("[data-add=tag_table]")
    page.locator(".sel-term[data-kind=tag_table] [data-name=condition]").fill("seeing < 1.0 AND NOT dome_open")
    expect(count).to_have_text("4")  # seeing 0.5 .. 1.2; the first has the dome open
    expect(page.locator(".sel-term[data-kind=tag_table] [data-columns]")).to_contain_text("seeing (float)")

    page.click("[data-add=flags]")  # exclude junk by default
    expect(count).to_have_text("3")
    expect(page.locator("#sel-term-counts tbody tr")).to_have_count(3)

    # A typo shows the error inline, naming the term and position, and no count.
    condition = page.locator(".sel-term[data-kind=tag_table] [data-name=condition]")
    condition.fill("seeing < 1.0 AND NOT dome_opn")
    expect(page.locator("#sel-errors")).to_contain_text("terms[1].condition: No column named 'dome_opn'")
    expect(count).to_have_text("—")
    condition.fill("seeing < 1.0 AND NOT dome_open")
    expect(count).to_have_text("3")
    expect(page.locator("#sel-errors")).to_be_hidden()
    expect(page.locator("#sel-preview tbody tr")).to_have_count(3)
    screenshot(page, "selection-builder")

    # Removing a term updates the count too.
    page.locator(".sel-term[data-kind=flags] button").click()
    expect(count).to_have_text("4")
    page.click("[data-add=flags]")
    expect(count).to_have_text("3")

    page.fill("#sel-name", "good-seeing")
    page.fill("#sel-reason", "PSF study inputs")
    page.click("#sel-freeze-button")
    page.wait_for_url(re.compile(r"/data/sets/\d+/\?version=1$"))
    expect(page.locator("#set-name")).to_contain_text("good-seeing")
    expect(page.locator("#set-selection")).to_contain_text("Include rows of tag table seeing where seeing < 1.0")
    expect(page.locator("#set-selection")).to_contain_text("Exclude exposures with a valid junk flag")
    version = DataIdSetVersion.objects.get(dataid_set__name="good-seeing")
    assert version.count == 3 and version.source_kind == "selection"

    page.click("#selection-rerun")
    expect(page.locator("#rerun-diff h2")).to_have_text("Unchanged")
    screenshot(page, "selection-rerun")


def test_science_user_counts_but_has_no_freeze(page, login, science_user, butler_repo):
    login(page, science_user.username)
    page.goto("/data/selections/")
    expect(page.locator("#sel-count")).to_have_text("20")
    page.click("[data-add=where]")
    page.locator(".sel-term[data-kind=where] [data-name=where]").fill("band = 'r'")
    expect(page.locator("#sel-count")).to_have_text("14")
    expect(page.locator("#sel-freeze-button")).to_have_count(0)


def test_a_metric_term_selects_by_qa_and_a_frozen_explorer_selection_opens_in_the_builder(
    page, login, owner, make_campaign, butler_repo, screenshot
):
    """The metric term in the builder: values of a campaign (suggested names), median over detectors, then
    a threshold selection from the explorer opened again in the builder from its set page."""
    from metrics.models import MetricValue
    from tagging.models import Exposure
    from tests.metrics import factories

    campaign = make_campaign(name="psf-qa")
    science = list(Exposure.objects.filter(observation_type="science").order_by("exposure_id"))
    factories.metric_values(
        campaign,
        "psfMetrics.psf_fwhm",
        {(e.exposure_id, d): 0.6 + 0.1 * i + 0.001 * d for i, e in enumerate(science) for d in range(9)},
    )
    assert MetricValue.objects.filter(campaign=campaign).count() == 8 * 9
    login(page, owner.username)
    page.goto("/data/selections/")
    count = page.locator("#sel-count")
    expect(count).to_have_text("20")
    page.click("[data-add=metric]")
    term = page.locator(".sel-term[data-kind=metric]")
    expect(term.locator("[data-name=mode]")).to_have_value("exclude")
    expect(term.locator("[data-name=source]")).to_have_value("campaign:psf-qa")
    expect(term.locator("[data-name=metric]")).to_have_value("psfMetrics.psf_fwhm")
    term.locator("[data-name=op]").select_option(">")
    term.locator("[data-name=threshold]").fill("0.95")
    # Medians 0.604, 0.704, ... 1.304: the last four science exposures are above 0.95 and go.
    expect(count).to_have_text("16")
    expect(page.locator("#sel-term-counts tbody tr")).to_contain_text(
        "Exclude exposures whose median psfMetrics.psf_fwhm over their detectors in campaign psf-qa is > 0.95"
    )
    term.locator("[data-name=mode]").select_option("include")
    expect(count).to_have_text("4")
    term.locator("[data-name=metric]").fill("psf_fwhm_typo")
    expect(page.locator("#sel-errors")).to_contain_text("campaign psf-qa has no metric 'psf_fwhm_typo'")
    term.locator("[data-name=metric]").fill("psf_fwhm")  # the last part of the stored name is enough
    expect(count).to_have_text("4")
    screenshot(page, "selection-builder-metric")
    page.fill("#sel-name", "wide-psf")
    page.fill("#sel-reason", "PSF above 0.95 arcsec")
    page.click("#sel-freeze-button")
    page.wait_for_url(re.compile(r"/data/sets/\d+/\?version=1$"))
    expect(page.locator("#set-selection")).to_contain_text(
        "Include exposures whose median psfMetrics.psf_fwhm over their detectors in campaign psf-qa is > 0.95"
    )
    version = DataIdSetVersion.objects.get(dataid_set__name="wide-psf")
    assert version.count == 4 and version.source["recipe"]["terms"][0]["metric"] == "psfMetrics.psf_fwhm"
    # The frozen recipe opens in the builder again, metric term and all.
    page.goto(f"/data/selections/?from={version.pk}")
    expect(page.locator(".sel-term[data-kind=metric] [data-name=threshold]")).to_have_value("0.95")
    expect(page.locator("#sel-count")).to_have_text("4")
