"""Butler repo locations: only under the roots an administrator allowed (CM_BUTLER_REPO_ROOTS), refused
before anything is read, with one message whether or not the location exists; every way of registering
a repo (service, API, admin, build_demo_repo, seed_demo) goes through the same check."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import CommandError, call_command

from tagging.models import ButlerRepo
from tagging.repo_locations import check_repo_location, parse_roots
from tagging.services import butler_repo_upsert, repo_mirror_sync
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(tmp_path, settings) -> Path:
    """The only allowed local root, with a repo directory, a link out of it and a sibling named like it."""
    allowed = tmp_path / "repos"
    (allowed / "main").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "butler.yaml").write_text("datastore: {}\n")
    (allowed / "escape").symlink_to(tmp_path / "secret")
    (tmp_path / "repos-evil").mkdir()
    settings.CM_BUTLER_REPO_ROOTS = [
        str(allowed),
        "s3://rubin-repos/embargo",
        "https://butler.example.org/repo",
    ]
    return allowed


def refused(location: str) -> str:
    with pytest.raises(ValidationError) as caught:
        check_repo_location(location)
    (message,) = caught.value.messages
    return message


def test_locations_under_an_allowed_root_are_accepted(root):
    assert check_repo_location(str(root / "main")) == str(root / "main")
    assert check_repo_location(f"  {root}/main/butler.yaml ") == f"{root}/main/butler.yaml"
    assert check_repo_location(f"file://{root}/main") == f"file://{root}/main"
    assert check_repo_location(str(root / "not-built-yet"))  # inside the root, existing or not
    assert check_repo_location("s3://rubin-repos/embargo/main/butler.yaml")
    assert check_repo_location("S3://rubin-repos/embargo")
    assert check_repo_location("https://butler.example.org/repo/dp1")


@pytest.mark.parametrize(
    "location",
    [
        "/etc",
        "/etc/passwd",
        "/proc/self/environ",
        "/",
        "relative/repo",
        "",
        "{root}/../secret",
        "{root}/main/../../secret/butler.yaml",
        "file://{root}/%2e%2e/secret",
        "file://{root}/%252e%252e/secret",
        "file://otherhost{root}/main",
        "{root}-evil",
        "{root}/escape",
        "{root}/escape/butler.yaml",
        "{root}/main\x00/etc/passwd",
        "http://butler.example.org/repo/dp1",
        "https://butler.example.org/repository",
        "https://butler.example.org.evil.net/repo/dp1",
        "https://admin@butler.example.org/repo/dp1",
        "https://butler.example.org:8443/repo/dp1",
        "https://butler.example.org/repo/dp1?x=1",
        "http://169.254.169.254/latest/meta-data",
        "s3://other-bucket/embargo/main",
        "s3://rubin-repos/embargo-private/main",
        "s3://rubin-repos/embargo/../private",
        "gs://rubin-repos/embargo/main",
        "ftp://rubin-repos/embargo",
        "resource://lsst.daf.butler/configs",
    ],
)
def test_locations_outside_the_allowed_roots_are_refused(root, location):
    location = location.replace("{root}", str(root))
    message = refused(location)
    assert "is not under an allowed Butler repo root" in message
    assert str(root) in message  # the allowed roots are named, so staff know what to use


def test_a_refusal_does_not_say_whether_the_location_exists(root, tmp_path):
    existing, missing = "/etc/passwd", "/etc/no-such-file-here"
    assert Path(existing).exists() and not Path(missing).exists()
    linked, dangling = root / "escape", root / "gone"
    dangling.symlink_to(tmp_path / "never-made")
    for one, other in [(existing, missing), (str(linked), str(dangling))]:
        assert refused(one).replace(one, "X") == refused(other).replace(other, "X")


def test_without_any_root_nothing_can_be_registered(settings, tmp_path):
    settings.CM_BUTLER_REPO_ROOTS = []
    with pytest.raises(ValidationError) as caught:
        butler_repo_upsert(label="anything", config_uri=str(tmp_path))
    assert "no root is configured (an administrator sets CM_BUTLER_REPO_ROOTS)" in caught.value.messages[0]
    assert not ButlerRepo.objects.exists()


@pytest.mark.parametrize("bad", ["/", "ftp://host/x", "s3://", "relative/path", "https://u@host/x"])
def test_a_malformed_root_setting_is_a_configuration_error(bad):
    with pytest.raises(ImproperlyConfigured, match="CM_BUTLER_REPO_ROOTS"):
        parse_roots([bad])


def test_a_malformed_root_setting_fails_the_system_check(settings):
    settings.CM_BUTLER_REPO_ROOTS = ["ftp://nowhere/x"]
    from tagging.apps import check_repo_roots

    (error,) = check_repo_roots()
    assert error.id == "tagging.E001" and "ftp://nowhere/x" in error.msg


def test_the_service_refuses_and_stores_nothing(root):
    with pytest.raises(ValidationError) as caught:
        butler_repo_upsert(label="etc", config_uri="/etc")
    assert list(caught.value.message_dict) == ["config_uri"]
    assert not ButlerRepo.objects.filter(label="etc").exists()
    repo = butler_repo_upsert(label="main", config_uri=str(root / "main"))
    with pytest.raises(ValidationError):
        butler_repo_upsert(label="main", config_uri=str(root / "escape"))  # an update is checked too
    repo.refresh_from_db()
    assert repo.config_uri == str(root / "main")


def test_the_api_refuses_a_location_outside_the_roots_with_a_400_naming_the_field(root, api, owner, science_user):
    response = api(owner).post("/api/v1/butler-repos/", {"label": "proc", "config_uri": "/proc/self"}, format="json")
    assert response.status_code == 400
    assert "is not under an allowed Butler repo root" in response.json()["config_uri"][0]
    assert "Traceback" not in response.content.decode()
    ok = api(owner).post("/api/v1/butler-repos/", {"label": "main", "config_uri": str(root / "main")}, format="json")
    assert ok.status_code == 201, ok.content
    # A science user is refused for their role, before the location is even looked at.
    denied = api(science_user).post("/api/v1/butler-repos/", {"label": "x", "config_uri": "/etc"}, format="json")
    assert denied.status_code == 403
    assert set(ButlerRepo.objects.values_list("label", flat=True)) == {"main"}


def test_the_admin_form_refuses_a_location_outside_the_roots(root, client, admin):
    client.force_login(admin)
    form = client.get("/admin/tagging/butlerrepo/add/")
    assert str(root) in form.content.decode()  # the help text names the allowed roots
    response = client.post("/admin/tagging/butlerrepo/add/", {"label": "etc", "config_uri": "/etc"})
    assert response.status_code == 200
    assert "is not under an allowed Butler repo root" in response.content.decode()
    assert not ButlerRepo.objects.filter(label="etc").exists()
    client.post("/admin/tagging/butlerrepo/add/", {"label": "main", "config_uri": str(root / "main")})
    assert ButlerRepo.objects.filter(label="main").exists()


def test_build_demo_repo_refuses_a_root_outside_the_allowed_ones_before_writing_anything(root, tmp_path):
    outside = tmp_path / "elsewhere" / "demo"
    with pytest.raises(CommandError, match="is not under an allowed Butler repo root"):
        call_command("build_demo_repo", root=str(outside), label="elsewhere")
    assert not outside.exists()
    assert not ButlerRepo.objects.filter(label="elsewhere").exists()


def test_seed_demo_says_why_when_var_butler_is_not_allowed(settings, owner):
    settings.CM_BUTLER_REPO_ROOTS = []
    with pytest.raises(CommandError, match=r"The demo repo cannot be registered: .*CM_BUTLER_REPO_ROOTS"):
        call_command("seed_demo")


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self):
        self.paths.append(self.path)
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    _Recorder.paths = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.paths
    server.shutdown()


def test_a_repo_whose_root_was_withdrawn_is_not_read_again(settings, web_server, api, owner):
    url, requests_seen = web_server
    settings.CM_BUTLER_REPO_ROOTS = [f"{url}/repos"]
    repo = butler_repo_upsert(label="remote", config_uri=f"{url}/repos/main")
    settings.CM_BUTLER_REPO_ROOTS = ["/data/butler"]  # the administrator narrowed the roots since
    with pytest.raises(ValidationError):
        repo_mirror_sync(repo=repo)
    response = api(owner).post("/api/v1/butler-repos/remote/sync/")
    assert response.status_code == 400
    assert "is not under an allowed Butler repo root" in response.json()["config_uri"][0]
    assert requests_seen == []  # refused before anything was read


def test_a_location_on_an_arbitrary_web_server_is_never_fetched(root, web_server, api, owner):
    url, requests_seen = web_server
    response = api(owner).post("/api/v1/butler-repos/", {"label": "web", "config_uri": f"{url}/x"}, format="json")
    assert response.status_code == 400
    assert requests_seen == []


def _settings_in_a_fresh_process(**env: str) -> str:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("CM_", "DEBUG", "DJANGO_"))}
    child.update(SECRET_KEY="x", DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = "from django.conf import settings; print(settings.CM_BUTLER_REPO_ROOTS, settings.VAR_DIR)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_by_default_only_var_butler_is_allowed_in_debug_and_nothing_in_production(tmp_path):
    var = tmp_path / "var"
    assert _settings_in_a_fresh_process(DEBUG="1", CM_VAR_DIR=str(var)) == f"['{var}/butler'] {var}"
    assert _settings_in_a_fresh_process(CM_VAR_DIR=str(var)) == f"[] {var}"
    assert _settings_in_a_fresh_process(DEBUG="1", CM_BUTLER_REPO_ROOTS="") == f"[] {ROOT / 'var'}"
    assert (
        _settings_in_a_fresh_process(CM_BUTLER_REPO_ROOTS="/data/butler, s3://bucket/repos", CM_VAR_DIR=str(var))
        == f"['/data/butler', 's3://bucket/repos'] {var}"
    )
