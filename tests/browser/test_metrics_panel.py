"""The campaign page's metrics panel and the step form's gate fields, in headless Chromium."""

# ruff: noqa: F811 - pytest fixtures imported from other test modules are named as test arguments

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from metrics.services import step_check_run
from tests.metrics.conftest import GOOD, make_exec_campaign, submit_root  # noqa: F401
from tests.metrics.test_api import with_values  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_gate_results_and_the_reobserve_download_on_the_campaign_page(
    page, login, owner, with_values, screenshot, tmp_path
):
    from metrics.models import StepCheck

    campaign = with_values(
        steps=[
            {"name": "step1", "pipeline_subset": "step1", "quality_gates": ["psf_fwhm median < 1.1"]},
            {
                "name": "step2",
                "pipeline_subset": "step2",
                "depends_on": ["step1"],
                "metric_input": {"step": "step1", "metric": "psf_fwhm", "op": "<", "threshold": 1.2},
            },
        ]
    )
    step1 = campaign.steps.get(name="step1")
    StepCheck.objects.create(step=step1)  # as when step1 succeeds
    step_check_run(step_id=step1.pk)
    login(page, "alice")
    page.goto(f"/campaigns/{campaign.pk}/")
    panel = page.locator("#metrics")
    expect(panel).to_contain_text("psf_fwhm median < 1.1")
    expect(panel.locator(".gate-result .badge-failed")).to_have_text("fail")
    expect(panel).to_contain_text("dependent steps wait for approval")
    expect(panel).to_contain_text("measured 1.15")
    expect(panel).to_contain_text("visits whose step1 psf_fwhm median < 1.2")
    expect(panel).to_contain_text("1 selected, 1 left out")
    panel.scroll_into_view_if_needed()
    screenshot(page, "campaign-metrics-panel")
    page.select_option("#ro-metric", "psfMetrics.psf_fwhm")
    page.fill("#ro-threshold", "1.2")
    with page.expect_download() as download_info:
        page.click("#reobserve-csv")
    path = tmp_path / "reobserve.csv"
    download_info.value.save_as(path)
    text = path.read_text()
    assert text.startswith("target,band,ra,dec,day_obs,obs_id,exposure") and str(GOOD) in text


def test_staff_add_a_quality_gate_in_the_step_form(page, login, owner, make_campaign, screenshot):
    campaign = make_campaign()
    login(page, "alice")
    page.goto(f"/campaigns/{campaign.pk}/edit/")
    page.fill("#id_steps-0-quality_gates", "psf_fwhm median <")
    page.click("#submit-campaign")
    expect(page.locator("#step-row-0")).to_contain_text("is not 'METRIC [STATISTIC] OP THRESHOLD'")
    screenshot(page, "campaign-form-gate-error")
    page.fill("#id_steps-0-quality_gates", "psf_fwhm median < 1.1; sky_background p90 < 3000")
    page.fill("#id_steps-1-metric_input", "step1: psf_fwhm < 1.2 per visit")
    page.click("#submit-campaign")
    expect(page.locator(".messages, .message").first).to_contain_text("was saved")
    step1, step2 = campaign.steps.order_by("position")
    assert [g["metric"] for g in step1.quality_gates] == ["psf_fwhm", "sky_background"]
    assert step2.metric_input == {
        "step": "step1", "metric": "psf_fwhm", "statistic": "median", "op": "<", "threshold": 1.2, "per": "visit",
    }  # fmt: skip
    page.goto(f"/campaigns/{campaign.pk}/edit/")
    expect(page.locator("#id_steps-0-quality_gates")).to_have_value("psf_fwhm median < 1.1; sky_background p90 < 3000")
