"""The metric dashboards in headless Chromium: the explorer and campaign A against B load, their Plotly
figures draw (SVG and WebGL canvas), and clicking a point opens the exposure page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.metrics import factories
from tests.metrics.conftest import build_campaign_a, build_campaign_b

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

E = factories.exposure_id


@pytest.fixture
def pair(make_campaign, demo_repo):
    mirror = {e.exposure_id: e for e in factories.mirror_rows(demo_repo)}
    return build_campaign_a(make_campaign, mirror), build_campaign_b(make_campaign, mirror)


def wait_for_plots(page, count: int) -> None:
    """Every figure of the page drawn (metrics.js sets data-plots-drawn when Plotly's promises resolve)."""
    expect(page.locator("body")).to_have_attribute("data-plots-drawn", str(count), timeout=20_000)


def point_position(page, plot_id: str, trace: int = 0, index: int = 0) -> tuple[float, float, str]:
    """Page coordinates of one point of a plot (from Plotly's own axis mapping) and its customdata."""
    return tuple(
        page.evaluate(
            """([id, t, i]) => {
                const gd = document.getElementById(id);
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, tr = gd.data[t];
                const box = gd.getBoundingClientRect();
                return [box.left + xa._offset + xa.l2p(xa.d2l(tr.x[i])),
                        box.top + ya._offset + ya.l2p(ya.d2l(tr.y[i])), tr.customdata[i]];
            }""",
            [plot_id, trace, index],
        )
    )


def test_explorer_draws_its_figures_and_a_clicked_point_opens_the_exposure(page, login, science_user, pair, screenshot):
    campaign_a, campaign_b = pair
    login(page, "carol")
    page.goto(reverse("metrics:explorer") + f"?campaign={campaign_a.pk}&campaign={campaign_b.pk}")
    expect(page.locator("#explorer-title")).to_have_text("Metric explorer")
    wait_for_plots(page, 5)
    expect(page.locator("#plot-histogram svg.main-svg").first).to_be_visible()
    expect(page.locator("#plot-histogram .bars path").first).to_be_attached()
    for plot in ("#plot-time", "#plot-sky"):
        expect(page.locator(f"{plot} canvas").first).to_be_attached()  # WebGL traces draw on canvases
    expect(
        page.locator(f"#plot-focal-{campaign_a.pk} .heatmaplayer image, #plot-focal-{campaign_a.pk} .hm").first
    ).to_be_attached()
    expect(page.locator("#select-form")).to_have_count(0)  # science users do not get the loop-back form
    screenshot(page, "metrics-explorer")

    # A real click on the first point of the time plot (a WebGL trace; trace 1 is psf-a's r band, which holds
    # exposure 1): Plotly's own picking finds it.
    x, y, url = point_position(page, "plot-time", trace=1)
    assert url == reverse("tagging:exposure", args=["demo", E(20251121, 1)])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    expect(page).to_have_url(re.compile(re.escape(url) + "$"))
    expect(page.locator("#exposure-title")).to_contain_text("DC_O_20251121_000001")
    expect(page.locator('#exposure-campaigns [data-campaign="psf-a"]')).to_be_visible()


def test_a_vs_b_draws_scatter_and_differences_and_clicks_open_exposures(page, login, owner, pair, screenshot):
    campaign_a, campaign_b = pair
    login(page, "alice")
    page.goto(reverse("metrics:compare") + f"?a={campaign_a.pk}&b={campaign_b.pk}")
    expect(page.locator("#compare-title")).to_have_text("psf-a against psf-b")
    wait_for_plots(page, 2)
    expect(page.locator("#plot-scatter canvas").first).to_be_attached()
    expect(page.locator("#plot-differences .bars path").first).to_be_attached()
    expect(page.locator("#paired-count")).to_have_text("71")
    screenshot(page, "metrics-compare")

    # Plotly's click event on the scatter, emitted on the plot itself: it reaches the handler the page
    # registered (metrics.js), with a point of the plot's own data.
    url = page.evaluate(
        """() => {
            const gd = document.getElementById("plot-scatter");
            const point = {curveNumber: 0, pointNumber: 5, customdata: gd.data[0].customdata[5]};
            gd.emit("plotly_click", {points: [point], event: new MouseEvent("click")});
            return point.customdata;
        }"""
    )
    assert url.startswith("/data/repos/demo/exposures/")
    expect(page).to_have_url(re.compile(re.escape(url) + "$"))
    page.go_back()
    wait_for_plots(page, 2)
    # The largest change links to its exposure page.
    first = page.locator("#largest-changes tbody tr").first
    expect(first).to_contain_text("detector 4")
    first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(re.escape(reverse("tagging:exposure", args=["demo", E(20251122, 3)])) + "$"))
