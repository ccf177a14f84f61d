"""Attachments: stored under MEDIA_ROOT with a checksum, always served as a download, refused when too big or empty."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from campaigns import services
from campaigns.choices import HistoryAction
from campaigns.models import Attachment
from tests.campaigns.helpers import db_state, stored_files

CONTENT = b"Run notes for w48.\nAll good.\n"
SHA = hashlib.sha256(CONTENT).hexdigest()
HTML = b"<html><body><script>alert('x')</script></body></html>"


def _upload(name: str = "notes.txt", content: bytes = CONTENT, content_type: str = "text/plain"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def page(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _download(response) -> bytes:
    assert response.status_code == 200
    return b"".join(response.streaming_content)


# ---------------------------------------------------------------- upload
def test_an_upload_through_the_page_is_stored_with_its_checksum_and_recorded(page, campaign, media_root):
    response = page.post(
        f"/campaigns/{campaign.pk}/attachments/", {"file": _upload(), "description": "  what we saw  "}, follow=True
    )
    assert "notes.txt was attached." in response.content.decode()
    attachment = Attachment.objects.get()
    assert (attachment.original_name, attachment.size, attachment.sha256) == ("notes.txt", len(CONTENT), SHA)
    assert attachment.description == "what we saw"
    assert attachment.uploaded_by.username == "alice"
    path = Path(media_root) / attachment.file.name
    assert path.read_bytes() == CONTENT
    assert path.resolve().is_relative_to(Path(media_root).resolve())
    assert attachment.file.name.startswith(f"attachments/{campaign.pk}/{SHA[:16]}-")
    entry = campaign.history.order_by("-pk").first()
    assert entry.action == HistoryAction.ATTACHMENT
    assert entry.changes["attachments"][0] is None
    assert entry.changes["attachments"][1].startswith("notes.txt (")
    assert SHA[:12] in entry.changes["attachments"][1]
    campaign.refresh_from_db()
    assert campaign.version == entry.version == 2


def test_an_upload_through_the_api_returns_the_checksum_and_a_download_url(owner, campaign, api, media_root):
    response = api(owner).post(
        f"/api/v1/campaigns/{campaign.pk}/attachments/",
        {"file": _upload("plot.png", b"\x89PNG fake", "image/png"), "comment": "the PSF plot"},
        format="multipart",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["sha256"] == hashlib.sha256(b"\x89PNG fake").hexdigest()
    assert (body["original_name"], body["size"], body["uploaded_by"]) == ("plot.png", 9, "alice")
    assert body["download_url"] == f"/api/v1/campaigns/{campaign.pk}/attachments/{body['id']}/"
    assert campaign.history.order_by("-pk").first().comment == "the PSF plot"
    assert len(stored_files()) == 1
    listing = api(owner).get(f"/api/v1/campaigns/{campaign.pk}/attachments/").json()
    assert [a["id"] for a in listing] == [body["id"]]


def test_the_stored_name_never_comes_from_the_uploaded_name(owner, campaign, media_root):
    attachment = services.attachment_add(
        user=owner, campaign_id=campaign.pk, upload=_upload("../../../etc/passwd\\..\\evil.sh")
    )
    assert attachment.original_name == "evil.sh"
    assert "evil" not in attachment.file.name
    assert ".." not in attachment.file.name
    assert stored_files() == [attachment.file.name]


def test_two_uploads_of_the_same_file_are_kept_apart(owner, campaign):
    first = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    second = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    assert first.sha256 == second.sha256
    assert first.file.name != second.file.name
    assert len(stored_files()) == 2


# ---------------------------------------------------------------- download
@pytest.mark.parametrize("via", ["page", "api"])
def test_a_download_is_always_an_attachment_of_a_neutral_type(via, owner, campaign, api, page):
    attachment = services.attachment_add(
        user=owner, campaign_id=campaign.pk, upload=_upload("report.html", HTML, "text/html")
    )
    if via == "page":
        response = page.get(f"/campaigns/{campaign.pk}/attachments/{attachment.pk}/")
    else:
        response = api(owner).get(f"/api/v1/campaigns/{campaign.pk}/attachments/{attachment.pk}/")
    assert _download(response) == HTML
    assert response["Content-Type"] == "application/octet-stream"
    assert not response["Content-Type"].startswith("text/html")
    assert response["Content-Disposition"] == 'attachment; filename="report.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_a_download_with_an_unusual_name_keeps_it_safely_quoted(owner, campaign, page):
    attachment = services.attachment_add(
        user=owner, campaign_id=campaign.pk, upload=_upload('r\u00e9sum\u00e9 "final".txt')
    )
    response = page.get(f"/campaigns/{campaign.pk}/attachments/{attachment.pk}/")
    _download(response)
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=utf-8''" in disposition
    assert "\n" not in disposition


@pytest.mark.parametrize("visibility", ["staff", "private"])
def test_a_user_who_cannot_see_the_campaign_gets_404_on_download(visibility, owner, science_user, make_campaign, api):
    campaign = make_campaign(visibility=visibility)
    attachment = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    client = Client()
    client.force_login(science_user)
    assert client.get(f"/campaigns/{campaign.pk}/attachments/{attachment.pk}/").status_code == 404
    assert api(science_user).get(f"/api/v1/campaigns/{campaign.pk}/attachments/{attachment.pk}/").status_code == 404
    assert api(science_user).get(f"/api/v1/campaigns/{campaign.pk}/attachments/").status_code == 404


def test_media_files_are_not_served_directly(owner, campaign, page):
    attachment = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    for prefix in ("/media/", "/media-not-served/"):
        assert page.get(prefix + attachment.file.name).status_code == 404


# ---------------------------------------------------------------- refused uploads: clear message, nothing stored
@override_settings(CM_ATTACHMENT_MAX_BYTES=10)
def test_an_oversized_file_is_refused_by_the_service_and_nothing_is_stored(owner, campaign):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    message = excinfo.value.message_dict["file"][0]
    assert message.startswith("notes.txt is 29\xa0bytes; attachments may be at most 10\xa0bytes")
    assert db_state() == before
    assert stored_files() == []
    assert not Attachment.objects.exists()


@override_settings(CM_ATTACHMENT_MAX_BYTES=10)
def test_an_oversized_file_is_refused_by_the_page_with_a_clear_message(page, campaign):
    before = db_state()
    response = page.post(f"/campaigns/{campaign.pk}/attachments/", {"file": _upload()}, follow=True)
    text = response.content.decode()
    assert "The file was not attached" in text
    assert "at most 10\xa0bytes" in text
    assert db_state() == before
    assert stored_files() == []


@override_settings(CM_ATTACHMENT_MAX_BYTES=10)
def test_an_oversized_file_is_refused_by_the_api_with_a_400_naming_the_file(owner, campaign, api):
    client = api(owner)
    before = db_state()
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/attachments/", {"file": _upload()}, format="multipart")
    assert response.status_code == 400
    assert "attachments may be at most 10\xa0bytes" in response.json()["file"][0]
    assert db_state() == before
    assert stored_files() == []


def test_a_file_of_exactly_the_limit_is_accepted(owner, campaign, settings):
    settings.CM_ATTACHMENT_MAX_BYTES = len(CONTENT)
    assert services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload()).size == len(CONTENT)


def test_an_empty_file_is_refused_everywhere_and_nothing_is_stored(owner, campaign, api, page):
    before = db_state()
    with pytest.raises(ValidationError) as excinfo:
        services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload("empty.txt", b""))
    assert excinfo.value.message_dict["file"] == ["empty.txt is empty."]

    client = api(owner)
    response = client.post(
        f"/api/v1/campaigns/{campaign.pk}/attachments/", {"file": _upload("empty.txt", b"")}, format="multipart"
    )
    assert response.status_code == 400
    assert "empty" in response.json()["file"][0]

    response = page.post(f"/campaigns/{campaign.pk}/attachments/", {"file": _upload("empty.txt", b"")}, follow=True)
    assert "The file was not attached: The submitted file is empty." in response.content.decode()
    assert db_state() == before
    assert stored_files() == []


def test_an_upload_without_a_file_asks_for_one(owner, campaign, api, page):
    before = db_state()
    response = page.post(f"/campaigns/{campaign.pk}/attachments/", {"description": "no file"}, follow=True)
    assert "The file was not attached: choose a file." in response.content.decode()
    response = api(owner).post(f"/api/v1/campaigns/{campaign.pk}/attachments/", {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()
    assert db_state() == before


# ---------------------------------------------------------------- delete
def test_deleting_an_attachment_removes_the_file_only_after_commit(
    owner, campaign, media_root, django_capture_on_commit_callbacks
):
    attachment = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    path = Path(media_root) / attachment.file.name
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.attachment_delete(user=owner, campaign_id=campaign.pk, attachment_id=attachment.pk, comment="wrong")
        assert path.exists(), "the file must outlive a transaction that could still roll back"
    assert len(callbacks) == 1
    assert not path.exists()
    assert stored_files() == []
    assert not Attachment.objects.exists()
    entry = campaign.history.order_by("-pk").first()
    assert (entry.action, entry.changes, entry.comment) == (
        HistoryAction.ATTACHMENT_DELETE,
        {"attachments": ["notes.txt", None]},
        "wrong",
    )


@pytest.mark.parametrize("via", ["page", "api"])
def test_deleting_through_the_page_or_api_removes_row_and_file(
    via, owner, campaign, api, page, django_capture_on_commit_callbacks
):
    attachment = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    with django_capture_on_commit_callbacks(execute=True):
        if via == "page":
            response = page.post(f"/campaigns/{campaign.pk}/attachments/{attachment.pk}/delete/")
            assert response.status_code == 302
        else:
            response = api(owner).delete(f"/api/v1/campaigns/{campaign.pk}/attachments/{attachment.pk}/")
            assert response.status_code == 204
    assert not Attachment.objects.exists()
    assert stored_files() == []


def test_a_refused_delete_keeps_row_and_file(owner, other_staff, campaign, api, django_capture_on_commit_callbacks):
    attachment = services.attachment_add(user=owner, campaign_id=campaign.pk, upload=_upload())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api(other_staff).delete(f"/api/v1/campaigns/{campaign.pk}/attachments/{attachment.pk}/")
    assert response.status_code == 403
    assert callbacks == []
    assert Attachment.objects.filter(pk=attachment.pk).exists()
    assert stored_files() == [attachment.file.name]
