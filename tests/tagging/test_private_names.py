"""Names of private DataID sets and tag tables do not leak: another staff member who takes a name held by a
private object gets exactly the answer they get for a name held by one they can see (core.names), and a
science user or an outsider is refused for their role before any name is looked at."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from tagging.models import DataIdSet, TagTable
from tagging.services import dataidset_algebra
from tagging.services.tagtables import tagtable_update
from tests.tagging.helpers import ids
from tests.tagging.tagtable_helpers import COLUMNS, make_table

pytestmark = pytest.mark.django_db

SETS = "/api/v1/dataid-sets/"
TABLES = "/api/v1/tag-tables/"


def neutral(text: str, name: str) -> str:
    """The answer with the name taken out, to compare the answers about two names."""
    return text.replace(name, "NAME")


@pytest.fixture
def sets(make_set, owner):
    """alice's private set and her public one (which others see but may not change)."""
    make_set("psf-secret", ids([150], [0]), visibility="private")
    make_set("psf-public", ids([150], [1]), visibility="public")
    return DataIdSet.objects.get(name="psf-secret"), DataIdSet.objects.get(name="psf-public")


def upload(client, name: str):
    return client.post(SETS, {"name": name, "repo": "demo", "reason": "r", "data_ids": ids([151], [0])}, format="json")


def test_uploading_to_the_name_of_a_private_set_reads_like_any_taken_name(api, sets, other_staff):
    secret, public = (upload(api(other_staff), name) for name in ("psf-secret", "psf-public"))
    assert secret.status_code == public.status_code == 400
    assert neutral(json.dumps(secret.json()), "psf-secret") == neutral(json.dumps(public.json()), "psf-public")
    message = secret.json()["name"][0]
    assert message.startswith("The name 'psf-secret' is not available in demo: choose another.")
    assert "alice" not in message and "private" not in message
    assert [s.versions.count() for s in sets] == [1, 1]  # nothing added to either


def test_a_set_made_by_set_algebra_cannot_probe_names_either(make_set, sets, other_staff):
    mine = [make_set(f"bob-{n}", ids([n], [0]), user=other_staff) for n in (152, 153)]
    parents = [version.pk for version in mine]
    answers = []
    for name in ("psf-secret", "psf-public", "bob-152"):
        with pytest.raises(ValidationError) as caught:
            dataidset_algebra(user=other_staff, operation="union", parent_version_ids=parents, name=name, reason="r")
        answers.append(neutral(caught.value.message_dict["name"][0], name))
    assert len(set(answers)) == 1  # the same for a private, a visible and one's own set


def test_the_private_set_stays_invisible_to_other_staff(api, sets, other_staff):
    client = api(other_staff)
    assert client.get(SETS, {"name": "psf-secret"}).json()["count"] == 0
    assert client.get(f"{SETS}{sets[0].pk}/").status_code == 404


@pytest.mark.parametrize("who", ["science_user", "outsider"])
def test_science_users_and_outsiders_are_refused_before_any_name_is_looked_at(api, sets, request, who):
    client = api(request.getfixturevalue(who))
    taken, free = upload(client, "psf-secret"), upload(client, "never-used")
    assert taken.status_code == free.status_code == 403
    assert taken.json() == free.json()
    table_taken = client.post(TABLES, table_body("psf-secret"), format="json")
    table_free = client.post(TABLES, table_body("never-used"), format="json")
    assert table_taken.status_code == table_free.status_code == 403
    assert table_taken.json() == table_free.json()


# --- tag tables ----------------------------------------------------------------------------------


def table_body(name: str) -> dict:
    return {"repo": "demo", "name": name, "key_dimensions": ["exposure"], "columns": COLUMNS, "polarity": "reject"}


@pytest.fixture
def tables(butler_repo, owner):
    return make_table(owner, name="wonky-secret"), make_table(owner, name="wonky-public", visibility="public")


def test_creating_a_tag_table_with_a_private_tables_name_reads_like_any_taken_name(api, tables, other_staff):
    secret = api(other_staff).post(TABLES, table_body("wonky-secret"), format="json")
    public = api(other_staff).post(TABLES, table_body("wonky-public"), format="json")
    assert secret.status_code == public.status_code == 400
    assert neutral(json.dumps(secret.json()), "wonky-secret") == neutral(json.dumps(public.json()), "wonky-public")
    assert secret.json()["name"] == ["The name 'wonky-secret' is not available in demo: choose another."]
    assert TagTable.objects.count() == 2


def test_renaming_a_tag_table_to_a_private_tables_name_reads_like_any_taken_name(tables, other_staff):
    mine = make_table(other_staff, name="bob-table")
    answers = []
    for name in ("wonky-secret", "wonky-public"):
        with pytest.raises(ValidationError) as caught:
            tagtable_update(user=other_staff, table_id=mine.pk, version=mine.version, changes={"name": name})
        answers.append(neutral(caught.value.message_dict["name"][0], name))
    assert answers[0] == answers[1]
    mine.refresh_from_db()
    assert mine.name == "bob-table"


def test_the_owner_still_finds_their_table_and_set_by_name(api, tables, sets, owner):
    assert [t["name"] for t in api(owner).get(TABLES, {"name": "wonky-secret"}).json()["results"]] == ["wonky-secret"]
    assert api(owner).get(SETS, {"name": "psf-secret"}).json()["count"] == 1
