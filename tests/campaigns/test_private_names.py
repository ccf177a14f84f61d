"""Names of private campaigns do not leak: creating, importing, cloning into or renaming to the name of a
private campaign reads exactly like taking the name of a campaign one can see, and a science user or an
outsider is refused for their role before the name is looked at."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.models import Campaign
from tests.conftest import MINIMAL_YAML, definition

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"


def neutral(text: str, name: str) -> str:
    return text.replace(name, "NAME")


@pytest.fixture
def held(make_campaign):
    """alice's private campaign and her public one."""
    return make_campaign(name="secret-drp", visibility="private"), make_campaign(name="open-drp", visibility="public")


def create(client, name: str):
    return client.post(URL, definition(name=name), format="json")


def test_creating_a_campaign_with_a_private_campaigns_name_reads_like_any_taken_name(api, held, other_staff):
    secret, public = create(api(other_staff), "secret-drp"), create(api(other_staff), "open-drp")
    assert secret.status_code == public.status_code == 400
    assert neutral(json.dumps(secret.json()), "secret-drp") == neutral(json.dumps(public.json()), "open-drp")
    assert secret.json()["name"] == ["The name 'secret-drp' is not available: choose another."]
    assert "alice" not in json.dumps(secret.json())
    other_case = create(api(other_staff), "SECRET-DRP")  # names are unique whatever their case
    assert neutral(json.dumps(other_case.json()), "SECRET-DRP") == neutral(json.dumps(public.json()), "open-drp")
    assert Campaign.objects.count() == 2


def test_importing_cloning_and_renaming_cannot_probe_names_either(held, other_staff):
    public = held[1]
    answers = []
    for name in ("secret-drp", "open-drp"):
        with pytest.raises(ValidationError) as imported:
            services.campaign_import(user=other_staff, text=MINIMAL_YAML.replace("w48-minidrp", name))
        with pytest.raises(ValidationError) as cloned:
            services.campaign_clone(user=other_staff, campaign_id=public.pk, name=name)
        mine = services.campaign_create(user=other_staff, data=definition(name=f"bob-{name}"))
        with pytest.raises(ValidationError) as renamed:
            services.campaign_update(user=other_staff, campaign_id=mine.pk, version=mine.version, data={"name": name})
        answers.append([neutral(e.value.message_dict["name"][0], name) for e in (imported, cloned, renamed)])
    assert answers[0] == answers[1]


def test_the_private_campaign_stays_invisible_to_other_staff(api, held, other_staff):
    client = api(other_staff)
    assert client.get(URL, {"name": "secret-drp"}).json()["count"] == 0
    assert client.get(f"{URL}{held[0].pk}/").status_code == 404


@pytest.mark.parametrize("who", ["science_user", "outsider"])
def test_science_users_and_outsiders_are_refused_before_the_name_is_looked_at(api, held, request, who):
    client = api(request.getfixturevalue(who))
    taken, free = create(client, "secret-drp"), create(client, "never-used")
    assert taken.status_code == free.status_code == 403
    assert taken.json() == free.json()
    imported = [
        client.post(URL + "import/", MINIMAL_YAML.replace("w48-minidrp", n), content_type="application/yaml")
        for n in ("secret-drp", "never-used")
    ]
    assert [r.status_code for r in imported] == [403, 403] and imported[0].json() == imported[1].json()


def test_the_owner_still_finds_their_private_campaign_by_name(api, held, owner):
    assert [c["name"] for c in api(owner).get(URL, {"name": "secret-drp"}).json()["results"]] == ["secret-drp"]


# --- DataID sets named in a definition --------------------------------------------------------------


@pytest.fixture
def alice_sets(butler_repo, owner):
    from tagging.services import UploadSource, dataidset_create
    from tests.tagging.helpers import ids

    def make(name: str, visibility: str):
        return dataidset_create(
            user=owner,
            repo_label="demo",
            name=name,
            reason="r",
            source=UploadSource(kind="records", records=ids([150, 151], [0])),
            visibility=visibility,
        )

    return make("psf-secret", "private"), make("psf-public", "public")


def _refused_sets(user, field: str, name: str) -> dict:
    value = {"dataid_set": name} if field == "input_selection" else [name]
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(user=user, data=definition(name=f"uses-{name}", **{field: value}))
    return caught.value.message_dict


@pytest.mark.parametrize("field", ["include_sets", "exclude_sets", "input_selection"])
def test_a_private_set_of_someone_else_reads_as_missing_in_a_definition(alice_sets, make_campaign, other_staff, field):
    secret = _refused_sets(other_staff, field, "psf-secret")
    missing = _refused_sets(other_staff, field, "never-made")
    assert neutral(json.dumps(secret), "psf-secret") == neutral(json.dumps(missing), "never-made")
    assert "No DataID set 'psf-secret' in repo demo." in json.dumps(secret)
    assert not Campaign.objects.filter(name__startswith="uses-").exists()  # nothing made from a private set


def test_sets_one_may_see_are_named_as_before(alice_sets, make_campaign, owner, other_staff):
    mine = make_campaign(name="alice-uses-secret", include_sets=["psf-secret"])
    assert mine.include_sets == [{"dataid_set": "psf-secret", "version": 1}]
    theirs = make_campaign(user=other_staff, name="bob-uses-public", exclude_sets=["psf-public"])
    assert theirs.exclude_sets == [{"dataid_set": "psf-public", "version": 1}]


def test_a_collaborator_edits_a_campaign_that_names_the_owners_private_set(alice_sets, make_campaign, other_staff):
    campaign = make_campaign(name="shared-work", include_sets=["psf-secret"], collaborators=["bob"])
    edited = services.campaign_update(
        user=other_staff, campaign_id=campaign.pk, version=campaign.version, data={"reason": "scope grew"}
    )
    assert edited.reason == "scope grew" and edited.include_sets == [{"dataid_set": "psf-secret", "version": 1}]
