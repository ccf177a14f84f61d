"""The exposure page lists the campaigns that measured the exposure, only those the user may view."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from tests.conftest import PASSWORD
from tests.metrics import factories

pytestmark = pytest.mark.django_db


def exposure_page(client, user, exposure_id: int, queries=None) -> str:
    assert client.login(username=user.username, password=PASSWORD)
    if queries is None:
        response = client.get(reverse("tagging:exposure", args=["demo", exposure_id]))
    else:
        with queries:
            response = client.get(reverse("tagging:exposure", args=["demo", exposure_id]))
    assert response.status_code == 200
    return response.content.decode().split('id="exposure-campaigns"', 1)[1]


def test_exposure_page_lists_every_campaign_that_measured_it_with_its_metric_values(
    client, owner, campaign_a, campaign_b, django_assert_num_queries
):
    # The page with its flag, bad-data, tag-row and set sections, and five for this section (groups that
    # covered it, metric values, the groups that wrote them, the campaigns, groups not yet worked out),
    # however many campaigns, groups and values.
    section = exposure_page(client, owner, factories.exposure_id(20251121, 2), django_assert_num_queries(15))
    assert 'data-campaign="psf-a"' in section and 'data-campaign="psf-b"' in section
    assert "demo.psf_fwhm" in section
    assert "0.7240" in section  # mean of psf-a over 9 detectors: 0.72 + 0.004
    assert reverse("campaigns:detail", args=[campaign_a.pk]) in section


def test_campaigns_the_user_may_not_view_are_left_out(client, science_user, campaign_a, campaign_b):
    Campaign.objects.filter(pk=campaign_b.pk).update(visibility="private")
    section = exposure_page(client, science_user, factories.exposure_id(20251121, 2))
    assert 'data-campaign="psf-a"' in section
    assert "psf-b" not in section


def test_an_exposure_no_campaign_measured_says_so(client, outsider, demo_repo, mirror):
    section = exposure_page(client, outsider, factories.exposure_id(20251122, 1))
    assert "No campaign you may see processed this exposure." in section
