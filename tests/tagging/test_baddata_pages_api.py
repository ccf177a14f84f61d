"""Bad-data pages and API: list, detail, create, edit and status for staff, read-only for science users,
and "Record as bad data" on a campaign group's failed quanta."""

from __future__ import annotations

import pytest
from django.test import Client

from tagging.models import BadDataRecord
from tagging.services.baddata import bad_data_add

from .helpers import exposure_id

pytestmark = pytest.mark.django_db

API = "/api/v1/bad-data/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def bad(owner, butler_repo) -> BadDataRecord:
    return bad_data_add(
        user=owner,
        repo_label="demo",
        summary="Bad amp",
        data_id={"instrument": "DemoCam", "exposure": exposure_id(150), "detector": 2},
    )


def test_staff_record_bad_data_from_the_form(owner, butler_repo):
    response = client_for(owner).post(
        "/data/bad-data/new/",
        {
            "repo": "demo",
            "summary": "Ghost",
            "data_id": f"instrument=DemoCam, exposure={exposure_id(150)}, detector=R22_S11",
            "status": "open",
        },
    )
    record = BadDataRecord.objects.get()
    assert response["Location"] == f"/data/bad-data/{record.pk}/"
    assert (record.exposure, record.detector) == (exposure_id(150), 4)


def test_the_form_shows_the_field_at_fault_and_stores_nothing(owner, butler_repo):
    response = client_for(owner).post(
        "/data/bad-data/new/",
        {"repo": "demo", "summary": "Ghost", "data_id": "instrument=DemoCam, exposure=42", "status": "open"},
    )
    assert response.status_code == 200
    assert "Not a data ID of repo demo" in response.content.decode()
    assert not BadDataRecord.objects.exists()


def test_status_and_edit_pages_record_history(owner, bad):
    client = client_for(owner)
    client.post(
        f"/data/bad-data/{bad.pk}/status/", {"status": "explained", "explanation": "Amp C10 hot", "comment": "x"}
    )
    client.post(
        f"/data/bad-data/{bad.pk}/edit/",
        {"summary": "Hot amplifier", "explanation": "Amp C10 hot", "links": "https://jira.example.org/browse/DM-9"},
    )
    bad.refresh_from_db()
    assert (bad.status, bad.summary, bad.links) == (
        "explained",
        "Hot amplifier",
        ["https://jira.example.org/browse/DM-9"],
    )
    detail = client.get(f"/data/bad-data/{bad.pk}/")
    assert [e.action for e in detail.context["events"]] == ["edited", "status", "created"]
    assert b"Hot amplifier" in detail.content


def test_science_users_read_but_cannot_write(science_user, bad):
    client = client_for(science_user)
    assert client.get("/data/bad-data/").status_code == 200
    assert client.get(f"/data/bad-data/{bad.pk}/").status_code == 200
    assert client.get("/data/bad-data/new/").status_code == 403
    assert client.post(f"/data/bad-data/{bad.pk}/status/", {"status": "fixed"}).status_code == 403
    assert client.get(f"/data/bad-data/{bad.pk}/edit/").status_code == 403
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(science_user)
    assert api.get(API).json()["results"][0]["summary"] == "Bad amp"
    assert (
        api.post(
            API,
            {"repo": "demo", "summary": "x", "data_id": {"instrument": "DemoCam", "exposure": exposure_id(150)}},
            format="json",
        ).status_code
        == 403
    )
    assert api.post(f"{API}{bad.pk}/status/", {"status": "fixed"}, format="json").status_code == 403
    assert api.patch(f"{API}{bad.pk}/", {"summary": "x"}, format="json").status_code == 403
    bad.refresh_from_db()
    assert bad.status == "open" and bad.summary == "Bad amp"


def test_the_api_records_filters_and_moves_status(api, owner, science_user, butler_repo):
    client = api(owner)
    made = client.post(
        API,
        {"repo": "demo", "summary": "Ghost", "data_id": {"instrument": "DemoCam", "exposure": exposure_id(151)}},
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["data_id"] == {"instrument": "DemoCam", "exposure": exposure_id(151)}
    pk = made.json()["id"]
    assert client.post(f"{API}{pk}/status/", {"status": "explained"}, format="json").status_code == 400  # needs why
    moved = client.post(
        f"{API}{pk}/status/", {"status": "explained", "explanation": "ghost of a bright star"}, format="json"
    )
    assert moved.json()["status"] == "explained"
    reader = api(science_user)
    assert [r["id"] for r in reader.get(API, {"status": "explained"}).json()["results"]] == [pk]
    assert reader.get(API, {"status": "open"}).json()["results"] == []
    assert [e["action"] for e in reader.get(f"{API}{pk}/history/").json()] == ["status", "created"]
    bad = client.post(
        API, {"repo": "demo", "summary": "x", "data_id": {"instrument": "DemoCam", "exposure": 1}}, format="json"
    )
    assert bad.status_code == 400 and "data_id" in bad.json()


def test_record_as_bad_data_from_the_group_page(owner, science_user, failed_quantum):
    group = failed_quantum.submission.group
    group_page = f"/campaigns/{group.step.campaign_id}/groups/{group.pk}/"
    assert b"Record as bad data" in client_for(owner).get(group_page).content
    assert b"Record as bad data" not in client_for(science_user).get(group_page).content
    assert client_for(science_user).post(f"/data/bad-data/from-failure/{failed_quantum.pk}/").status_code == 403
    response = client_for(owner).post(f"/data/bad-data/from-failure/{failed_quantum.pk}/", {"next": group_page})
    record = BadDataRecord.objects.get()
    assert response["Location"] == f"/data/bad-data/{record.pk}/"
    assert record.source == "failure" and record.exposure == failed_quantum.data_id["exposure"]
    detail = client_for(science_user).get(response["Location"]).content.decode()
    assert "InjectedFailure" in detail and group.name in detail


def test_the_api_records_a_failure(api, owner, failed_quantum):
    response = api(owner).post(f"{API}from-failure/", {"quantum_error": failed_quantum.pk}, format="json")
    assert response.status_code == 201 and response.json()["source"] == "failure"
    assert api(owner).post(f"{API}from-failure/", {"quantum_error": 999999}, format="json").status_code == 400
