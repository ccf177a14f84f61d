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
    # The provenance is a selection recipe whose metric term says what the explorer's form said.
    assert version.source_kind == "selection"
    assert version.source["recipe"] == {
        "repo": "demo",
        "dimensions": ["exposure", "detector"],
        "terms": [
            {"mode": "include", "kind": "where", "where": "day_obs >= 20251122"},
            {
                "mode": "include",
                "kind": "metric",
                "metric": "demo.psf_fwhm",
                "campaign": "psf-loop",
                "per": "detector",
                "statistic": "median",
                "op": ">",
                "threshold": 0.95,
            },
        ],
        "description": "Selected in the metrics explorer: demo.psf_fwhm > 0.95 in campaign psf-loop.",
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
    where, term = event.detail["recipe"]["terms"]
    assert where["where"] == "day_obs >= 20251122" and (term["kind"], term["op"], term["threshold"]) == (
        "metric", ">", 0.95,
    )  # fmt: skip
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


def test_a_threshold_selection_is_rerun_and_diffed_like_any_selection(client, owner, measured):
    from metrics.models import MetricValue
    from tagging.selection.services import selection_rerun

    response = post(client, owner, form(measured, night_from="20251122", whole_exposures="on"))
    assert response.status_code == 302
    version = DataIdSet.objects.get(name="bad-psf").versions.get()
    assert set(version.rows.values_list("exposure", flat=True)) == {E(20251122, 153)}  # any detector > 0.95
    assert selection_rerun(user=owner, version_id=version.pk)["unchanged"]
    # The campaign's values change (a re-measurement): the re-run says what the recipe selects now.
    MetricValue.objects.filter(campaign=measured, exposure=E(20251122, 152), detector=4).update(value=1.5)
    diff = selection_rerun(user=owner, version_id=version.pk)
    assert (diff["added"], diff["removed"]) == (1, 0)
    assert diff["added_examples"] == [{"instrument": "DemoCam", "exposure": E(20251122, 152)}]
    page = client.get(reverse("tagging:selection-rerun", args=[version.dataid_set_id]))
    assert page.status_code == 200 and "demo.psf_fwhm" in page.content.decode()


def test_the_explorers_filters_become_terms_of_the_recipe(owner, measured):
    version = services.metric_selection_create(
        user=owner,
        query=MetricQuery(
            [measured], "demo.psf_fwhm", band="r", night_from=20251121, night_to=20251122, step="step1",
            value_min=0.5, value_max=1.2,
        ),
        campaign=measured,
        operator="gt",
        threshold=0.75,
        name="median-psf",
        reason="r band",
        whole_exposures=True,
        statistic="median",
    )  # fmt: skip
    where, above, low, high = version.source["recipe"]["terms"]
    assert where["where"] == "band = 'r' AND day_obs >= 20251121 AND day_obs <= 20251122"
    assert (above["per"], above["statistic"], above["op"], above["step"]) == ("exposure", "median", ">", "step1")
    assert (low["op"], low["threshold"], high["op"], high["threshold"]) == (">=", 0.5, "<=", 1.2)
    # Medians above 0.75 (and within [0.5, 1.2]): seq 151 (0.804), 152 (0.904), 153 (1.004; its NaN skipped),
    # of those the r-band exposures.
    from tagging.models import Exposure

    red = set(Exposure.objects.filter(band="r", observation_type="science").values_list("exposure_id", flat=True))
    expected = {E(n, s) for n in (20251121, 20251122) for s in (151, 152, 153)} & red
    assert expected and set(version.rows.values_list("exposure", flat=True)) == expected


def test_whole_exposures_with_a_detector_filter_is_refused_with_the_reason(owner, measured):
    from core.errors import InputError

    with pytest.raises(InputError, match="clear the detector filter"):
        services.metric_selection_create(
            user=owner,
            query=MetricQuery([measured], "demo.psf_fwhm", detector=3),
            campaign=measured,
            operator="gt",
            threshold=0.75,
            name="x",
            reason="y",
            whole_exposures=True,
        )
    assert not DataIdSet.objects.exists()
