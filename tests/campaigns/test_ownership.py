"""Rights follow ownership: a transfer moves them, a clone does not carry them over."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from campaigns import services
from campaigns.models import Campaign

pytestmark = pytest.mark.django_db


def test_transferring_ownership_takes_the_previous_owners_rights_away(campaign, owner, other_staff):
    services.campaign_update(user=owner, campaign_id=campaign.pk, version=campaign.version, data={"owner": "bob"})
    assert Campaign.objects.restrict(other_staff, "change").filter(pk=campaign.pk).exists()
    assert not Campaign.objects.restrict(owner, "change").filter(pk=campaign.pk).exists()


def test_the_previous_owner_keeps_rights_as_a_collaborator(campaign, owner, other_staff):
    services.campaign_update(
        user=owner, campaign_id=campaign.pk, version=campaign.version, data={"owner": "bob", "collaborators": ["alice"]}
    )
    assert Campaign.objects.restrict(owner, "change").filter(pk=campaign.pk).exists()


def test_a_clone_does_not_give_the_source_collaborators_rights_on_the_copy(make_campaign, owner, other_staff):
    from tests.conftest import _user

    source = make_campaign(collaborators=["bob"])
    erin = _user("erin", "staff")
    copy = services.campaign_clone(user=erin, campaign_id=source.pk, name="erin-copy")
    assert copy.owner == erin
    assert list(copy.collaborators.all()) == []
    assert not Campaign.objects.restrict(other_staff, "change").filter(pk=copy.pk).exists()
    assert [s.name for s in copy.steps.order_by("position")] == ["step1", "step2"]


@override_settings(CM_YAML_MAX_BYTES=100)
def test_the_import_page_refuses_an_oversized_file_on_its_field_without_reading_it(client, owner, demo_repo):
    client.force_login(owner)
    before = Campaign.objects.count()
    response = client.post("/campaigns/import/", {"file": SimpleUploadedFile("big.yaml", b"name: x\n" * 50)})
    assert response.status_code == 200
    assert "at most 100" in response.context["form"].errors["file"][0]
    assert Campaign.objects.count() == before
