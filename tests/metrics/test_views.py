"""The dashboard pages: who may see them (404 for campaigns one may not view), what they show, query counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.metrics import factories

pytestmark = pytest.mark.django_db

E = factories.exposure_id


def client_for(client, user):
    if user is not None:
        assert client.login(username=user.username, password=PASSWORD)
    return client


def figures_of(response) -> dict:
    match = re.search(rb'<script type="application/json" id="cm-figures">(.*?)</script>', response.content, re.S)
    assert match, "the page embeds no figures"
    return json.loads(match.group(1))


def pages(a, b) -> dict[str, str]:
    return {
        "overview": reverse("metrics:overview", args=[a.pk]),
        "explorer": reverse("metrics:explorer") + f"?campaign={a.pk}",
        "compare": reverse("metrics:compare") + f"?a={a.pk}&b={b.pk}",
    }


@pytest.fixture
def private_pair(campaign_a, campaign_b):
    from campaigns.models import Campaign

    Campaign.objects.filter(pk__in=[campaign_a.pk, campaign_b.pk]).update(visibility="private")
    campaign_a.refresh_from_db()
    campaign_b.refresh_from_db()
    return campaign_a, campaign_b


def test_anonymous_users_are_sent_to_the_login_page(client, campaign_a, campaign_b):
    for url in pages(campaign_a, campaign_b).values():
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("who", ["science_user", "outsider", "other_staff", "owner", "admin"])
def test_dashboards_of_a_public_campaign_are_open_to_every_logged_in_user(client, request, who, campaign_a, campaign_b):
    user = request.getfixturevalue(who)
    c = client_for(client, user)
    for name, url in pages(campaign_a, campaign_b).items():
        assert c.get(url).status_code == 200, name


@pytest.mark.parametrize("who", ["science_user", "outsider", "other_staff"])
def test_dashboards_of_a_private_campaign_are_404_to_those_it_is_not_shared_with(client, request, who, private_pair):
    user = request.getfixturevalue(who)
    c = client_for(client, user)
    for name, url in pages(*private_pair).items():
        assert c.get(url).status_code == 404, name
    # Mixing a visible campaign with a private one does not leak the private one either.
    assert c.get(reverse("metrics:explorer") + f"?campaign={private_pair[0].pk}&campaign=999999").status_code == 404


def test_science_user_sees_a_private_campaign_shared_with_them_but_cannot_select_from_it(
    client, science_user, private_pair, owner
):
    from campaigns import services as campaign_services

    a, b = private_pair
    for campaign in (a, b):
        campaign_services.campaign_share(user=owner, campaign_id=campaign.pk, username="carol", permission="view")
    c = client_for(client, science_user)
    for name, url in pages(a, b).items():
        assert c.get(url).status_code == 200, name
    explorer = c.get(pages(a, b)["explorer"])
    assert b'id="select-form"' not in explorer.content  # the loop-back form is for staff
    response = c.post(
        reverse("metrics:select"),
        {"campaigns": [a.pk], "campaign": a.pk, "metric": "demo.psf_fwhm", "operator": "gt", "threshold": 0.7,
         "name": "x", "reason": "y"},
    )  # fmt: skip
    assert response.status_code == 403


def test_explorer_draws_histogram_time_sky_and_focal_plane_with_exposure_urls(client, owner, campaign_a, campaign_b):
    c = client_for(client, owner)
    url = reverse("metrics:explorer") + f"?campaign={campaign_a.pk}&campaign={campaign_b.pk}&metric=demo.psf_fwhm"
    response = c.get(url)
    assert response.status_code == 200
    figures = figures_of(response)
    assert set(figures) == {"histogram", "time", "sky", f"focal-{campaign_a.pk}", f"focal-{campaign_b.pk}"}
    assert [t["type"] for t in figures["histogram"]["data"]] == ["bar", "bar"]
    time = figures["time"]["data"]
    # Coloured by band (g and r), one marker shape per campaign.
    assert {t["type"] for t in time} == {"scattergl"} and len(time) == 4
    assert [t["name"] for t in time] == ["psf-a: g", "psf-a: r", "psf-b: g", "psf-b: r"]
    assert len({t["marker"]["color"] for t in time}) == 2 and len({t["marker"]["symbol"] for t in time}) == 2
    exposure_page = reverse("tagging:exposure", args=["demo", E(20251121, 1)])  # an r-band exposure
    assert exposure_page in time[1]["customdata"]
    assert figures[f"focal-{campaign_a.pk}"]["data"][0]["type"] == "heatmap"
    assert b'id="select-form"' in response.content  # staff may select
    assert b"vendor/plotly.min.js" in response.content
    assert b"cdn" not in response.content.lower()


def test_explorer_filters_and_bad_filters(client, owner, campaign_a):
    c = client_for(client, owner)
    base = reverse("metrics:explorer") + f"?campaign={campaign_a.pk}"
    response = c.get(base + "&band=g&night_from=20251122&x=day_obs")
    points = figures_of(response)["time"]["data"][0]
    assert len(points["x"]) == 2 and points["x"][0] == "2025-11-22"
    response = c.get(base + "&night_from=20251123&night_to=20251121")
    assert "The last night comes before the first." in response.content.decode()
    response = c.get(base + "&metric=no.such.metric")
    assert "have no metric" in response.content.decode()
    assert c.get(reverse("metrics:explorer") + "?campaign=abc").status_code == 404


def test_compare_lists_the_largest_changes_with_links_to_the_exposure_pages(client, owner, campaign_a, campaign_b):
    c = client_for(client, owner)
    response = c.get(reverse("metrics:compare") + f"?a={campaign_a.pk}&b={campaign_b.pk}")
    assert response.status_code == 200
    figures = figures_of(response)
    assert figures["scatter"]["data"][0]["type"] == "scattergl"
    assert figures["differences"]["data"][0]["type"] == "bar"
    html = response.content.decode()
    biggest = reverse("tagging:exposure", args=["demo", E(20251122, 3)])
    table = html.split('id="largest-changes"', 1)[1]
    assert table.index(biggest) < table.index("</tr>", table.index("<tbody>"))  # first row
    assert re.search(r'id="paired-count">\s*71', html)


def test_overview_draws_progress_states_failures_and_run_times(client, owner, campaign):
    factories.execution_rows(campaign, user=owner)
    c = client_for(client, owner)
    response = c.get(reverse("metrics:overview", args=[campaign.pk]))
    figures = figures_of(response)
    assert set(figures) == {"progress", "states", "by_task", "by_rule", "run_times"}
    assert figures["by_rule"]["data"][0]["y"][-1] == "isr /timeout/ → auto-retry"
    detail = c.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert reverse("metrics:overview", args=[campaign.pk]) in detail


def test_dashboard_query_counts_do_not_grow_with_the_data(
    client, owner, campaign_a, campaign_b, mirror, django_assert_num_queries
):
    c = client_for(client, owner)
    explorer = reverse("metrics:explorer") + f"?campaign={campaign_a.pk}&campaign={campaign_b.pk}"
    compare = reverse("metrics:compare") + f"?a={campaign_a.pk}&b={campaign_b.pk}"
    overview = reverse("metrics:overview", args=[campaign_a.pk])
    factories.execution_rows(campaign_a, user=owner)
    counts = {}
    for name, url in (("explorer", explorer), ("compare", compare), ("overview", overview)):
        with django_assert_num_queries(PINNED[name]) as captured:
            assert c.get(url).status_code == 200
        counts[name] = len(captured)
    # A repeated view is served from the cache: only the permission check and the data stamp are queried.
    with django_assert_num_queries(PINNED["explorer_cached"]):
        c.get(explorer)
    # Twice the values: the stamp changes, the aggregates are computed again, with the same number of queries.
    more = {(E(20251121, 1), d): 1.0 for d in range(100, 190)}
    factories.metric_values(campaign_a, "demo.psf_fwhm", more)
    for name, url in (("explorer", explorer), ("compare", compare), ("overview", overview)):
        with django_assert_num_queries(counts[name]):
            response = c.get(url)
        if name == "explorer":
            assert sum(sum(t["y"]) for t in figures_of(response)["histogram"]["data"]) == 71 + 90 + 71


# The explorer and the comparison open on the most measured metric (one query of the rollups); the overview
# reads the group transitions once.
PINNED = {"explorer": 16, "explorer_cached": 9, "compare": 13, "overview": 10}


def test_plotly_is_served_from_the_project_bundle_not_a_cdn(client, owner):
    path = finders.find("vendor/plotly.min.js")
    assert path and Path(path) == Path(settings.BASE_DIR) / "static" / "vendor" / "plotly.min.js"
    banner = Path(path).read_text()[:400]
    # Built from the pinned plotly.js of scripts/plotly_bundle (make plotly-bundle), not edited by hand.
    pins = json.loads((Path(settings.BASE_DIR) / "scripts" / "plotly_bundle" / "package.json").read_text())
    assert banner.startswith(f"/** plotly.js v{pins['devDependencies']['plotly.js']} (MIT license")


def test_the_plotly_bundle_holds_every_trace_type_the_dashboards_draw(client, owner, campaign_a, campaign_b):
    """The bundle has only the traces entry.js registers: a chart of another type would draw nothing."""
    banner = Path(finders.find("vendor/plotly.min.js")).read_text()[:400]
    bundled = set(re.search(r"custom bundle: traces ([a-z0-9,]+)\.", banner).group(1).split(","))
    factories.execution_rows(campaign_a, user=owner)
    c = client_for(client, owner)
    drawn = set()
    for url in pages(campaign_a, campaign_b).values():
        for figure in figures_of(c.get(url)).values():
            drawn |= {trace.get("type", "scatter") for trace in figure["data"]}
    assert {"scattergl", "heatmap", "bar", "box"} <= drawn  # the pages really drew these
    assert drawn <= bundled, f"rebuild the bundle (scripts/plotly_bundle) with {sorted(drawn - bundled)}"


def test_the_explorer_opens_on_the_most_measured_metric_then_on_the_one_chosen_last(
    client, owner, make_campaign, mirror
):
    campaign = make_campaign(name="two-metrics")
    factories.metric_values(campaign, "a.rare_diagnostic", {(E(20251121, 1), 0): 1.0})
    factories.metric_values(campaign, "b.psf_fwhm", {(E(20251121, s), d): 0.7 for s in (1, 2) for d in range(9)})
    c = client_for(client, owner)
    url = reverse("metrics:explorer") + f"?campaign={campaign.pk}"
    response = c.get(url)
    assert response.context["metric"] == "b.psf_fwhm"  # not the alphabetically first
    assert "Opened on the metric with the most values in this campaign (18)" in response.content.decode()
    chosen = c.get(url + "&metric=a.rare_diagnostic")
    assert chosen.context["metric"] == "a.rare_diagnostic" and 'id="metric-reason"' not in chosen.content.decode()
    again = c.get(url)
    assert again.context["metric"] == "a.rare_diagnostic"
    assert "Opened on the metric you looked at last" in again.content.decode()
    # Campaigns that never measured the remembered metric open on their own most measured one.
    other = make_campaign(name="other-metrics")
    factories.metric_values(other, "c.sky", {(E(20251121, 1), 0): 3.0})
    assert c.get(reverse("metrics:explorer") + f"?campaign={other.pk}").context["metric"] == "c.sky"
