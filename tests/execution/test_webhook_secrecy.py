"""A campaign's web hook address is a secret (Slack's carry a token): only people who may edit it see it."""

from __future__ import annotations

import pytest

from campaigns import services

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.org/services/T000/B000/secret-token-123"


@pytest.fixture
def hooked(make_campaign, owner):
    campaign = make_campaign(notify={"webhook": HOOK, "events": ["group_failed"]})
    # An edit puts the address in the history diff too.
    services.campaign_update(
        user=owner, campaign_id=campaign.pk, version=campaign.version, data={"notify": {"webhook": HOOK + "x"}}
    )
    campaign.refresh_from_db()
    return campaign


def test_a_science_user_sees_no_web_hook_address_anywhere(client, api, science_user, hooked):
    reader = api(science_user)
    detail = reader.get(f"/api/v1/campaigns/{hooked.pk}/")
    assert detail.status_code == 200 and HOOK not in detail.content.decode()
    assert "hidden" in detail.json()["notify"]["webhook"]
    history = reader.get(f"/api/v1/campaigns/{hooked.pk}/history/")
    assert history.status_code == 200 and HOOK not in history.content.decode()
    export = reader.get(f"/api/v1/campaigns/{hooked.pk}/export/")
    assert export.status_code == 200 and HOOK not in export.content.decode()
    client.force_login(science_user)
    for path in (f"/campaigns/{hooked.pk}/", f"/campaigns/{hooked.pk}/export/"):
        page = client.get(path)
        assert page.status_code == 200 and HOOK not in page.content.decode(), path


def test_the_owner_sees_and_exports_the_address(api, owner, hooked):
    editor = api(owner)
    assert editor.get(f"/api/v1/campaigns/{hooked.pk}/").json()["notify"]["webhook"] == HOOK + "x"
    assert HOOK in editor.get(f"/api/v1/campaigns/{hooked.pk}/history/").content.decode()
    assert HOOK + "x" in editor.get(f"/api/v1/campaigns/{hooked.pk}/export/").content.decode()
