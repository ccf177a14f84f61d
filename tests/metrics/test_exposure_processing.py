"""The exposure page lists every campaign the user may view that processed the exposure: those whose groups
cover it (campaigns.coverage), with each group and its status, metric values or not; and says which
campaigns could not be checked (not worked out yet, or a where the mirror cannot answer).

Real services (create, split, launch, group status), the session's Butler repo and its mirror."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from campaigns import services as campaign_services
from campaigns.coverage import campaign_coverage_record
from campaigns.execution import campaign_launch
from campaigns.models import Campaign, Group
from metrics import selectors
from tagging.models import Exposure
from tagging.services.dataids import UploadSource, dataidset_create
from tests.metrics import factories

pytestmark = pytest.mark.django_db

N1, N2 = 20251121, 20251122


def E(night: int, seq: int) -> int:
    return night * 100000 + seq


EXPOSURE = E(N1, 151)


def launch(make_exec_campaign, owner, name: str, groups: dict[str, str], *, record: bool = True, **overrides):
    campaign = make_exec_campaign(name=name, steps=[{"name": "step1", "pipeline_subset": "step1"}], **overrides)
    # Pre-defined groups: they overlap or leave data out on purpose (a list split doing so is refused).
    campaign_services.step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name="step1",
        groups=[{"name": n, "data_query": w} for n, w in groups.items()],
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    if record:  # what the task sent at launch does
        campaign_coverage_record(campaign_id=campaign.pk)
    return campaign


def group(campaign: Campaign, name: str) -> Group:
    return Group.objects.get(step__campaign=campaign, name=name)


@pytest.fixture
def world(make_exec_campaign, owner, butler_repo):
    """failed-run: its group seq151 covers the exposure and failed, no metric values; other-data: its
    groups leave the exposure out; measured: covers it and wrote values; secret: private, covers it;
    dark: a where the mirror cannot answer; fresh: launched, coverage not yet recorded."""
    failed = launch(
        make_exec_campaign,
        owner,
        "failed-run",
        {"seq150": "exposure.seq_num = 150", "seq151": "exposure.seq_num = 151"},
    )
    campaign_services.group_set_status(user=owner, group_id=group(failed, "seq151").pk, status="failed")
    other = launch(make_exec_campaign, owner, "other-data", {"seq150": "exposure.seq_num = 150"})
    measured = launch(make_exec_campaign, owner, "measured", {"night1": f"day_obs = {N1}"})
    night1 = group(measured, "night1")
    campaign_services.group_set_status(user=owner, group_id=night1.pk, status="succeeded")
    values = {(EXPOSURE, d): 0.70 + 0.01 * d for d in (0, 1)}
    factories.metric_values(measured, "demo.psf_fwhm", values, step=night1.step, group=night1)
    secret = launch(make_exec_campaign, owner, "secret", {"all": "exposure.seq_num > 0"})
    Campaign.objects.filter(pk=secret.pk).update(visibility="private")
    launch(make_exec_campaign, owner, "dark", {"dark": "exposure.dark_time > 1"})
    launch(make_exec_campaign, owner, "fresh", {"all": "exposure.seq_num > 0"}, record=False)
    return {"failed": failed, "other": other, "measured": measured, "secret": secret}


def exposure() -> Exposure:
    return Exposure.objects.select_related("repo").get(exposure_id=EXPOSURE)


def test_each_campaign_whose_groups_covered_the_exposure_is_listed_with_its_groups_metrics_or_not(world, science_user):
    found = selectors.exposure_processing(user=science_user, exposure=exposure())
    by_name = {e.campaign.name: e for e in found.campaigns}
    assert set(by_name) == {"failed-run", "measured"}  # not other-data (left out), not secret (private)
    failed = by_name["failed-run"]
    assert [(g.step, g.name, g.status, g.covered) for g in failed.groups] == [("step1", "seq151", "failed", True)]
    assert failed.metrics == [] and failed.gap is None
    measured = by_name["measured"]
    assert [(str(g), g.covered, g.measured) for g in measured.groups] == [("step1/night1 (succeeded)", True, True)]
    (row,) = measured.metrics
    assert row["metric"] == "demo.psf_fwhm" and row["n"] == 2 and row["mean"] == pytest.approx(0.705)
    gaps = {g.name: g for g in found.gaps}
    assert set(gaps) == {"dark", "fresh"}
    assert (gaps["dark"].pending, gaps["dark"].unknown) == (0, 1) and "dark_time" in gaps["dark"].reason
    assert (gaps["fresh"].pending, gaps["fresh"].unknown) == (1, 0)


def test_a_private_campaign_is_listed_for_those_who_may_view_it(world, owner, science_user, outsider):
    assert "secret" in {
        e.campaign.name for e in selectors.exposure_processing(user=owner, exposure=exposure()).campaigns
    }
    for user in (science_user, outsider):
        found = selectors.exposure_processing(user=user, exposure=exposure())
        assert "secret" not in {e.campaign.name for e in found.campaigns} | {g.name for g in found.gaps}


def test_a_group_whose_selection_changed_is_not_shown_until_recorded_again(world, science_user, tmp_path):
    from campaigns.execution.services import step_input_table_set
    from tagging.dataids.writers import ecsv_text

    failed = world["failed"]
    path = tmp_path / "input.ecsv"
    path.write_text(ecsv_text(["instrument", "exposure"], [("DemoCam", E(N2, 151))]))
    step_input_table_set(step_id=failed.steps.get().pk, path=str(path), comment="frozen")
    found = selectors.exposure_processing(user=science_user, exposure=exposure())
    assert "failed-run" not in {e.campaign.name for e in found.campaigns}
    assert {g.name: g.pending for g in found.gaps}["failed-run"] == 2
    campaign_coverage_record(campaign_id=failed.pk)
    found = selectors.exposure_processing(user=science_user, exposure=exposure())
    assert "failed-run" not in {e.campaign.name for e in found.campaigns}  # night 2 only now
    assert "failed-run" not in {g.name for g in found.gaps}


def test_include_and_exclude_sets_decide_which_campaigns_are_listed(make_exec_campaign, owner, butler_repo):
    records = [{"instrument": "DemoCam", "exposure": EXPOSURE}]
    dataidset_create(
        user=owner, repo_label="demo", name="just-151", reason="t",
        source=UploadSource(kind="records", records=records, dimensions=["instrument", "exposure"]),
    )  # fmt: skip
    launch(make_exec_campaign, owner, "with-151", {"all": "exposure.seq_num > 0"}, include_sets=["just-151"])
    launch(make_exec_campaign, owner, "without-151", {"all": "exposure.seq_num > 0"}, exclude_sets=["just-151"])
    names = {e.campaign.name for e in selectors.exposure_processing(user=owner, exposure=exposure()).campaigns}
    assert names == {"with-151"}
    other = Exposure.objects.select_related("repo").get(exposure_id=E(N1, 150))
    names = {e.campaign.name for e in selectors.exposure_processing(user=owner, exposure=other).campaigns}
    assert names == {"without-151"}


def section(user, exposure_id: int = EXPOSURE) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("tagging:exposure", args=["demo", exposure_id]))
    assert response.status_code == 200
    return response.content.decode().split('id="exposure-campaigns"', 1)[1].split("</section>", 1)[0]


def test_the_page_shows_groups_and_status_metric_values_or_their_absence_and_what_is_not_known(world, science_user):
    html = section(science_user)
    failed = html.split('data-campaign="failed-run"', 1)[1].split('<div class="subform"', 1)[0]
    assert 'data-group="step1/seq151" data-status="failed"' in failed
    assert "step1/seq150" not in failed
    assert "No metric values for this exposure in this campaign." in failed
    measured = html.split('data-campaign="measured"', 1)[1].split('<div class="subform"', 1)[0]
    assert 'data-group="step1/night1" data-status="succeeded"' in measured
    assert "demo.psf_fwhm" in measured and "0.7050" in measured and "No metric values" not in measured
    assert 'data-campaign="other-data"' not in html and "secret" not in html
    dark = html.split('data-gap-campaign="dark"', 1)[1].split("</li>", 1)[0]
    assert "1 group the exposure mirror cannot answer" in dark and "dark_time" in dark
    fresh = html.split('data-gap-campaign="fresh"', 1)[1].split("</li>", 1)[0]
    assert "1 group not worked out yet" in fresh


def test_the_page_says_when_no_campaign_processed_the_exposure(world, science_user):
    html = section(science_user, E(N2, 153))  # seq 153: outside every campaign's SCIENCE query
    assert "No campaign you may see processed this exposure." in html


def test_the_section_costs_the_same_queries_however_many_campaigns_and_groups(
    world, make_exec_campaign, owner, science_user, django_assert_num_queries
):
    client = Client()
    client.force_login(science_user)
    url = reverse("tagging:exposure", args=["demo", EXPOSURE])
    client.get(url)
    with django_assert_num_queries(16) as first:  # the page's 11 and this section's 5
        client.get(url)
    for i in range(3):
        launch(make_exec_campaign, owner, f"more-{i}", {f"g{j}": f"exposure.seq_num >= {150 + j}" for j in range(3)})
    with django_assert_num_queries(len(first.captured_queries)):
        html = client.get(url).content.decode()
    assert html.count('data-campaign="more-') == 3 and html.count('data-group="step1/g') == 6


def test_the_api_lists_the_campaigns_that_processed_the_exposure_for_those_who_may_see_them(
    world, api, owner, science_user
):
    url = reverse("api:metrics-exposure-campaigns", args=[EXPOSURE])
    body = api(science_user).get(url, {"repo": "demo"}).json()
    assert (body["repo"], body["instrument"], body["exposure"]) == ("demo", "DemoCam", EXPOSURE)
    by_name = {c["name"]: c for c in body["campaigns"]}
    assert set(by_name) == {"failed-run", "measured"}
    assert by_name["failed-run"]["groups"] == [
        {"step": "step1", "name": "seq151", "status": "failed", "covered": True, "measured": False}
    ]
    assert by_name["failed-run"]["metrics"] == [] and by_name["failed-run"]["not_known"] is None
    (metric,) = by_name["measured"]["metrics"]
    assert (metric["metric"], metric["n"]) == ("demo.psf_fwhm", 2) and metric["mean"] == pytest.approx(0.705)
    not_known = {g["campaign"]: g for g in body["not_known"]}
    assert set(not_known) == {"dark", "fresh"}
    assert not_known["fresh"]["pending_groups"] == 1 and "dark_time" in not_known["dark"]["reason"]
    # The owner of the private campaign sees it; nobody anonymous sees anything.
    assert "secret" in {c["name"] for c in api(owner).get(url, {"repo": "demo"}).json()["campaigns"]}
    assert api(None).get(url, {"repo": "demo"}).status_code in (401, 403)
    missing = api(science_user).get(reverse("api:metrics-exposure-campaigns", args=[99]), {"repo": "demo"})
    assert missing.status_code == 404 and "No exposure 99" in missing.json()["detail"]
