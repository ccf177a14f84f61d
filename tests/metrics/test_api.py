"""The metrics API and pages: ingest (upload and JSON body), values and names with filters, re-observation
export, and who may do what (staff ingest; science users read what they may view; others get 404)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from campaigns.execution import campaign_launch
from campaigns.execution.runner import submission_claim
from metrics.models import MetricValue
from metrics.services import metric_values_ingest
from tagging.models import Exposure
from tests.conftest import PASSWORD
from tests.metrics.conftest import GOOD, OTHER, bundle, flat_record

pytestmark = pytest.mark.django_db
BAD_SEEING = {GOOD: [1.3, 1.4], OTHER: [0.9, 1.0]}  # medians 1.35 and 0.95


@pytest.fixture
def with_values(make_exec_campaign, owner, butler_repo, monkeypatch):
    """Launch a campaign (no BPS: groups are only claimed, which records their RUN collections) and ingest
    psf values for two exposures of its first night; factory: ``with_values(visibility=...)``."""
    from campaigns.tasks import group_run

    monkeypatch.setattr(group_run, "delay", lambda pk: None)

    def make(**overrides):
        campaign = make_exec_campaign(**overrides)
        campaign_launch(user=owner, campaign_id=campaign.pk)
        group = campaign.steps.get(name="step1").groups.get(name="night-20251121")
        submission = submission_claim(group_id=group.pk)
        records = [
            {"exposure": e, "detector": d, "run": submission.run_collection, "psf_fwhm": v, "sky": 900.0 + d}
            for e, values in BAD_SEEING.items()
            for d, v in enumerate(values)
        ]
        metric_values_ingest(
            user=owner, campaign_id=campaign.pk, records=records, action="psfMetrics", units={"psf_fwhm": "arcsec"}
        )
        return campaign

    return make


def test_staff_ingest_a_file_upload_and_a_json_body(api, owner, butler_repo):
    upload = io.BytesIO(json.dumps(bundle()).encode())
    upload.name = "bundle.json"
    response = api(owner).post(
        "/api/v1/metrics/ingest/",
        {"file": upload, "repo": "demo", "source": "nightly-qa", "data_id": f"exposure={GOOD},detector=4"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 4
    body = {"repo": "demo", "source": "sasquatch", "records": [flat_record(GOOD, 1), flat_record(1, 1)]}
    response = api(owner).post("/api/v1/metrics/ingest/", body, format="json")
    assert response.status_code == 200
    report = response.json()
    assert (report["created"], report["rejected"]) == (2, 2)
    assert report["problems"][0] == {"where": "index 1", "key": "exposure", "message": "exposure 1 is not in repo demo"}
    assert MetricValue.objects.count() == 6


def test_ingest_errors_name_the_field(api, owner, butler_repo):
    response = api(owner).post("/api/v1/metrics/ingest/", {"repo": "demo", "source": "s"}, format="json")
    assert response.status_code == 400 and "exactly one of" in response.json()["file"][0]
    response = api(owner).post(
        "/api/v1/metrics/ingest/", {"repo": "demo", "source": "s", "bundle": bundle(), "data_id": "exposure"}
    )
    assert response.status_code == 400 and "'exposure' is not key=value" in response.json()["data_id"][0]
    bad = io.BytesIO(b'{"psfShape": [')
    bad.name = "b.json"
    response = api(owner).post(
        "/api/v1/metrics/ingest/",
        {"file": bad, "repo": "demo", "source": "s", "format": "bundle", "data_id": f"exposure={GOOD}"},
        format="multipart",
    )
    assert response.status_code == 400 and "nothing was stored" in response.json()["detail"]
    assert MetricValue.objects.count() == 0


@pytest.mark.parametrize("who", ["science_user", "outsider", None])
def test_only_staff_may_ingest(request, api, who, butler_repo):
    user = request.getfixturevalue(who) if who else None
    body = {"repo": "demo", "source": "s", "bundle": bundle(), "data_id": {"exposure": GOOD}}
    response = api(user).post("/api/v1/metrics/ingest/", body, format="json")
    assert response.status_code in ((401, 403) if user is None else (403,))
    assert MetricValue.objects.count() == 0


def test_values_and_names_filter_by_campaign_metric_and_data_id(api, science_user, with_values):
    campaign = with_values()
    client = api(science_user)
    page = client.get("/api/v1/metrics/values/", {"campaign": campaign.name, "metric": "psf_fwhm"}).json()
    assert page["count"] == 4
    assert {r["step"] for r in page["results"]} == {"step1"} and {r["campaign"] for r in page["results"]} == {
        campaign.name
    }
    one = client.get(
        "/api/v1/metrics/values/", {"metric": "psfMetrics.psf_fwhm", "exposure": GOOD, "value_min": 1.35}
    ).json()
    assert [(r["detector"], r["value"]) for r in one["results"]] == [(1, 1.4)]
    nights = client.get("/api/v1/metrics/values/", {"day_obs_min": 20251122}).json()
    assert nights["count"] == 0
    names = client.get("/api/v1/metrics/names/", {"campaign": campaign.pk}).json()
    assert names == [
        {"metric": "psfMetrics.psf_fwhm", "unit": "arcsec", "count": 4},
        {"metric": "psfMetrics.sky", "unit": "", "count": 4},
    ]


def test_science_users_see_outside_sources_but_not_private_campaigns(api, owner, science_user, with_values):
    private = with_values(visibility="private")
    metric_values_ingest(user=owner, repo_label="demo", records=[flat_record(GOOD, 2)], source="sasquatch")
    client = api(science_user)
    seen = client.get("/api/v1/metrics/values/").json()
    assert {r["source"] for r in seen["results"]} == {"sasquatch"} and seen["count"] == 2
    assert client.get("/api/v1/metrics/values/", {"campaign": private.pk}).status_code == 404
    assert client.get("/api/v1/metrics/names/", {"campaign": private.name}).status_code == 404
    params = {"campaign": private.pk, "metric": "psf_fwhm", "op": ">", "threshold": 1}
    assert client.get("/api/v1/metrics/reobserve/", params).status_code == 404
    # The owner sees all of it.
    assert api(owner).get("/api/v1/metrics/values/").json()["count"] == 2 + 8


def test_reobservation_requests_as_json_and_csv(api, science_user, with_values):
    campaign = with_values()
    params = {"campaign": campaign.name, "metric": "psf_fwhm", "op": ">", "threshold": "1.2"}
    response = api(science_user).get("/api/v1/metrics/reobserve/", params)
    assert response.status_code == 200
    data = json.loads(response.content)
    assert data["count"] == 1 and data["source_campaign"] == campaign.name
    (row,) = data["requests"]
    exposure = Exposure.objects.get(exposure_id=GOOD)
    assert row["exposure"] == GOOD and row["obs_id"] == exposure.obs_id and row["target"] == exposure.target_name
    assert (row["band"], row["ra"], row["dec"], row["day_obs"]) == (
        exposure.band, exposure.ra, exposure.dec, 20251121,
    )  # fmt: skip
    assert row["measured"] == pytest.approx(1.35)
    assert row["reason"] == f"psf_fwhm median > 1.2: measured 1.35 in campaign {campaign.name}"
    response = api(science_user).get("/api/v1/metrics/reobserve/", {**params, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["obs_id"] for r in rows] == [exposure.obs_id] and rows[0]["source_campaign"] == campaign.name
    other_band = "z" if exposure.band != "z" else "g"
    none = api(science_user).get("/api/v1/metrics/reobserve/", {**params, "band": other_band})
    assert json.loads(none.content)["count"] == 0
    bad = api(science_user).get("/api/v1/metrics/reobserve/", {**params, "op": "=", "threshold": "x"})
    assert bad.status_code == 400 and set(bad.json()) == {"op", "threshold"}


def test_the_campaign_page_shows_the_metrics_panel_and_its_reobserve_button(science_user, with_values):
    campaign = with_values()
    client = Client()
    assert client.login(username=science_user.username, password=PASSWORD)
    page = client.get(f"/campaigns/{campaign.pk}/")
    text = page.content.decode()
    assert 'id="metrics"' in text and "8</span> metric values" in text and 'id="reobserve-form"' in text
    download = client.get(
        f"/metrics/reobserve/{campaign.pk}/",
        {"metric": "psfMetrics.psf_fwhm", "op": ">", "threshold": "1.2", "format": "csv"},
    )
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert str(GOOD) in download.content.decode() and str(OTHER) not in download.content.decode()
    assert client.get(f"/metrics/reobserve/{campaign.pk}/", {"metric": "psf_fwhm"}).status_code == 400
