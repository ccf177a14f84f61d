"""Flag pages: the list with the exposure log's filters, a flag with its history, and the writes from the
exposure page (add, edit, delete with confirmation) and the import page; science users get 403 on writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tagging.models import ExposureFlag
from tagging.services.flags import flag_add, flag_edit

from .helpers import exposure_id

pytestmark = pytest.mark.django_db

EXPOSURE = exposure_id(151)
EXPOSURE_PAGE = f"/data/repos/demo/exposures/{EXPOSURE}/"
SAMPLE = Path(__file__).parent / "data" / "exposurelog-messages.json"


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def form(**fields) -> dict:
    return {
        "message_text": "Dome light on",
        "exposure_flag": "junk",
        "level": "30",
        "tags": "dome light",
        "urls": "",
        **fields,
    }


def test_staff_add_a_flag_from_the_exposure_page(owner, butler_repo):
    response = client_for(owner).post(f"{EXPOSURE_PAGE}flags/", form(), follow=True)
    assert response.redirect_chain[-1][0].endswith(f"{EXPOSURE_PAGE}#flags")
    flag = ExposureFlag.objects.get()
    assert (flag.exposure, flag.exposure_flag, flag.level, flag.tags, flag.user_agent) == (
        EXPOSURE,
        "junk",
        30,
        ["dome", "light"],
        "web",
    )
    assert "Flag added to DC_O_20251121_000151" in response.content.decode()


def test_a_bad_flag_form_says_why_and_stores_nothing(owner, butler_repo):
    response = client_for(owner).post(f"{EXPOSURE_PAGE}flags/", form(urls="not-a-link"), follow=True)
    assert "Flag not added" in response.content.decode() and "urls" in response.content.decode()
    assert not ExposureFlag.objects.exists()


def test_edit_and_delete_from_the_pages_keep_every_version(owner, butler_repo):
    client = client_for(owner)
    first = flag_add(user=owner, repo_label="demo", exposure=EXPOSURE, message_text="first")
    client.post(f"/data/flags/{first.pk}/edit/", {**form(message_text="second"), "next": EXPOSURE_PAGE})
    second = ExposureFlag.objects.get(parent=first)
    assert second.message_text == "second" and not ExposureFlag.objects.get(pk=first.pk).is_valid
    response = client.post(f"/data/flags/{second.pk}/invalidate/", {"next": "https://evil.example.org/"})
    assert response["Location"] == f"/data/flags/{second.pk}/"  # never sent off-site
    assert not ExposureFlag.objects.filter(is_valid=True).exists() and ExposureFlag.objects.count() == 2
    detail = client.get(f"/data/flags/{second.pk}/")
    assert [f.pk for f in detail.context["history"]] == [first.pk, second.pk]
    assert b"not valid" in detail.content


def test_science_users_read_the_pages_but_every_write_is_403(science_user, owner, butler_repo):
    flag = flag_add(user=owner, repo_label="demo", exposure=EXPOSURE, message_text="first")
    client = client_for(science_user)
    assert client.get("/data/flags/").status_code == 200
    detail = client.get(f"/data/flags/{flag.pk}/")
    assert detail.status_code == 200 and b"Save as a new version" not in detail.content
    assert client.post(f"{EXPOSURE_PAGE}flags/", form()).status_code == 403
    assert client.post(f"/data/flags/{flag.pk}/edit/", form(message_text="x")).status_code == 403
    assert client.post(f"/data/flags/{flag.pk}/invalidate/").status_code == 403
    assert client.get("/data/flags/import/").status_code == 403
    assert ExposureFlag.objects.get().is_valid and ExposureFlag.objects.count() == 1


def test_anonymous_visitors_are_sent_to_the_login_page(butler_repo):
    for path in ("/data/flags/", "/data/flags/import/", "/data/bad-data/"):
        response = client_for(None).get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_list_page_filters_like_the_api(science_user, owner, butler_repo):
    first = flag_add(
        user=owner, repo_label="demo", exposure=EXPOSURE, message_text="clouds", exposure_flag="questionable"
    )
    flag_edit(user=owner, flag_id=first.pk, message_text="thick clouds", exposure_flag="junk")
    flag_add(user=owner, repo_label="demo", exposure=exposure_id(152), message_text="trail", tags=["sky"])
    client = client_for(science_user)

    def shown(**params) -> list[str]:
        return [f.message_text for f in client.get("/data/flags/", params).context["page"].object_list]

    assert sorted(shown()) == ["thick clouds", "trail"]
    assert shown(exposure_flags="junk") == ["thick clouds"]
    assert sorted(shown(is_valid="any")) == ["clouds", "thick clouds", "trail"]
    assert shown(tags="sky") == ["trail"]
    assert shown(message_text="thick") == ["thick clouds"]
    assert shown(message_text="THICK") == []  # exact case, as the exposure log (the field says so)
    bad = client.get("/data/flags/", {"order_by": "colour"})
    assert b"were not valid" in bad.content and len(bad.context["page"].object_list) == 2


def test_the_import_page_imports_and_shows_index_and_key_of_bad_files(owner, butler_repo):
    client = client_for(owner)
    response = client.post(
        "/data/flags/import/",
        {"repo": "demo", "file": SimpleUploadedFile("export.json", SAMPLE.read_bytes())},
        follow=True,
    )
    assert "2 messages read: 2 new" in response.content.decode()
    assert ExposureFlag.objects.count() == 2
    bad = json.loads(SAMPLE.read_text())
    bad[1]["level"] = "loud"
    response = client.post(
        "/data/flags/import/", {"repo": "demo", "file": SimpleUploadedFile("bad.json", json.dumps(bad).encode())}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "nothing was stored" in body
    assert "index 1" in body and "<code>level</code>" in body
    assert ExposureFlag.objects.count() == 2
