"""A campaign's include and exclude DataID sets: validated and pinned in the definition, carried by YAML,
clone and history, shown on its page and plan, and — in a real BPS + Parsl run — turned into the one
data-ID table every group is run with (include ∩ … minus exclude)."""

from __future__ import annotations

import pytest
from astropy.table import Table
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.choices import GroupStatus
from campaigns.execution import campaign_launch
from campaigns.execution.plan import campaign_plan
from campaigns.yaml_io import campaign_to_yaml, parse_campaign_yaml
from tagging.services.dataids import UploadSource, dataidset_create
from tests.conftest import PASSWORD, definition
from tests.execution.conftest import SCIENCE, run_ready_groups

pytestmark = pytest.mark.django_db

NIGHT = 20251121


def E(night: int, seq: int) -> int:
    return night * 100000 + seq


def make_set(user, name: str, records: list[dict], visibility: str = "public"):
    dims = list(records[0])
    return dataidset_create(
        user=user,
        repo_label="demo",
        name=name,
        reason=f"test set {name}",
        source=UploadSource(kind="records", records=records, dimensions=dims),
        visibility=visibility,
    )


def _rows(sets) -> list[dict]:
    from tagging.selectors import dataidset_rows

    version = sets["first"]
    return [dict(zip(version.dimensions, row, strict=True)) for row in dataidset_rows(version=version)]


@pytest.fixture
def sets(owner, butler_repo):
    """first-night (exposures 150, 151 of night 1 and 150 of night 2) and hot-amp (151 detector 1)."""
    inst = "DemoCam"
    first = make_set(
        owner,
        "first-night",
        [{"instrument": inst, "exposure": E(n, s)} for n, s in ((NIGHT, 150), (NIGHT, 151), (20251122, 150))],
    )
    hot = make_set(owner, "hot-amp", [{"instrument": inst, "exposure": E(NIGHT, 151), "detector": 1}])
    return {"first": first, "hot": hot}


def test_sets_are_validated_naming_the_entry_and_pinned_to_the_latest_version(owner, sets):
    campaign = services.campaign_create(
        user=owner,
        data=definition(include_sets=["first-night"], exclude_sets=[{"dataid_set": "hot-amp", "version": 1}]),
    )
    assert campaign.include_sets == [{"dataid_set": "first-night", "version": 1}]
    assert campaign.exclude_sets == [{"dataid_set": "hot-amp", "version": 1}]

    bad = {
        "include_sets": ["first-night@v1", {"dataid_set": "first-night", "version": 7}, "nope", {"name": "x"}],
        "exclude_sets": ["first-night@vX", "first-night"],
    }
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(user=owner, data=definition(name="bad-sets", **bad))
    errors = caught.value.message_dict
    assert errors["include_sets[1].version"] == ["first-night has no version 7 (latest: v1)."]
    assert errors["include_sets[2].dataid_set"] == ["No DataID set 'nope' in repo demo."]
    assert errors["include_sets[3].name"] == ["Unknown key; use dataid_set and version."]
    assert errors["exclude_sets[0].version"] == ["Must be a version number, got 'X'."]
    assert errors["exclude_sets[1]"] == ["first-night v1 is also an include set."]
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(user=owner, data=definition(name="bad-sets", include_sets="first-night"[:5]))
    assert "include_sets[0].dataid_set" in caught.value.message_dict


def test_sets_of_other_dimensions_or_mixed_keys_are_refused(owner, sets, butler_repo):
    make_set(owner, "detectors-only", [{"instrument": "DemoCam", "detector": 1}])
    make_set(owner, "some-visits", [{"instrument": "DemoCam", "visit": E(NIGHT, 150)}])
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(user=owner, data=definition(include_sets=["detectors-only"]))
    assert (
        "campaign inputs are constrained by sets of exposures or visits"
        in (caught.value.message_dict["include_sets[0].dataid_set"][0])
    )
    with pytest.raises(ValidationError) as caught:
        services.campaign_create(
            user=owner, data=definition(include_sets=["first-night"], exclude_sets=["some-visits"])
        )
    assert caught.value.message_dict["exclude_sets[0]"] == [
        "This set is keyed by visit but include_sets[0] by exposure; the sets of one campaign must all hold "
        "exposures or all hold visits."
    ]


def test_yaml_round_trip_clone_and_history_carry_the_sets(owner, sets):
    campaign = services.campaign_create(
        user=owner, data=definition(include_sets=["first-night@v1"], exclude_sets=["hot-amp"])
    )
    text = campaign_to_yaml(campaign)
    assert "include_sets:\n- dataid_set: first-night\n  version: 1\n" in text
    parsed = parse_campaign_yaml(text)
    again = services.campaign_create(user=owner, data={**parsed, "name": "from-yaml"})
    assert (again.include_sets, again.exclude_sets) == (campaign.include_sets, campaign.exclude_sets)
    assert campaign_to_yaml(again) == text.replace(f"name: {campaign.name}", "name: from-yaml")

    clone = services.campaign_clone(user=owner, campaign_id=campaign.pk, name="cloned")
    assert clone.exclude_sets == [{"dataid_set": "hot-amp", "version": 1}]
    edited = services.campaign_update(
        user=owner, campaign_id=clone.pk, version=clone.version, data={"exclude_sets": []}, comment="all detectors"
    )
    entry = edited.history.order_by("-at", "-pk").first()
    assert entry.changes == {"exclude_sets": [[{"dataid_set": "hot-amp", "version": 1}], []]}


def test_the_page_lists_the_sets_linking_only_those_the_viewer_may_see(owner, sets, client, science_user):
    make_set(owner, "private-ids", [{"instrument": "DemoCam", "exposure": E(NIGHT, 150)}], visibility="private")
    campaign = services.campaign_create(
        user=owner, data=definition(include_sets=["first-night", "private-ids"], exclude_sets=["hot-amp"])
    )
    client.login(username=science_user.username, password=PASSWORD)
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="dataid-sets"' in page
    assert f'href="/data/sets/{sets["first"].dataid_set_id}/?version=1"><strong>first-night</strong> v1</a>' in page
    assert '<strong>private-ids</strong> v1 · <span class="num">1</span> data IDs' in page
    assert "(a DataID set you may not see)" in page
    assert page.count('badge-failed">exclude') == 1
    edit = client.get(f"/campaigns/{campaign.pk}/edit/")
    assert edit.status_code in (403, 404)  # science users never edit
    client.login(username=owner.username, password=PASSWORD)
    form = client.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    assert "first-night@v1\nprivate-ids@v1</textarea>" in form


@pytest.mark.slow
def test_a_real_run_processes_only_the_included_data_ids_minus_the_excluded(
    make_exec_campaign, owner, sets, butler_root, django_capture_on_commit_callbacks
):
    from lsst.daf.butler import Butler

    # The data query names both nights; the include set keeps night 1's 150 and 151 (and night 2's 150),
    # the exclude set removes detector 1 of 151.
    campaign = make_exec_campaign(
        data_query=f"{SCIENCE} AND exposure.day_obs = {NIGHT}",
        include_sets=["first-night"],
        exclude_sets=["hot-amp"],
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
    )
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert plan.dataid_sets == "include first-night@v1; exclude hot-amp@v1"
    assert plan.dataid_set_rows == 2 * 9 - 1  # the two exposures of night 1 on every detector, but one
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get().groups.get()
    assert group.name == f"night-{NIGHT}"
    table = Table.read(group.data_id_table, format="ascii.ecsv")
    assert table.colnames == ["instrument", "exposure", "detector"]
    assert (E(NIGHT, 151), 1) not in {(r["exposure"], r["detector"]) for r in table}
    assert len(table) == 17 and table.meta["sets"] == "include first-night@v1; exclude hot-amp@v1"

    with django_capture_on_commit_callbacks(execute=True):
        run_ready_groups(campaign)
    group.refresh_from_db()
    assert group.status == GroupStatus.SUCCEEDED
    assert group.quanta_total == 3  # 150 × {0, 1} and 151 × {0}
    submission = group.submissions.get()
    with open(submission.submit_yaml) as submit:
        assert f"--data-id-table {group.data_id_table}" in submit.read()
    butler = Butler.from_config(butler_root)
    try:
        done = {
            (r.dataId["exposure"], r.dataId["detector"])
            for r in butler.query_datasets("calexpSummary", collections=group.run_collection, explain=False)
        }
    finally:
        butler.close()
    assert done == {(E(NIGHT, 150), 0), (E(NIGHT, 150), 1), (E(NIGHT, 151), 0)}


@pytest.mark.slow
def test_a_group_whose_sets_leave_nothing_fails_its_preflight_saying_so(
    make_exec_campaign, owner, sets, django_capture_on_commit_callbacks
):
    # Every data ID of the include set is excluded again: nothing is left. A list split keeps the group.
    make_set(owner, "same-as-first", [{"instrument": "DemoCam", "exposure": r["exposure"]} for r in _rows(sets)])
    campaign = make_exec_campaign(
        include_sets=["first-night"],
        exclude_sets=["same-as-first"],
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
    )
    step = campaign.steps.get()
    where = f"exposure.day_obs = {NIGHT}"
    services.step_groups_define(
        user=owner, campaign_id=campaign.pk, step_name=step.name, groups=[{"name": "late", "data_query": where}]
    )
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    group = campaign.steps.get().groups.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert run_ready_groups(campaign) == ["failed: empty data-ID table"]
    group.refresh_from_db()
    assert group.status == GroupStatus.FAILED
    error = group.submissions.get().error
    assert error.startswith("Preflight: the data-ID table ")
    assert "selects no data IDs (include first-night@v1; exclude same-as-first@v1)" in error


def test_a_metric_conditioned_input_is_passed_next_to_the_sets_table(make_exec_campaign, owner, sets, tmp_path):
    """pipetask ANDs repeated --data-id-table options (pipe_base joins each table into the data-ID query), so a
    step's metric-conditioned table is added to the sets' table, never put in its place."""
    from campaigns.execution.runner import build_spec
    from campaigns.execution.services import step_input_table_set
    from campaigns.models import Submission

    campaign = make_exec_campaign(include_sets=["first-night"])
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk)
    step2 = campaign.steps.get(name="step2")
    sets_table = step2.groups.first().data_id_table
    assert sets_table.endswith(f"/inputs/{campaign.pk}/dataid-sets-v{campaign.version}.ecsv")
    metric_table = str(tmp_path / "step2-v1.ecsv")
    for _ in range(2):  # a check run twice records the same
        step_input_table_set(step_id=step2.pk, path=metric_table, comment="frozen from a metric condition")
    group = step2.groups.first()
    assert group.data_id_table == f"{sets_table}\n{metric_table}"
    spec = build_spec(Submission(group=group, number=1, run_collection="x/attempt1", submit_dir=str(tmp_path)))
    assert [str(t) for t in spec.data_id_tables] == [sets_table, metric_table]


def test_the_api_takes_and_shows_the_sets_and_names_a_bad_entry(owner, sets, api, science_user):
    data = {**definition(), "include_sets": ["first-night"], "exclude_sets": [{"dataid_set": "hot-amp"}]}
    assert api(science_user).post("/api/v1/campaigns/", data, format="json").status_code == 403
    response = api(owner).post("/api/v1/campaigns/", data, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["include_sets"] == [{"dataid_set": "first-night", "version": 1}]
    assert body["exclude_sets"] == [{"dataid_set": "hot-amp", "version": 1}]
    response = api(owner).post(
        "/api/v1/campaigns/", {**data, "name": "other", "include_sets": ["first-night@v3"]}, format="json"
    )
    assert response.status_code == 400
    assert "include_sets[0].version" in str(response.json())
