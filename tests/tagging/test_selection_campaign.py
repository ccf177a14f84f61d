"""A campaign whose inputs are a frozen selection: validated and pinned in the definition, limits the
data query of every group, and its page shows what was selected and why."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.execution.planning import base_where, selected_exposures
from tagging.selection.services import selection_freeze
from tests.conftest import PASSWORD, definition
from tests.tagging.selection_factories import add_flag

RECIPE = {
    "repo": "demo",
    "terms": [{"where": "exposure.observation_type = 'science'"}, {"mode": "exclude", "where": "band = 'z'"}],
}


@pytest.fixture
def frozen(butler_repo, owner):
    return selection_freeze(user=owner, recipe=RECIPE, name="no-z", reason="everything but z", visibility="public")


def test_a_campaign_takes_a_frozen_selection_as_inputs(frozen, owner, client, science_user):
    campaign = services.campaign_create(
        user=owner, data=definition(data_query="", input_selection={"dataid_set": "no-z"})
    )
    assert campaign.input_selection == {"dataid_set": "no-z", "version": 1}  # the latest, pinned
    # The set is one more include set: it travels as a data-ID table, not as ids in the where (no size limit).
    assert base_where(campaign) == "instrument = 'DemoCam'"
    assert [e["exposure_id"] for e in selected_exposures(campaign)] == [
        2025112100150,
        2025112100151,
        2025112100152,
        2025112100153,
        2025112200150,
        2025112200151,
        2025112200152,
    ]
    # New facts after freezing do not change a campaign's inputs: the set is what was frozen.
    from tagging.models import Exposure

    add_flag(exposure=Exposure.objects.get(exposure_id=2025112100150), flag="junk")
    assert len(selected_exposures(campaign)) == 7

    client.login(username=science_user.username, password=PASSWORD)
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="input-selection"' in page
    assert f'href="/data/sets/{frozen.dataid_set_id}/?version=1"' in page
    assert "Exclude data IDs where band = &#x27;z&#x27;" in page


def test_the_data_query_and_the_selection_are_both_applied(frozen, owner):
    campaign = services.campaign_create(
        user=owner, data=definition(data_query="band IN ('g', 'r')", input_selection="no-z@v1")
    )
    assert len(selected_exposures(campaign)) == 4


def test_an_unknown_selection_is_refused_naming_the_field(butler_repo, owner):
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(user=owner, data=definition(input_selection={"dataid_set": "nope"}))
    assert caught.value.message_dict["input_selection"] == ["No DataID set 'nope' in repo demo."]
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(user=owner, data=definition(input_selection={"dataid_set": "x", "v": 1}))
    assert "input_selection.v" in caught.value.message_dict


def test_the_api_takes_and_shows_the_input_selection(frozen, owner, api):
    response = api(owner).post(
        "/api/v1/campaigns/", {**definition(), "input_selection": {"dataid_set": "no-z", "version": 1}}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["input_selection"] == {"dataid_set": "no-z", "version": 1}
