"""Fixed people and helpers shared by every test.

People: ``owner`` (staff, owns the campaigns made by ``make_campaign``),
``other_staff`` (staff with no rights on those campaigns), ``science_user``
(read-only role), ``outsider`` (logged in, no role) and ``admin`` (superuser).
Complex state is built by calling the real services.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import Campaign
from core.roles import ensure_role_groups, set_role
from tagging.services import butler_repo_upsert

PASSWORD = "correct-horse-battery-staple"

MINIMAL_YAML = """\
name: w48-minidrp
campaign_type: mini-drp
reason: Check the new PSF model on one week of data
butler_repo: demo
pipeline: demo/pipelines/drp.yaml
input_collections: [DemoCam/raw/all]
data_query: "instrument = 'DemoCam' AND band IN ('g', 'r')"
steps:
  - {name: step1, pipeline_subset: step1}
  - {name: step2, pipeline_subset: step2, depends_on: [step1], requires_approval: true}
"""


def _user(username: str, role: str | None, **extra) -> Any:
    ensure_role_groups()
    User = get_user_model()
    if extra.get("is_superuser"):
        user = User.objects.create_superuser(username, f"{username}@example.org", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.org", PASSWORD)
    if role:
        set_role(user, role)
    return user


@pytest.fixture(autouse=True)
def _butler_repo_roots(settings):
    """Tests register repos under the temporary directory (pytest's tmp_path) and var/test/butler."""
    settings.CM_BUTLER_REPO_ROOTS = [tempfile.gettempdir(), str(settings.VAR_DIR / "butler")]


@pytest.fixture(autouse=True)
def _fresh_login_limits():
    """Failed log-ins of one test do not lock out the people of the next (the auth cache is on disk)."""
    caches["auth"].clear()


@pytest.fixture
def owner(db):
    return _user("alice", "staff")


@pytest.fixture
def other_staff(db):
    return _user("bob", "staff")


@pytest.fixture
def science_user(db):
    return _user("carol", "science")


@pytest.fixture
def outsider(db):
    return _user("dave", None)


@pytest.fixture
def admin(db):
    return _user("admin", None, is_superuser=True)


@pytest.fixture
def demo_repo(db):
    return butler_repo_upsert(label="demo", config_uri="/tmp/no-repo-needed-here", default_instrument="DemoCam")


def definition(**overrides) -> dict[str, Any]:
    data = {
        "name": "w48-minidrp",
        "campaign_type": "mini-drp",
        "reason": "Check the new PSF model on one week of data",
        "butler_repo": "demo",
        "pipeline": "demo/pipelines/drp.yaml",
        "input_collections": ["DemoCam/raw/all"],
        "data_query": "instrument = 'DemoCam' AND band IN ('g', 'r')",
        "steps": [
            {"name": "step1", "pipeline_subset": "step1"},
            {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "requires_approval": True},
        ],
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_campaign(owner, demo_repo) -> Callable[..., Campaign]:
    """Create a campaign through the real service; ``user`` defaults to ``owner``."""

    def make(user=None, **overrides) -> Campaign:
        return services.campaign_create(user=user or owner, data=definition(**overrides))

    return make


@pytest.fixture
def campaign(make_campaign) -> Campaign:
    return make_campaign()


@pytest.fixture
def api() -> Callable[[Any], APIClient]:
    """An API client authenticated with the user's token (or anonymous for ``None``)."""

    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for


@pytest.fixture(scope="session")
def butler_root(tmp_path_factory) -> str:
    """A small real Butler repo built the same way as the demo one: 9 detectors, 2 nights."""
    from lsst_adapter.demo import build_demo_repo

    root = tmp_path_factory.mktemp("butler") / "repo"
    build_demo_repo(root, nights=(20251121, 20251122), science_per_night=4, detectors=9)
    return str(root)


@pytest.fixture
def butler_repo(db, butler_root):
    """The test Butler repo registered as ``demo`` with its exposure/detector mirror read from the registry."""
    from tagging.services import butler_repo_upsert, repo_mirror_sync

    repo = butler_repo_upsert(label="demo", config_uri=butler_root, default_instrument="DemoCam")
    repo_mirror_sync(repo=repo)
    return repo
