"""The write services: history, versions, conflicts, status rules, archive, clone, sharing and validation."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import Client
from guardian.core import ObjectPermissionChecker

from campaigns import selectors, services
from campaigns.choices import CampaignStatus, HistoryAction
from campaigns.definition import snapshot
from campaigns.models import Campaign, HistoryEntry
from core.errors import ConflictError
from tests.campaigns.helpers import db_state, edit_form_data
from tests.conftest import definition


def _errors(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# ---------------------------------------------------------------- create
def test_creating_a_campaign_records_a_history_entry_with_every_set_field(owner, demo_repo):
    campaign = services.campaign_create(user=owner, data=definition(description="Hello"), comment="first try")
    entry = campaign.history.get()
    assert entry.action == HistoryAction.CREATE
    assert entry.actor == owner
    assert entry.version == 1 == campaign.version
    assert entry.comment == "first try"
    assert entry.changes["name"] == [None, "w48-minidrp"]
    assert entry.changes["description"] == [None, "Hello"]
    assert entry.changes["owner"] == [None, "alice"]
    assert entry.changes["steps"][1] == snapshot(campaign)["steps"]
    assert "scope" not in entry.changes  # empty values are not listed


def test_creating_a_campaign_makes_the_creator_definer_and_owner_with_object_permissions(owner, demo_repo):
    campaign = services.campaign_create(user=owner, data=definition())
    assert campaign.definer == owner == campaign.owner
    assert campaign.status == CampaignStatus.DRAFT
    checker = ObjectPermissionChecker(owner)
    assert set(checker.get_perms(campaign)) == {"view_campaign", "change_campaign"}
    assert owner.has_perm("campaigns.change_campaign", campaign)


def test_creating_a_campaign_for_another_owner_grants_that_owner(owner, other_staff, demo_repo):
    campaign = services.campaign_create(user=owner, data=definition(owner="bob"))
    assert (campaign.definer, campaign.owner) == (owner, other_staff)
    assert set(ObjectPermissionChecker(other_staff).get_perms(campaign)) == {"view_campaign", "change_campaign"}


def test_creating_writes_the_steps_in_order_with_their_dependencies(campaign):
    steps = list(campaign.steps.order_by("position"))
    assert [(s.name, s.position, s.requires_approval) for s in steps] == [("step1", 0, False), ("step2", 1, True)]
    assert [d.name for d in steps[1].depends_on.all()] == ["step1"]


@pytest.mark.parametrize("user_fixture", ["science_user", "outsider"])
def test_only_staff_may_create_a_campaign(request, user_fixture, demo_repo):
    user = request.getfixturevalue(user_fixture)
    before = db_state()
    with pytest.raises(PermissionDenied):
        services.campaign_create(user=user, data=definition())
    assert db_state() == before


# ---------------------------------------------------------------- update
def test_an_edit_records_a_field_level_diff_with_the_comment_and_bumps_the_version(owner, campaign):
    updated = services.campaign_update(
        user=owner,
        campaign_id=campaign.pk,
        version=1,
        data={"reason": "A better reason", "bps": {"request_memory": 4096}},
        comment="PSF team asked",
    )
    assert updated.version == 2
    entry = campaign.history.filter(action=HistoryAction.EDIT).get()
    assert entry.changes == {
        "reason": ["Check the new PSF model on one week of data", "A better reason"],
        "bps": [{}, {"request_memory": 4096}],
    }
    assert entry.comment == "PSF team asked"
    assert entry.version == 2
    assert entry.actor == owner
    campaign.refresh_from_db()
    assert (campaign.reason, campaign.bps, campaign.version) == ("A better reason", {"request_memory": 4096}, 2)


def test_an_edit_that_changes_nothing_does_not_bump_the_version_or_add_history(owner, campaign):
    history = campaign.history.count()
    same = snapshot(campaign)
    updated = services.campaign_update(user=owner, campaign_id=campaign.pk, version=1, data=same, comment="no-op")
    assert updated.version == 1
    campaign.refresh_from_db()
    assert campaign.version == 1
    assert campaign.history.count() == history


def test_an_edit_through_the_page_with_nothing_changed_says_so(owner, campaign):
    client = Client()
    client.force_login(owner)
    response = client.post(f"/campaigns/{campaign.pk}/edit/", edit_form_data(campaign), follow=True)
    assert "Nothing changed." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.version == 1


def test_an_edit_can_replace_the_steps_while_the_campaign_is_a_draft(owner, campaign):
    services.campaign_update(
        user=owner,
        campaign_id=campaign.pk,
        version=1,
        data={"steps": [{"name": "only", "pipeline_subset": "all"}]},
    )
    assert list(campaign.steps.values_list("name", flat=True)) == ["only"]
    entry = campaign.history.filter(action=HistoryAction.EDIT).get()
    assert list(entry.changes) == ["steps"]


def test_steps_cannot_change_once_the_campaign_runs(owner, campaign):
    for status in ("ready", "running"):
        services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=status)
    campaign.refresh_from_db()
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_update(
            user=owner, campaign_id=campaign.pk, version=campaign.version, data={"steps": [{"name": "other"}]}
        )
    assert "steps" in _errors(excinfo)
    assert db_state() == before


def test_an_edit_without_a_version_is_refused(owner, campaign, api):
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_update(user=owner, campaign_id=campaign.pk, version=None, data={"reason": "x"})
    assert "version" in _errors(excinfo)
    response = api(owner).patch(f"/api/v1/campaigns/{campaign.pk}/", {"reason": "x"}, format="json")
    assert response.status_code == 400
    assert "version" in response.json()


# ---------------------------------------------------------------- stale versions
@pytest.fixture
def shared_campaign(make_campaign):
    """A campaign owned by alice with bob as collaborator: two people who may edit it."""
    return make_campaign(collaborators=["bob"])


def test_a_stale_edit_is_refused_with_who_changed_which_field(owner, other_staff, shared_campaign):
    services.campaign_update(
        user=other_staff, campaign_id=shared_campaign.pk, version=1, data={"reason": "Bob's reason"}
    )
    before = db_state()
    with pytest.raises(ConflictError) as excinfo:
        services.campaign_update(user=owner, campaign_id=shared_campaign.pk, version=1, data={"scope": "tract 9813"})
    message = str(excinfo.value)
    assert "bob changed reason" in message
    assert "version 2" in message
    assert "Reload" in message
    assert excinfo.value.extra["current_version"] == 2
    assert excinfo.value.extra["changes"][0]["by"] == "bob"
    assert excinfo.value.extra["changes"][0]["fields"] == ["reason"]
    assert db_state() == before


def test_a_stale_edit_through_the_api_is_a_409_with_json_naming_who_changed_what(
    owner, other_staff, shared_campaign, api
):
    assert (
        api(other_staff)
        .patch(f"/api/v1/campaigns/{shared_campaign.pk}/", {"version": 1, "reason": "Bob's"}, format="json")
        .status_code
        == 200
    )
    before = db_state()
    response = api(owner).patch(
        f"/api/v1/campaigns/{shared_campaign.pk}/", {"version": 1, "scope": "tract 9813"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "stale_version"
    assert body["current_version"] == 2
    assert "bob changed reason" in body["detail"]
    assert body["changes"][0]["fields"] == ["reason"]
    assert db_state() == before


def test_a_stale_edit_through_the_page_shows_the_conflict_and_saves_nothing(owner, other_staff, shared_campaign):
    stale_form = edit_form_data(shared_campaign, scope="tract 9813")
    services.campaign_update(user=other_staff, campaign_id=shared_campaign.pk, version=1, data={"reason": "Bob's"})
    client = Client()
    client.force_login(owner)
    before = db_state()
    response = client.post(f"/campaigns/{shared_campaign.pk}/edit/", stale_form)
    assert response.status_code == 200
    assert "bob changed reason" in response.content.decode()
    assert db_state() == before


def test_a_status_change_based_on_a_stale_version_is_refused(owner, other_staff, shared_campaign):
    services.campaign_update(user=other_staff, campaign_id=shared_campaign.pk, version=1, data={"reason": "x"})
    with pytest.raises(ConflictError):
        services.campaign_set_status(user=owner, campaign_id=shared_campaign.pk, status="ready", version=1)
    shared_campaign.refresh_from_db()
    assert shared_campaign.status == "draft"


# ---------------------------------------------------------------- status
_PATH_TO = {
    "draft": [],
    "ready": ["ready"],
    "running": ["ready", "running"],
    "paused": ["ready", "running", "paused"],
    "failed": ["ready", "running", "failed"],
    "succeeded": ["ready", "running", "succeeded"],
    "cancelled": ["cancelled"],
}


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("draft", "ready", True),
        ("draft", "cancelled", True),
        ("draft", "running", False),
        ("draft", "succeeded", False),
        ("ready", "running", True),
        ("ready", "draft", True),
        ("ready", "paused", False),
        ("running", "paused", True),
        ("running", "succeeded", True),
        ("running", "failed", True),
        ("running", "draft", False),
        ("paused", "running", True),
        ("paused", "succeeded", False),
        ("failed", "running", True),
        ("failed", "succeeded", False),
        ("succeeded", "running", False),
        ("succeeded", "draft", False),
        ("cancelled", "draft", True),
        ("cancelled", "running", False),
    ],
)
def test_status_transitions_follow_the_table(owner, campaign, start, target, allowed):
    for status in _PATH_TO[start]:
        services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=status)
    campaign.refresh_from_db()
    assert campaign.status == start
    version = campaign.version
    if allowed:
        services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=target, comment="go")
        campaign.refresh_from_db()
        assert (campaign.status, campaign.version) == (target, version + 1)
        entry = campaign.history.order_by("-pk").first()
        assert (entry.action, entry.changes, entry.comment) == (HistoryAction.STATUS, {"status": [start, target]}, "go")
    else:
        before = db_state()
        with pytest.raises(ValidationError) as excinfo:
            services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=target)
        assert f"cannot become {target}" in _errors(excinfo)["status"][0]
        assert db_state() == before


def test_an_unknown_status_is_refused(owner, campaign):
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_set_status(user=owner, campaign_id=campaign.pk, status="exploded")
    assert "status" in _errors(excinfo)


def test_a_refused_transition_through_the_api_is_a_400_naming_status(owner, campaign, api):
    response = api(owner).post(f"/api/v1/campaigns/{campaign.pk}/status/", {"status": "succeeded"}, format="json")
    assert response.status_code == 400
    assert "cannot become succeeded" in response.json()["status"][0]


# ---------------------------------------------------------------- archive
def test_an_archived_campaign_leaves_the_default_list_but_archived_all_shows_it(owner, campaign, make_campaign, api):
    make_campaign(name="still-here")
    services.campaign_archive(user=owner, campaign_id=campaign.pk, comment="done with it")
    campaign.refresh_from_db()
    assert campaign.archived and campaign.version == 2
    assert campaign.history.order_by("-pk").first().action == HistoryAction.ARCHIVE

    def names(filters):
        return {c.name for c in selectors.campaign_list(user=owner, filters=filters)}

    assert names({}) == {"still-here"}
    assert names({"archived": "all"}) == {"still-here", "w48-minidrp"}
    assert names({"archived": "yes"}) == {"w48-minidrp"}
    client = api(owner)
    assert {r["name"] for r in client.get("/api/v1/campaigns/").json()["results"]} == {"still-here"}
    assert {r["name"] for r in client.get("/api/v1/campaigns/?archived=all").json()["results"]} == {
        "still-here",
        "w48-minidrp",
    }
    page = Client()
    page.force_login(owner)
    assert {c.name for c in page.get("/campaigns/").context["page"].object_list} == {"still-here"}
    assert {c.name for c in page.get("/campaigns/?archived=all").context["page"].object_list} == {
        "still-here",
        "w48-minidrp",
    }


def test_an_archived_campaign_can_be_restored(owner, campaign, api):
    services.campaign_archive(user=owner, campaign_id=campaign.pk)
    response = api(owner).post(f"/api/v1/campaigns/{campaign.pk}/restore/")
    assert response.status_code == 200
    assert response.json() == {"archived": False}
    assert {c.name for c in selectors.campaign_list(user=owner)} == {"w48-minidrp"}
    assert campaign.history.order_by("-pk").first().action == HistoryAction.UNARCHIVE


def test_a_running_campaign_cannot_be_archived(owner, campaign, api):
    for status in ("ready", "running"):
        services.campaign_set_status(user=owner, campaign_id=campaign.pk, status=status)
    before = db_state()
    response = api(owner).delete(f"/api/v1/campaigns/{campaign.pk}/")
    assert response.status_code == 400
    assert "archived" in response.json()
    assert db_state() == before


def test_archive_through_the_api_delete_keeps_the_row(owner, campaign, api):
    assert api(owner).delete(f"/api/v1/campaigns/{campaign.pk}/?comment=bye").status_code == 204
    campaign.refresh_from_db()
    assert campaign.archived
    assert campaign.history.order_by("-pk").first().comment == "bye"


# ---------------------------------------------------------------- clone
def test_a_clone_copies_the_definition_and_steps_as_a_new_draft_owned_by_the_cloner(owner, other_staff, make_campaign):
    source = make_campaign(bps={"request_memory": 2048}, scope="tracts 1-3")
    services.campaign_set_status(user=owner, campaign_id=source.pk, status="ready")
    clone = services.campaign_clone(user=other_staff, campaign_id=source.pk, name="w48-copy")
    assert clone.pk != source.pk
    assert (clone.owner, clone.definer, clone.status, clone.version) == (other_staff, other_staff, "draft", 1)
    old, new = snapshot(source), snapshot(clone)
    assert new["steps"] == old["steps"]
    assert new["steps"][1]["depends_on"] == ["step1"]
    for key in ("bps", "scope", "pipeline", "data_query", "input_collections", "butler_repo"):
        assert new[key] == old[key]
    assert "Cloned from w48-minidrp (version 2)" in clone.history.get().comment
    assert source.steps.count() == 2  # the source keeps its own steps


def test_a_clone_gets_its_own_output_collection_derived_from_its_name(owner, other_staff, make_campaign):
    launched = make_campaign(output_collection="u/alice/w48-minidrp")  # as a launch records it
    copy = services.campaign_clone(user=other_staff, campaign_id=launched.pk, name="w49-minidrp")
    assert copy.output_collection == "u/bob/w49-minidrp"  # the cloner's default, as its launch would make it
    custom = make_campaign(name="hsc-rc2", output_collection="HSC/runs/RC2/hsc-rc2/DM-1234")
    copy = services.campaign_clone(user=owner, campaign_id=custom.pk, name="hsc-rc2-bis")
    assert copy.output_collection == "HSC/runs/RC2/hsc-rc2-bis/DM-1234"  # the name replaced where it stood
    fixed = make_campaign(name="fixed", output_collection="HSC/runs/shared")
    assert services.campaign_clone(user=owner, campaign_id=fixed.pk, name="again").output_collection == "u/alice/again"
    chosen = services.campaign_clone(
        user=owner, campaign_id=fixed.pk, name="chosen", output_collection="HSC/runs/chosen"
    )
    assert chosen.output_collection == "HSC/runs/chosen"


def test_a_clone_cannot_write_to_the_collection_of_its_source_or_another_campaign(owner, make_campaign):
    source = make_campaign(output_collection="u/alice/w48-minidrp")
    make_campaign(name="other", output_collection="u/alice/other-out")
    for taken in ("u/alice/w48-minidrp", "u/alice/other-out"):
        before = db_state()
        with pytest.raises(ValidationError) as excinfo:
            services.campaign_clone(user=owner, campaign_id=source.pk, name="copy", output_collection=taken)
        assert "output collection of another campaign" in _errors(excinfo)["output_collection"][0]
        assert db_state() == before
    # Not launched yet: the source will write to its default, u/<owner>/<name>.
    fresh = make_campaign(name="fresh")
    with pytest.raises(ValidationError):
        services.campaign_clone(user=owner, campaign_id=fresh.pk, name="copy", output_collection="u/alice/fresh")


def test_a_clone_needs_a_free_name(owner, campaign):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_clone(user=owner, campaign_id=campaign.pk, name="W48-MiniDRP")
    assert "name" in _errors(excinfo)
    assert db_state() == before


# ---------------------------------------------------------------- sharing
def test_sharing_a_private_campaign_lets_a_user_see_it_and_unsharing_hides_it_again(owner, other_staff, make_campaign):
    private = make_campaign(visibility="private")
    with pytest.raises(Http404):
        selectors.access_campaign(other_staff, private.pk)
    services.campaign_share(user=owner, campaign_id=private.pk, username="bob", permission="view")
    assert selectors.access_campaign(other_staff, private.pk) == private
    with pytest.raises(PermissionDenied):
        selectors.access_campaign(other_staff, private.pk, "change")
    entry = private.history.order_by("-pk").first()
    assert entry.action == HistoryAction.SHARE
    assert entry.changes == {"sharing": [None, "view granted for user bob"]}

    services.campaign_share(user=owner, campaign_id=private.pk, username="bob", permission="view", grant=False)
    with pytest.raises(Http404):
        selectors.access_campaign(other_staff, private.pk)
    assert private.history.order_by("-pk").first().changes == {"sharing": [None, "view revoked for user bob"]}


def test_sharing_for_change_lets_a_staff_user_edit(owner, other_staff, make_campaign):
    private = make_campaign(visibility="private")
    services.campaign_share(user=owner, campaign_id=private.pk, username="bob", permission="change")
    private.refresh_from_db()
    services.campaign_update(user=other_staff, campaign_id=private.pk, version=private.version, data={"scope": "all"})
    private.refresh_from_db()
    assert private.scope == "all"
    services.campaign_share(user=owner, campaign_id=private.pk, username="bob", permission="change", grant=False)
    services.campaign_share(user=owner, campaign_id=private.pk, username="bob", permission="view", grant=False)
    with pytest.raises(Http404):
        selectors.access_campaign(other_staff, private.pk, "change")


def test_sharing_with_a_group_reaches_its_members(owner, science_user, make_campaign):
    private = make_campaign(visibility="private")
    services.campaign_share(user=owner, campaign_id=private.pk, group="science", permission="view")
    assert selectors.access_campaign(science_user, private.pk) == private
    assert private in selectors.campaign_list(user=science_user)


def test_sharing_with_change_never_lets_a_science_user_write(owner, science_user, make_campaign):
    private = make_campaign(visibility="private")
    services.campaign_share(user=owner, campaign_id=private.pk, username="carol", permission="change")
    assert selectors.access_campaign(science_user, private.pk) == private
    with pytest.raises(PermissionDenied):
        services.campaign_update(user=science_user, campaign_id=private.pk, version=2, data={"scope": "x"})


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"username": "nobody"}, "username"),
        ({"group": "no-such-group"}, "group"),
        ({}, "username"),
        ({"username": "bob", "group": "staff"}, "username"),
        ({"username": "bob", "permission": "delete"}, "permission"),
    ],
)
def test_a_bad_share_names_the_field_and_changes_nothing(owner, other_staff, campaign, kwargs, key):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_share(user=owner, campaign_id=campaign.pk, **kwargs)
    assert key in _errors(excinfo)
    assert db_state() == before


# ---------------------------------------------------------------- steps
def test_a_step_may_only_depend_on_an_earlier_step(owner, demo_repo):
    steps = [{"name": "step1", "depends_on": ["step2"]}, {"name": "step2"}]
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_create(user=owner, data=definition(steps=steps))
    assert "'step2' is not an earlier step" in _errors(excinfo)["steps[0].depends_on"][0]
    assert db_state() == before


def test_a_dependency_on_an_unknown_step_is_named_by_its_path(owner, demo_repo):
    steps = [{"name": "step1"}, {"name": "step2", "depends_on": ["step1", "stepX"]}]
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_create(user=owner, data=definition(steps=steps))
    assert list(_errors(excinfo)) == ["steps[1].depends_on"]
    assert "'stepX'" in _errors(excinfo)["steps[1].depends_on"][0]
    assert not Campaign.objects.exists()


def test_a_step_cannot_depend_on_itself(owner, demo_repo):
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_create(user=owner, data=definition(steps=[{"name": "s", "depends_on": ["s"]}]))
    assert "itself" in _errors(excinfo)["steps[0].depends_on"][0]


def test_two_steps_cannot_share_a_name(owner, demo_repo):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_create(user=owner, data=definition(steps=[{"name": "a"}, {"name": "b"}, {"name": "a"}]))
    assert "already named 'a'" in _errors(excinfo)["steps[2].name"][0]
    assert db_state() == before


def test_a_step_error_lands_on_its_row_in_the_page_form(owner, campaign):
    client = Client()
    client.force_login(owner)
    data = edit_form_data(campaign, steps=[{"name": "step1"}, {"name": "step2", "depends_on": ["nope"]}])
    before = db_state()
    response = client.post(f"/campaigns/{campaign.pk}/edit/", data)
    assert response.status_code == 200
    formset = response.context["formset"]
    assert "'nope' is not an earlier step" in formset.forms[1].errors["depends_on"][0]
    assert db_state() == before


# ---------------------------------------------------------------- bad input: named field, nothing saved
@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        pytest.param({"name": "W48-MINIDRP"}, "name", "is not available", id="duplicate-name-other-case"),
        pytest.param({"name": "w48 minidrp"}, "name", "no spaces", id="name-with-space"),
        pytest.param({"name": "a/b"}, "name", "slashes", id="name-with-slash"),
        pytest.param({"campaign_type": "party"}, "campaign_type", "'party' is not one of", id="unknown-type"),
        pytest.param({"butler_repo": "nowhere"}, "butler_repo", "Unknown Butler repo 'nowhere'", id="unknown-repo"),
        pytest.param(
            {"data_query": "instrument = = 'DemoCam'"},
            "data_query",
            "Not a valid Butler 'where' expression: Syntax error near '='",
            id="bad-where",
        ),
        pytest.param({"data_query": "visit >"}, "data_query", "Not a valid Butler 'where'", id="truncated-where"),
        pytest.param({"bps": {"request_memroy": 4096}}, "bps.request_memroy", "Unknown key", id="unknown-bps-key"),
        pytest.param({"bps": {"request_memory": -1}}, "bps.request_memory", "positive", id="negative-memory"),
        pytest.param({"bps": {"wms": "slurm"}}, "bps.wms", "'slurm' is not one of", id="unknown-wms"),
        pytest.param(
            {"links": [{"label": "ok", "url": "https://example.org"}, {"label": "bad", "url": "javascript:alert(1)"}]},
            "links[1].url",
            "not an http(s) URL",
            id="bad-link-url",
        ),
        pytest.param({"owner": "nobody"}, "owner", "No active user 'nobody'", id="unknown-owner"),
        pytest.param({"owner": "carol"}, "owner", "not a staff member", id="science-owner"),
        pytest.param({"collaborators": ["ghost"]}, "collaborators[0]", "No active user", id="unknown-collaborator"),
        pytest.param({"colour": "red"}, "colour", "Unknown field 'colour'", id="unknown-top-level-key"),
        pytest.param({"reason": ""}, "reason", "required", id="missing-reason"),
        pytest.param({"output_collection": "u/alice/with space"}, "output_collection", "spaces", id="bad-output"),
        pytest.param({"visibility": "secret"}, "visibility", "not one of", id="unknown-visibility"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(owner, science_user, campaign, overrides, key, fragment):
    """``campaign`` exists first so that a duplicate name can clash; every other case fails on its own."""
    data = definition(**{"name": "second-one", **overrides})
    before = db_state()
    campaigns, history = Campaign.objects.count(), HistoryEntry.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_create(user=owner, data=data)
    errors = _errors(excinfo)
    assert key in errors, errors
    assert any(fragment in message for message in errors[key]), errors[key]
    assert (Campaign.objects.count(), HistoryEntry.objects.count()) == (campaigns, history)
    assert db_state() == before


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"name": "W48-MINIDRP"}, "name"),
        ({"butler_repo": "nowhere"}, "butler_repo"),
        ({"data_query": "band IN ('g'"}, "data_query"),
        ({"bps": {"request_memroy": 1}}, "bps.request_memroy"),
        ({"links": [{"label": "x", "url": "https://example.org", "href": "y"}]}, "links[0].href"),
        ({"steps": [{"name": "a"}, {"name": "b", "depends-on": ["a"]}]}, "steps[1].depends-on"),
        ({"links": [{"label": "x", "url": "ftp://example.org"}]}, "links[0].url"),
        ({"owner": "carol"}, "owner"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_through_the_api_is_a_400_naming_the_field_and_saves_nothing(
    owner, science_user, campaign, api, payload, key
):
    data = definition(**{"name": "second-one", **payload})
    before = db_state()
    response = api(owner).post("/api/v1/campaigns/", data, format="json")
    assert response.status_code == 400
    body = response.json()
    assert key in body or any(k.startswith(key) for k in body), body
    assert db_state() == before


def test_a_bad_edit_names_the_field_and_saves_nothing(owner, campaign, make_campaign, api):
    make_campaign(name="taken")
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_update(
            user=owner,
            campaign_id=campaign.pk,
            version=1,
            data={"name": "TAKEN", "links": [{"label": "x", "url": "notaurl"}]},
        )
    assert set(_errors(excinfo)) == {"name", "links[0].url"}
    response = api(owner).patch(f"/api/v1/campaigns/{campaign.pk}/", {"version": 1, "colour": "red"}, format="json")
    assert response.status_code == 400
    assert "colour" in response.json()
    assert db_state() == before


def test_renaming_a_campaign_to_its_own_name_in_another_case_is_allowed(owner, campaign):
    services.campaign_update(user=owner, campaign_id=campaign.pk, version=1, data={"name": "W48-minidrp"})
    campaign.refresh_from_db()
    assert campaign.name == "W48-minidrp"
