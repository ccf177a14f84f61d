"""Resolving a DataID set version into a TAGGED collection of the real Butler repo.

The API queues the work; the test runs the Celery task's work in-process
(``dataidset_tag_run``) and then checks the collection from a separate process
with the real ``butler query-datasets`` command.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import Client
from lsst.daf.butler import Butler, CollectionType

from tagging.models import DataIdSetVersion
from tagging.services import dataidset_tag_run
from tagging.tasks import dataidset_tag

from .helpers import NIGHT, exposure_id, ids

pytestmark = pytest.mark.django_db

URL = "/api/v1/dataid-sets/"
BUTLER = str(Path(sys.executable).parent / "butler")


def unique(prefix: str) -> str:
    """Collections live in the session's Butler repo: every test uses names of its own."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_butler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BUTLER, *args], capture_output=True, text=True, timeout=120)


def datasets_in(root: str, collection: str, dataset_type: str = "raw") -> list[dict[str, str]]:
    """The datasets of a collection as the `butler query-datasets` command prints them (one dict per row)."""
    result = run_butler("query-datasets", root, dataset_type, "--collections", collection, "--limit", "0")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines or lines[-1].startswith("No datasets"):
        return []
    header = lines[0].split()
    assert header[:3] == ["type", "run", "id"], result.stdout
    assert set(lines[1]) <= {"-", " "}
    rows = [dict(zip(header, line.split(), strict=True)) for line in lines[2:]]
    assert all(r["type"] == dataset_type for r in rows)
    return rows


def collections_like(root: str, name: str) -> list[str]:
    """Collections whose names start with ``name`` (a glob, so that none found is not an error)."""
    result = run_butler("query-collections", root, name + "*")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip()]


def start(client, dataid_set_id: int, **data):
    data.setdefault("dataset_type", "raw")
    data.setdefault("input_collections", ["DemoCam/raw/all"])
    return client.post(f"{URL}{dataid_set_id}/tag-collection/", data)


@pytest.fixture
def detector0_only(butler_root) -> str:
    """A TAGGED input collection holding the raws of detector 0 only, made with the Butler's own API."""
    butler = Butler.from_config(butler_root, writeable=True)
    refs = butler.query_datasets("raw", collections="DemoCam/raw/all", where="instrument='DemoCam' AND detector=0")
    name = unique("test/detector0")
    butler.collections.register(name, CollectionType.TAGGED)
    butler.registry.associate(name, refs)
    return name


def test_starting_through_the_api_queues_the_task_and_running_it_fills_the_collection(
    api, owner, make_set, butler_root, django_capture_on_commit_callbacks
):
    # Science exposures and one calibration exposure (a bias), which has raws too.
    version = make_set(unique("tagme"), ids([150, 151], [0, 1]) + ids([1], [4]))
    collection = unique("u/alice/tagged")
    client = api(owner)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = start(client, version.dataid_set_id, collection=collection)
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1  # the Celery task is sent once the transaction commits
    body = response.json()
    assert (body["number"], body["tag_status"], body["tag_collection"]) == (1, "pending", collection)
    assert body["tag_dataset_type"] == "raw" and body["tag_input_collections"] == ["DemoCam/raw/all"]
    assert client.get(f"{URL}{version.dataid_set_id}/tag-collection/").json()["tag_status"] == "pending"

    done = dataidset_tag_run(version_id=version.pk)

    assert done is not None
    assert done.tag_status == "done", done.tag_error
    assert (done.tag_found, done.tag_missing_count, done.tag_missing, done.tag_error) == (5, 0, [], "")
    status = client.get(f"{URL}{version.dataid_set_id}/tag-collection/").json()
    assert (status["tag_status"], status["tag_found"], status["tag_missing_count"]) == ("done", 5, 0)
    rows = datasets_in(butler_root, collection)
    assert sorted((int(r["exposure"]), int(r["detector"])) for r in rows) == sorted(
        [(exposure_id(s), d) for s in (150, 151) for d in (0, 1)] + [(exposure_id(1), 4)]
    )
    assert {r["run"] for r in rows} == {"DemoCam/raw/all"}
    assert {r["instrument"] for r in rows} == {"DemoCam"}
    assert collections_like(butler_root, collection) == [collection]


def test_running_the_task_twice_is_harmless(api, owner, make_set, butler_root):
    version = make_set(unique("twice"), ids([152], [2, 3]))
    collection = unique("u/alice/twice")
    assert start(api(owner), version.dataid_set_id, collection=collection).status_code == 202
    first = dataidset_tag_run(version_id=version.pk)
    assert first.tag_status == "done" and first.tag_found == 2
    before = DataIdSetVersion.objects.get(pk=version.pk).tag_updated

    assert dataidset_tag_run(version_id=version.pk) is None
    assert dataidset_tag(version.pk) == "skipped (not pending)"  # the Celery task itself, run in-process
    after = DataIdSetVersion.objects.get(pk=version.pk)
    assert (after.tag_status, after.tag_found, after.tag_updated) == ("done", 2, before)
    assert len(datasets_in(butler_root, collection)) == 2

    # Resolving again into the same collection does not duplicate anything either.
    assert start(api(owner), version.dataid_set_id, collection=collection).status_code == 202
    assert dataidset_tag(version.pk) == "done"
    assert DataIdSetVersion.objects.get(pk=version.pk).tag_found == 2
    assert len(datasets_in(butler_root, collection)) == 2


def test_data_ids_without_a_dataset_are_counted_and_listed(api, owner, make_set, butler_root, detector0_only):
    version = make_set(unique("partial"), ids([150, 153], [0, 1]) + ids([3], [0]))
    collection = unique("u/alice/partial")
    response = start(api(owner), version.dataid_set_id, collection=collection, input_collections=[detector0_only])
    assert response.status_code == 202
    done = dataidset_tag_run(version_id=version.pk)
    assert done.tag_status == "done", done.tag_error
    assert (done.tag_found, done.tag_missing_count) == (3, 2)
    assert done.tag_missing == [
        {"instrument": "DemoCam", "detector": 1, "exposure": exposure_id(150)},
        {"instrument": "DemoCam", "detector": 1, "exposure": exposure_id(153)},
    ]
    rows = datasets_in(butler_root, collection)
    assert sorted((int(r["exposure"]), int(r["detector"])) for r in rows) == [
        (exposure_id(3), 0),
        (exposure_id(150), 0),
        (exposure_id(153), 0),
    ]


def test_an_unknown_dataset_type_fails_with_a_message(api, owner, make_set, butler_root):
    version = make_set(unique("nocalexp"), ids([150], [0]))
    collection = unique("u/alice/nocalexp")
    assert start(api(owner), version.dataid_set_id, collection=collection, dataset_type="calexp").status_code == 202
    failed = dataidset_tag_run(version_id=version.pk)
    assert failed.tag_status == "failed"
    assert "calexp" in failed.tag_error and "not registered" in failed.tag_error
    assert failed.tag_found is None
    status = api(owner).get(f"{URL}{version.dataid_set_id}/tag-collection/").json()
    assert status["tag_status"] == "failed" and status["tag_error"] == failed.tag_error
    assert collections_like(butler_root, collection) == []
    # A failed resolution can be started again.
    assert start(api(owner), version.dataid_set_id, collection=collection).status_code == 202


def test_an_unknown_input_collection_fails_with_a_message(api, owner, make_set, butler_root):
    version = make_set(unique("nocoll"), ids([150], [0]))
    collection = unique("u/alice/nocoll")
    response = start(api(owner), version.dataid_set_id, collection=collection, input_collections=["no/such/run"])
    assert response.status_code == 202
    failed = dataidset_tag_run(version_id=version.pk)
    assert failed.tag_status == "failed"
    assert "no/such/run" in failed.tag_error
    assert collections_like(butler_root, collection) == []


def test_a_second_start_while_one_is_queued_is_refused(api, owner, make_set):
    version = make_set(unique("busy"), ids([150], [0]))
    client = api(owner)
    assert start(client, version.dataid_set_id, collection=unique("u/alice/busy")).status_code == 202
    response = start(client, version.dataid_set_id, collection=unique("u/alice/other"))
    assert response.status_code == 400
    assert "already queued" in str(response.json()["tag"])


def test_start_needs_a_dataset_type_and_input_collections(api, owner, make_set):
    version = make_set(unique("incomplete"), ids([150], [0]))
    client = api(owner)
    assert start(client, version.dataid_set_id, dataset_type="").status_code == 400
    assert start(client, version.dataid_set_id, input_collections=[" "]).status_code == 400
    assert DataIdSetVersion.objects.get(pk=version.pk).tag_status == "none"


def test_the_default_collection_is_named_after_the_user_set_and_version(api, owner, make_set, butler_root):
    name = unique("default")
    make_set(name, ids([150], [0]))
    version = make_set(name, ids([150, 151], [5]))
    assert version.number == 2
    response = start(api(owner), version.dataid_set_id, version=1)
    assert response.status_code == 202
    assert response.json()["number"] == 1
    first = DataIdSetVersion.objects.get(dataid_set=version.dataid_set, number=1)
    assert first.tag_collection == f"u/alice/dataids/{name}/v1"
    assert dataidset_tag_run(version_id=first.pk).tag_found == 1
    rows = datasets_in(butler_root, first.tag_collection)
    assert [(int(r["exposure"]), int(r["detector"])) for r in rows] == [(exposure_id(150, NIGHT), 0)]
    assert DataIdSetVersion.objects.get(pk=version.pk).tag_status == "none"


def test_the_set_page_starts_a_resolution_and_shows_the_result(owner, make_set, butler_root):
    version = make_set(unique("page"), ids([151], [6, 7]))
    collection = unique("u/alice/page")
    page = Client()
    page.force_login(owner)
    response = page.post(
        f"/data/sets/{version.dataid_set_id}/tag/",
        {"version": 1, "dataset_type": "raw", "input_collections": "DemoCam/raw/all", "collection": collection},
    )
    assert response.status_code == 302
    assert DataIdSetVersion.objects.get(pk=version.pk).tag_status == "pending"
    dataidset_tag_run(version_id=version.pk)
    detail = page.get(f"/data/sets/{version.dataid_set_id}/")
    assert detail.status_code == 200
    assert collection.encode() in detail.content
    assert b"2 datasets" in detail.content
    assert len(datasets_in(butler_root, collection)) == 2


def test_a_target_that_is_not_a_tagged_collection_fails_and_can_be_retried(api, owner, make_set, butler_root):
    version = make_set(unique("intorun"), ids([150], [0]))
    client = api(owner)
    assert start(client, version.dataid_set_id, collection="DemoCam/raw/all").status_code == 202
    failed = dataidset_tag_run(version_id=version.pk)
    assert failed.tag_status == "failed"
    assert "DemoCam/raw/all" in failed.tag_error and "TAGGED" in failed.tag_error
    assert len(datasets_in(butler_root, "DemoCam/raw/all")) == 20 * 9  # the RUN is untouched
    # Not stuck as "running": it can be started again into a proper collection.
    collection = unique("u/alice/retry")
    assert start(client, version.dataid_set_id, collection=collection).status_code == 202
    assert dataidset_tag_run(version_id=version.pk).tag_status == "done"
    assert len(datasets_in(butler_root, collection)) == 1
