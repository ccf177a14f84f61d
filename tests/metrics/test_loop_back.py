"""The loop back: "select where metric < or > threshold" in the explorer makes a DataID set (checked against
the real Butler repo by the DataID-set service) whose provenance is the recipe."""

from __future__ import annotations

import pytest
from django.urls import reverse

from metrics import services
from metrics.selectors import MetricQuery
from tagging.models import DataIdSet, DataIdSetVersion
from tests.conftest import PASSWORD
from tests.metrics import factories

pytestmark = pytest.mark.django_db

E = factories.exposure_id
SCIENCE = [(night, seq) for night in (20251121, 20251122) for seq in range(150, 154)]


@pytest.fixture
def measured(make_campaign, butler_repo):
    """A campaign on the real demo repo with psf_fwhm for its 8 science exposures x 9 detectors:
    0.7 + 0.1 * (seq - 150) + 0.001 * detector, and NaN for exposure seq 153 of the first night, detector 0."""
    campaign = make_campaign(name="psf-loop")
    values = {
        (E(night, seq), d): (None if (night, seq, d) == (20251121, 153, 0) else 0.7 + 0.1 * (seq - 150) + 0.001 * d)
        for night, seq in SCIENCE
        for d in range(9)
    }
    factories.metric_values(campaign, "demo.psf_fwhm", values, step=campaign.steps.get(name="step1"))
    return campaign


def post(client, user, data):
    assert client.login(username=user.username, password=PASSWORD)
    return client.post(reverse("metrics:select"), data)


def form(campaign, **extra):
    return {
        "campaigns": [campaign.pk],
        "campaign": campaign.pk,
        "metric": "demo.psf_fwhm",
        "operator": "gt",
        "threshold": "0.95",
        "name": "bad-psf",
        "reason": "PSF too wide for coadds",
        **extra,
    }


def test_staff_selects_data_ids_above_a_threshold_into_a_set_with_the_recipe(client, owner, measured):
    response = post(client, owner, form(measured, night_from="20251122", whole_exposures=""))
    dataid_set = DataIdSet.objects.get(name="bad-psf")
    assert response.status_code == 302 and response["Location"] == reverse("tagging:set", args=[dataid_set.pk])
    version = dataid_set.versions.get()
    # seq 153 (0.7 + 0.3 + ...) on the second night, all 9 detectors; seq 152 is 0.9 + 0.001 * d < 0.95.
    assert version.count == 9
    assert version.dimensions == ["instrument", "detector", "exposure"] or set(version.dimensions) == {
        "instrument", "exposure", "detector",
    }  # fmt: skip
    assert version.source["recipe"] == {
        "campaign": "psf-loop",
        "campaign_id": measured.pk,
        "metric": "demo.psf_fwhm",
        "operator": ">",
        "threshold": 0.95,
        "filters": {"night_from": 20251122},
        "whole_exposures": False,
    }
    rows = set(version.rows.values_list("exposure", "detector"))
    assert rows == {(E(20251122, 153), d) for d in range(9)}
    page = client.get(reverse("tagging:set", args=[dataid_set.pk]))
    assert "9 data IDs stored as bad-psf v1" in page.content.decode()


def test_whole_exposures_below_a_threshold_leave_nan_out(owner, measured):
    version = services.metric_selection_create(
        user=owner,
        query=MetricQuery([measured], "demo.psf_fwhm", night_to=20251121),
        campaign=measured,
        operator="lt",
        threshold=0.85,
        name="good-psf",
        reason="sharp exposures",
        whole_exposures=True,
    )
    assert set(version.dimensions) == {"instrument", "exposure"}
    assert set(version.rows.values_list("exposure", flat=True)) == {E(20251121, 150), E(20251121, 151)}


def test_a_selection_that_matches_nothing_stores_nothing_and_says_why(client, owner, measured):
    response = post(client, owner, form(measured, threshold="5"))
    assert response.status_code == 302 and "#select" in response["Location"]
    assert not DataIdSet.objects.exists()
    page = client.get(response["Location"])
    assert "No data ID of psf-loop has demo.psf_fwhm &gt; 5 with these filters; nothing was stored." in (
        page.content.decode()
    )


def test_a_selection_without_threshold_or_name_is_refused_with_the_field_named(client, owner, measured):
    response = post(client, owner, form(measured, threshold="", name=""))
    page = client.get(response["Location"]).content.decode()
    assert "Not selected: threshold: This field is required." in page
    assert "Not selected: name: This field is required." in page
    assert not DataIdSetVersion.objects.exists()


def test_science_users_and_outsiders_cannot_select(client, science_user, outsider, measured):
    assert post(client, science_user, form(measured)).status_code == 403
    client.logout()
    assert post(client, outsider, form(measured)).status_code == 403
    assert not DataIdSet.objects.exists()


def test_staff_cannot_select_from_a_campaign_they_may_not_view(client, other_staff, measured):
    from campaigns.models import Campaign

    Campaign.objects.filter(pk=measured.pk).update(visibility="private")
    assert post(client, other_staff, form(measured)).status_code == 404
    assert not DataIdSet.objects.exists()


def test_staff_stores_the_selection_as_a_reject_tag_table_that_a_selection_excludes(client, owner, measured):
    from tagging.models import TagTable, TagTableEvent
    from tagging.selection.services import selection_count

    response = post(client, owner, form(measured, night_from="20251122", store_as="reject_table", name="wide-psf"))
    table = TagTable.objects.get(name="wide-psf")
    assert response.status_code == 302 and response["Location"] == reverse("tagging:tagtable", args=[table.pk])
    assert table.polarity == "reject" and table.row_count == 9
    assert "demo.psf_fwhm > 0.95 in campaign psf-loop" in table.purpose and "PSF too wide" in table.purpose
    event = TagTableEvent.objects.get(table=table, action="selected_from_metric")
    assert event.detail["recipe"]["threshold"] == 0.95 and event.detail["recipe"]["filters"] == {"night_from": 20251122}
    assert table.row_changes.count() == 9  # written through the tag-table service, with history
    page = client.get(reverse("tagging:tagtable", args=[table.pk]))
    assert "9 data IDs stored in the reject tag table wide-psf" in page.content.decode()
    # The loop: the next selection leaves those data IDs out.
    recipe = {
        "repo": "demo",
        "dimensions": ["exposure", "detector"],
        "terms": [
            {"where": "exposure.observation_type = 'science' AND day_obs = 20251122"},
            {"mode": "exclude", "tag_table": "wide-psf"},
        ],
    }
    assert selection_count(user=owner, recipe=recipe, preview=False)["count"] == 4 * 9 - 9


def test_a_reject_table_selection_that_matches_nothing_stores_nothing(owner, measured):
    from core.errors import InputError
    from tagging.models import TagTable

    query = MetricQuery(campaigns=[measured], metric="demo.psf_fwhm")
    with pytest.raises(InputError, match="nothing was stored"):
        services.metric_selection_reject_table(
            user=owner, query=query, campaign=measured, operator="gt", threshold=99.0, name="none", reason="r"
        )
    assert not TagTable.objects.exists()
