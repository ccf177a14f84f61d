"""A step's split is part of the campaign definition: every rule survives YAML export and import unchanged,
the API, the form, a clone and a recurring schedule carry it, a change shows in the history, and a bad rule
is refused with the dotted path of the part at fault. (Whether the groups of a split cover the data exactly
once needs the registry: tests/execution/test_split_plans.py.)"""

from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.execution import step_split_set
from campaigns.models import Step
from campaigns.splits import describe
from campaigns.yaml_io import campaign_to_yaml, parse_campaign_yaml
from tagging.services.dataids import UploadSource, dataidset_create
from tests.conftest import definition

pytestmark = pytest.mark.django_db

EVERY_RULE = [
    {"name": "nights", "pipeline_subset": "step1"},
    {
        "name": "exposures",
        "pipeline_subset": "step1",
        "where": "exposure.observation_type = 'science'",
        "split": {"by": "exposure", "max_size": 20},
    },
    {"name": "visits", "pipeline_subset": "step2", "depends_on": ["exposures"], "split": {"by": "visit", "max_size": 7}},
    {"name": "detectors", "pipeline_subset": "step1", "split": {"by": "detector", "max_size": 3}},
    {"name": "bands", "pipeline_subset": "step1", "split": {"by": "band"}},
    {
        "name": "coadds",
        "pipeline_subset": "step3",
        "depends_on": ["visits"],
        "requires_approval": True,
        "where": "band IN ('g', 'r')",
        "split": {"by": "tract", "skymap": "hsc_rings_v1", "max_size": 9},
    },
    {"name": "tracts", "pipeline_subset": "step4", "depends_on": ["coadds"], "split": {"by": "tract", "skymap": "demo_sky_v1"}},
    {
        "name": "fields",
        "pipeline_subset": "step1",
        "split": {
            "by": "list",
            "groups": [
                {"name": "deep-a", "where": "exposure.target_name = 'DEEP-A'"},
                {"name": "the-rest", "where": "exposure.target_name != 'DEEP-A'"},
            ],
        },
    },
    {"name": "chunks", "pipeline_subset": "step1", "split": {"by": "dataid_set", "dataid_set": "w48-good", "version": 1, "max_size": 500}},
]  # fmt: skip


@pytest.fixture
def good_set(owner, butler_repo):
    """Version 1 of a DataID set of the session's real repo (a dataid_set split pins it)."""
    return dataidset_create(
        user=owner,
        repo_label="demo",
        name="w48-good",
        reason="good seeing",
        source=UploadSource(
            kind="records",
            records=[{"instrument": "DemoCam", "exposure": 2025112100150}],
            dimensions=["instrument", "exposure"],
        ),
        visibility="public",
    )


def test_every_split_rule_survives_yaml_export_and_import_unchanged(owner, butler_repo, good_set):
    campaign = services.campaign_create(user=owner, data=definition(name="every-rule", steps=EVERY_RULE))
    exported = campaign_to_yaml(campaign)
    steps = yaml.safe_load(exported)["steps"]
    assert [s.get("split") for s in steps] == [s.get("split") for s in EVERY_RULE]
    assert [s.get("where") for s in steps] == [s.get("where") for s in EVERY_RULE]
    assert "split" not in steps[0]  # the default (one group per night) is left out, as in older files

    again = services.campaign_create(user=owner, data={**parse_campaign_yaml(exported), "name": "every-rule-2"})
    assert campaign_to_yaml(again) == exported.replace("name: every-rule\n", "name: every-rule-2\n", 1)
    stored = {s.name: s.split for s in Step.objects.filter(campaign=again)}
    assert stored["nights"] == {"by": "night"} and stored["coadds"]["skymap"] == "hsc_rings_v1"


def test_shorthand_and_defaults_are_written_in_their_normal_form(owner, butler_repo, good_set):
    steps = [
        {"name": "a", "split": "band"},
        {"name": "b", "split": {"by": "visit"}},
        {"name": "c", "split": {"max_size": "12", "by": "detector"}},
        {"name": "d", "split": {"by": "dataid_set", "dataid_set": "w48-good"}},
        {"name": "e", "split": {"by": "night"}},
    ]
    campaign = services.campaign_create(user=owner, data=definition(name="shorthand", steps=steps))
    exported = yaml.safe_load(campaign_to_yaml(campaign))["steps"]
    assert [s.get("split") for s in exported] == [
        {"by": "band"},
        {"by": "visit", "max_size": 50},
        {"by": "detector", "max_size": 12},
        {"by": "dataid_set", "dataid_set": "w48-good", "version": 1, "max_size": 1000},  # pinned to the latest
        None,
    ]


@pytest.mark.parametrize(
    ("split", "path", "words"),
    [
        ({"by": "tract"}, "steps[1].split.skymap", "needs 'skymap'"),
        ({"by": "tract", "skymap": "it's"}, "steps[1].split.skymap", "not a skymap name"),
        ({"by": "exposure", "max_size": 0}, "steps[1].split.max_size", "from 1 to"),
        ({"by": "visit", "max_size": "lots"}, "steps[1].split.max_size", "positive whole number"),
        ({"by": "visit", "max_size": True}, "steps[1].split.max_size", "positive whole number"),
        ({"by": "night", "max_size": 5}, "steps[1].split.max_size", "does not take 'max_size'"),
        ({"by": "band", "skymap": "x"}, "steps[1].split.skymap", "does not take 'skymap'"),
        ({"by": "moon"}, "steps[1].split.by", "'moon' is not a split rule"),
        ({"max_size": 5}, "steps[1].split.by", "Say how the step is cut"),
        (["night"], "steps[1].split", "Must be a mapping"),
        ({"by": "list"}, "steps[1].split.groups", "needs 'groups'"),
        ({"by": "list", "groups": "a, b"}, "steps[1].split.groups", "non-empty list of groups"),
        (
            {"by": "list", "groups": [{"name": "a", "where": "x = 1"}, {"name": "b", "where": "x = 2"}, {"name": "c"}]},
            "steps[1].split.groups[2].where",
            "non-empty Butler 'where'",
        ),
        (
            {"by": "list", "groups": [{"name": "a", "where": "x = 1"}, {"name": "b", "where": "x = = 2"}]},
            "steps[1].split.groups[1].where",
            "Not a valid Butler 'where' expression",
        ),
        (
            {"by": "list", "groups": [{"name": "a", "where": "x = 1"}, {"name": "a", "where": "x = 2"}]},
            "steps[1].split.groups[1].name",
            "used by another group",
        ),
        ({"by": "list", "groups": [{"name": "a b", "where": "x = 1"}]}, "steps[1].split.groups[0].name", "no spaces"),
        ({"by": "list", "groups": [{"name": "a", "where": "x = 1", "size": 3}]}, "steps[1].split.groups[0].size", "Unknown key"),
        ({"by": "dataid_set"}, "steps[1].split.dataid_set", "needs 'dataid_set'"),
        ({"by": "dataid_set", "dataid_set": "nope"}, "steps[1].split.dataid_set", "No DataID set 'nope'"),
        ({"by": "dataid_set", "dataid_set": "w48-good", "version": 7}, "steps[1].split.version", "has no version 7"),
    ],
)  # fmt: skip
def test_a_bad_split_is_refused_naming_the_part_at_fault(owner, butler_repo, good_set, split, path, words):
    steps = [{"name": "step1"}, {"name": "step2", "split": split}]
    with pytest.raises(ValidationError) as info:
        services.campaign_create(user=owner, data=definition(name="bad-split", steps=steps))
    errors = info.value.message_dict
    assert path in errors, errors
    assert any(words in message for message in errors[path]), errors[path]


def test_a_bad_step_where_is_refused_with_its_path(owner, demo_repo):
    steps = [{"name": "step1", "where": "band IN ('g'"}]
    with pytest.raises(ValidationError) as info:
        services.campaign_create(user=owner, data=definition(name="bad-where", steps=steps))
    assert "Not a valid Butler 'where' expression" in info.value.message_dict["steps[0].where"][0]


def test_yaml_with_a_bad_split_saves_nothing_and_names_the_path(owner, demo_repo):
    text = """\
name: bad-yaml-split
campaign_type: mini-drp
reason: r
butler_repo: demo
pipeline: demo/pipelines/drp.yaml
steps:
  - {name: step1}
  - {name: step2, split: {by: exposure, max_size: -3}}
"""
    with pytest.raises(ValidationError) as info:
        services.campaign_import(user=owner, text=text)
    assert list(info.value.message_dict) == ["steps[1].split.max_size"]
    assert not services.Campaign.objects.filter(name="bad-yaml-split").exists()


def test_a_split_change_is_a_definition_edit_in_the_history(owner, demo_repo):
    campaign = services.campaign_create(user=owner, data=definition(name="history-split"))
    before = campaign.version
    snapshot_steps = [{"name": "step1", "pipeline_subset": "step1"}, {
        "name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "requires_approval": True,
        "split": {"by": "visit", "max_size": 10},
    }]  # fmt: skip
    edited = services.campaign_update(
        user=owner, campaign_id=campaign.pk, version=before, data={"steps": snapshot_steps}, comment="per visit"
    )
    entry = edited.history.order_by("-pk").first()
    assert entry.action == "edit" and entry.comment == "per visit" and set(entry.changes) == {"steps"}
    old, new = entry.changes["steps"]
    assert "split" not in old[1] and new[1]["split"] == {"by": "visit", "max_size": 10}

    # The executor's own setter is the same kind of edit: recorded, and the version moves.
    step = edited.steps.get(name="step1")
    step_split_set(user=owner, step_id=step.pk, split={"by": "band"}, comment="one group per band")
    edited.refresh_from_db()
    entry = edited.history.order_by("-pk").first()
    assert edited.version == before + 2 and entry.comment == "one group per band"
    assert entry.changes["steps"][1][0]["split"] == {"by": "band"}


def test_the_api_reads_and_writes_a_split_and_names_bad_parts(owner, demo_repo, api):
    client = api(owner)
    body = definition(name="api-split", steps=[
        {"name": "step1"},
        {"name": "step3", "depends_on": ["step1"], "where": "band = 'g'", "split": {"by": "tract", "skymap": "demo_sky_v1", "max_size": 2}},
    ])  # fmt: skip
    created = client.post("/api/v1/campaigns/", body, format="json")
    assert created.status_code == 201, created.json()
    steps = created.json()["steps"]
    assert (
        steps[1]["split"] == {"by": "tract", "skymap": "demo_sky_v1", "max_size": 2}
        and steps[1]["where"] == "band = 'g'"
    )
    assert steps[0]["split"] == {"by": "night"}
    bad = client.patch(
        f"/api/v1/campaigns/{created.json()['id']}/",
        {"version": created.json()["version"], "steps": [{"name": "step1", "split": {"by": "list", "groups": [{"name": "a", "where": ""}]}}]},
        format="json",
    )  # fmt: skip
    assert bad.status_code == 400 and "steps[0].split.groups[0].where" in bad.json(), bad.json()
    unknown = client.patch(
        f"/api/v1/campaigns/{created.json()['id']}/",
        {"version": created.json()["version"], "steps": [{"name": "step1", "splt": {"by": "band"}}]},
        format="json",
    )
    assert unknown.status_code == 400 and "steps[0].splt" in unknown.json()


def test_the_rule_in_words():
    assert describe(None) == "by night"
    assert describe({"by": "tract", "skymap": "hsc_rings_v1", "max_size": 20}) == (
        "by tract of hsc_rings_v1, at most 20 patches per group"
    )
    assert describe({"by": "list", "groups": [{"name": "a", "where": "x"}]}) == "1 named group: a"
