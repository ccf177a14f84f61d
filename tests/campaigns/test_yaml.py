"""Campaign YAML: the minimal file imports, export is canonical, and every bad file is explained and saves nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from campaigns import services
from campaigns.models import Campaign
from campaigns.yaml_io import campaign_to_yaml
from tests.campaigns.helpers import db_state
from tests.conftest import MINIMAL_YAML, definition


def _yaml_errors(excinfo) -> list[str]:
    return excinfo.value.message_dict["yaml"]


# ---------------------------------------------------------------- good files
def test_the_minimal_yaml_imports(owner, demo_repo):
    campaign = services.campaign_import(user=owner, text=MINIMAL_YAML)
    assert campaign.name == "w48-minidrp"
    assert (campaign.owner, campaign.definer, campaign.status) == (owner, owner, "draft")
    assert campaign.input_collections == ["DemoCam/raw/all"]
    assert campaign.data_query == "instrument = 'DemoCam' AND band IN ('g', 'r')"
    steps = list(campaign.steps.order_by("position"))
    assert [s.name for s in steps] == ["step1", "step2"]
    assert [d.name for d in steps[1].depends_on.all()] == ["step1"]
    assert steps[1].requires_approval is True
    assert campaign.history.get().comment == "Imported from YAML."


def test_the_minimal_yaml_exports_back_to_itself_in_canonical_form(owner, demo_repo):
    campaign = services.campaign_import(user=owner, text=MINIMAL_YAML)
    exported = campaign_to_yaml(campaign)
    assert exported.startswith("name: w48-minidrp\ncampaign_type: mini-drp\n")
    assert "owner: alice\n" in exported
    assert "requires_approval: true" in exported
    assert "requires_approval: false" not in exported  # defaults are left out


RICH = {
    "name": "rich-2024.11",
    "campaign_type": "drp",
    "reason": "Everything a campaign can hold, to check the round trip: 'quotes', \"double\", #hash",
    "description": "# Plan\n\nLine with *emphasis* and ünïcödé — and a trailing colon:\n\n- one\n- two: three",
    "owner": "alice",
    "collaborators": ["bob", "carol"],
    "visibility": "private",
    "butler_repo": "demo",
    "pipeline": "demo/pipelines/drp.yaml#step1",
    "input_collections": ["DemoCam/raw/all", "yes", "2024-01-01", "null"],
    "data_query": "instrument = 'DemoCam' AND visit IN (1..10) AND band = 'g'",
    "output_collection": "u/alice/rich",
    "bps": {
        "compute_site": "s3df",
        "wms": "htcondor",
        "request_memory": 4096,
        "request_cpus": 2,
        "extra": {
            "numberOfRetries": 2,
            "clusterAlgorithm": "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering",
        },
    },
    "scope": "Tracts 9813 and 9697.\nNights 2024-11-01 to 2024-11-07.",
    "links": [
        {"label": "Jira", "url": "https://rubinobs.atlassian.net/browse/DM-1"},
        {"label": "Notes: draft", "url": "https://example.org/a?b=c&d=e"},
    ],
    "steps": [
        {"name": "step1", "pipeline_subset": "step1"},
        {"name": "step2a", "pipeline_subset": "step2a", "depends_on": ["step1"]},
        {"name": "step2b", "depends_on": ["step1"], "requires_approval": True},
        {"name": "step3", "pipeline_subset": "step3", "depends_on": ["step2a", "step2b"]},
    ],
}


def test_export_then_import_then_export_is_byte_identical(owner, other_staff, science_user, demo_repo):
    original = services.campaign_create(user=owner, data=RICH)
    first = campaign_to_yaml(original)
    Campaign.objects.filter(pk=original.pk).delete()
    assert not Campaign.objects.exists()

    again = services.campaign_import(user=owner, text=first)
    assert again.pk != original.pk
    second = campaign_to_yaml(again)
    assert second.encode() == first.encode()
    assert "input_collections:\n- DemoCam/raw/all\n- 'yes'\n- '2024-01-01'\n- 'null'\n" in first


def test_crlf_from_a_form_is_stored_and_exported_as_plain_newlines(owner, demo_repo):
    # What a browser sends from a textarea.
    campaign = services.campaign_create(
        user=owner, data=definition(description="# Plan\r\n\r\n- one\r\n- two", scope="tracts 1-3\rand 9")
    )
    assert campaign.description == "# Plan\n\n- one\n- two" and campaign.scope == "tracts 1-3\nand 9"
    exported = campaign_to_yaml(campaign)
    assert "\r" not in exported and "description: |-\n  # Plan\n\n  - one\n  - two\n" in exported
    # Text stored before the normalisation (CRLF in the database) is exported the same way.
    Campaign.objects.filter(pk=campaign.pk).update(description="a\r\nb")
    campaign.refresh_from_db()
    assert "description: |-\n  a\n  b\n" in campaign_to_yaml(campaign)


def test_export_through_the_api_and_the_page_is_the_same_download(owner, campaign, api):
    via_api = api(owner).get(f"/api/v1/campaigns/{campaign.pk}/export/")
    page = Client()
    page.force_login(owner)
    via_page = page.get(f"/campaigns/{campaign.pk}/export/")
    for response in (via_api, via_page):
        assert response.status_code == 200
        assert response["Content-Type"] == "application/yaml; charset=utf-8"
        assert response["Content-Disposition"] == 'attachment; filename="w48-minidrp.yaml"'
    assert via_api.content == via_page.content == campaign_to_yaml(campaign).encode()


def test_an_api_export_imports_back_through_the_api(owner, other_staff, science_user, demo_repo, api):
    client = api(owner)
    created = client.post("/api/v1/campaigns/", RICH, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    first = client.get(f"/api/v1/campaigns/{pk}/export/").content
    Campaign.objects.filter(pk=pk).delete()
    imported = client.post("/api/v1/campaigns/import/", first.decode(), content_type="application/yaml")
    assert imported.status_code == 201, imported.json()
    assert client.get(f"/api/v1/campaigns/{imported.json()['id']}/export/").content == first


# ---------------------------------------------------------------- bad files: explained, nothing saved
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("name: ok\nreason: [a, b\npipeline: x\n", "line 3, column 9", id="unclosed-list"),
        pytest.param("name: ok\n  bad: indent\n", "line 2, column 6", id="bad-indent"),
        pytest.param("name: ok\nsteps:\n  - name: a\n   x: 1\n", "line 4, column 4", id="bad-step-indent"),
        pytest.param("name: !!python/object/apply:os.system ['true']\n", "line 1, column 7", id="python-tag"),
        pytest.param("", "empty", id="empty"),
        pytest.param("  \n\n", "empty", id="blank"),
        pytest.param("- a\n- b\n", "got list", id="top-level-list"),
        pytest.param("just a string\n", "got str", id="top-level-string"),
        pytest.param("---\n", "got NoneType", id="null-document"),
        pytest.param("a: 1\n---\nb: 2\n", "found 2", id="two-documents"),
        pytest.param(b"name: caf\xe9\n", "not UTF-8 text (bad byte at offset 9)", id="latin-1"),
        pytest.param(b"\xff\xfe n\x00a\x00", "not UTF-8", id="utf-16"),
    ],
)
def test_a_bad_file_is_explained_and_nothing_is_saved(owner, demo_repo, text, fragment):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_import(user=owner, text=text)
    assert any(fragment in message for message in _yaml_errors(excinfo)), _yaml_errors(excinfo)
    assert db_state() == before


def test_invalid_yaml_gives_the_line_and_column(owner, demo_repo):
    text = MINIMAL_YAML.replace("reason: Check", "reason: : Check")
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_import(user=owner, text=text)
    assert _yaml_errors(excinfo) == ["Invalid YAML at line 3, column 9: mapping values are not allowed here."]


def test_an_unknown_key_is_named(owner, demo_repo):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_import(user=owner, text=MINIMAL_YAML + "colour: red\nsteps_extra: 1\n")
    errors = excinfo.value.message_dict
    assert errors["colour"] == ["Unknown field 'colour'."]
    assert errors["steps_extra"] == ["Unknown field 'steps_extra'."]
    assert db_state() == before


def test_an_unknown_key_inside_a_step_is_named_by_its_path(owner, demo_repo):
    text = MINIMAL_YAML.replace("{name: step1, pipeline_subset: step1}", "{name: step1, subset: step1}")
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_import(user=owner, text=text)
    assert "steps[0].subset" in excinfo.value.message_dict


def test_a_too_large_yaml_is_refused_before_parsing(owner, demo_repo, settings):
    settings.CM_YAML_MAX_BYTES = 100
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_import(user=owner, text=MINIMAL_YAML)
    assert "at most 100\xa0bytes is accepted" in _yaml_errors(excinfo)[0]
    assert db_state() == before


def test_a_yaml_of_exactly_the_limit_is_accepted(owner, demo_repo, settings):
    settings.CM_YAML_MAX_BYTES = len(MINIMAL_YAML.encode())
    assert services.campaign_import(user=owner, text=MINIMAL_YAML).name == "w48-minidrp"


def test_importing_a_name_that_exists_is_refused(owner, demo_repo):
    services.campaign_import(user=owner, text=MINIMAL_YAML)
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_import(user=owner, text=MINIMAL_YAML.replace("w48-minidrp", "W48-MiniDRP"))
    assert "is not available" in excinfo.value.message_dict["name"][0]
    assert db_state() == before


# ---------------------------------------------------------------- through the API
def test_the_api_imports_a_yaml_body(owner, demo_repo, api):
    response = api(owner).post("/api/v1/campaigns/import/", MINIMAL_YAML, content_type="application/yaml")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "w48-minidrp"
    assert [s["name"] for s in body["steps"]] == ["step1", "step2"]
    assert Campaign.objects.get().owner == owner


def test_the_api_imports_a_text_yaml_body(owner, demo_repo, api):
    response = api(owner).post("/api/v1/campaigns/import/", MINIMAL_YAML, content_type="text/yaml")
    assert response.status_code == 201


def test_the_api_imports_a_multipart_upload(owner, demo_repo, api):
    upload = SimpleUploadedFile("w48.yaml", MINIMAL_YAML.encode(), content_type="application/yaml")
    response = api(owner).post("/api/v1/campaigns/import/", {"file": upload}, format="multipart")
    assert response.status_code == 201
    assert response.json()["name"] == "w48-minidrp"


@pytest.mark.parametrize(
    ("body", "content_type", "key", "fragment"),
    [
        ("name: [x\n", "application/yaml", "yaml", "line 2, column 1"),
        (MINIMAL_YAML + "colour: red\n", "application/yaml", "colour", "Unknown field"),
        ("", "application/yaml", "yaml", "Send YAML"),
        ("- a\n", "application/yaml", "yaml", "got list"),
        (b"name: caf\xe9\n", "application/yaml", "detail", "not UTF-8"),
    ],
)
def test_a_bad_api_import_is_a_400_that_explains_and_saves_nothing(
    owner, demo_repo, api, body, content_type, key, fragment
):
    client = api(owner)
    before = db_state()
    response = client.post("/api/v1/campaigns/import/", body, content_type=content_type)
    assert response.status_code == 400
    message = response.json()[key]
    assert fragment in (message if isinstance(message, str) else message[0]), response.json()
    assert db_state() == before


def test_a_bad_multipart_upload_through_the_api_is_explained(owner, demo_repo, api):
    client = api(owner)
    before = db_state()
    upload = SimpleUploadedFile("bad.yaml", b"name: caf\xe9\n")
    response = client.post("/api/v1/campaigns/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["yaml"][0]
    assert db_state() == before


def test_a_too_large_api_import_is_refused_both_ways(owner, demo_repo, api, settings):
    settings.CM_YAML_MAX_BYTES = 100
    client = api(owner)
    before = db_state()
    response = client.post("/api/v1/campaigns/import/", MINIMAL_YAML, content_type="application/yaml")
    assert response.status_code == 400
    assert "at most 100" in response.json()["yaml"][0]
    upload = SimpleUploadedFile("big.yaml", MINIMAL_YAML.encode())
    response = client.post("/api/v1/campaigns/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert "larger than 100 bytes" in response.json()["file"][0]
    assert db_state() == before


# ---------------------------------------------------------------- through the page
@pytest.fixture
def page(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_the_import_page_imports_pasted_yaml(page, demo_repo):
    response = page.post("/campaigns/import/", {"yaml": MINIMAL_YAML})
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.pk}/"


def test_the_import_page_imports_an_uploaded_file(page, demo_repo):
    upload = SimpleUploadedFile("w48.yaml", MINIMAL_YAML.encode())
    response = page.post("/campaigns/import/", {"file": upload})
    assert response.status_code == 302
    assert Campaign.objects.get().name == "w48-minidrp"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"yaml": "name: [x\n"}, "Invalid YAML at line 2, column 1"),
        ({"yaml": "\n\n# a comment\nname: ok\n  bad: indent\n"}, "Invalid YAML at line 5, column 6"),
        ({"yaml": "  \n"}, "The YAML document is empty."),
        ({"yaml": MINIMAL_YAML + "colour: red\n"}, "colour: Unknown field &#x27;colour&#x27;."),
        ({"yaml": MINIMAL_YAML.replace("butler_repo: demo", "butler_repo: elsewhere")}, "butler_repo: Unknown"),
        ({"yaml": "- a\n"}, "got list"),
        ({"yaml": ""}, "Choose a YAML file or paste YAML."),
        ({"file": SimpleUploadedFile("x.yaml", b"name: caf\xe9\n")}, "not UTF-8 text"),
    ],
)
def test_the_import_page_shows_what_is_wrong_and_saves_nothing(page, demo_repo, data, fragment):
    before = db_state()
    response = page.post("/campaigns/import/", data)
    assert response.status_code == 200
    assert fragment in response.content.decode()
    assert db_state() == before


def test_the_import_page_refuses_a_too_large_file(page, demo_repo, settings):
    settings.CM_YAML_MAX_BYTES = 100
    before = db_state()
    response = page.post("/campaigns/import/", {"file": SimpleUploadedFile("big.yaml", MINIMAL_YAML.encode())})
    assert response.status_code == 200
    assert "at most 100" in response.content.decode()
    assert db_state() == before


def test_a_definition_dict_and_its_yaml_describe_the_same_campaign(owner, demo_repo):
    """The YAML form and the definition used by the API create equal campaigns."""
    from campaigns.definition import snapshot

    from_yaml = services.campaign_import(user=owner, text=MINIMAL_YAML)
    yaml_snapshot = snapshot(from_yaml)
    Campaign.objects.all().delete()
    from_dict = services.campaign_create(user=owner, data=definition())
    assert snapshot(from_dict) == yaml_snapshot
