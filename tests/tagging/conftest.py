"""Fixtures for the DataID-set and exposure tests.

The Butler repo is the real one of the ``butler_root`` fixture (DemoCam, detectors 0..8 named
R22_S00..R22_S22, nights 20251121 and 20251122 with calibrations seq 1..6 and science seq 150..153).
Sets are made through the real services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tagging.models import DataIdSetVersion
from tagging.services import UploadSource, dataidset_create


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def make_set(butler_repo, owner) -> Callable[..., DataIdSetVersion]:
    """Store a set (or a new version) from a list of data IDs through the real service."""

    def make(name: str, records: list[dict[str, Any]], *, user=None, visibility: str = "private", **extra):
        return dataidset_create(
            user=user or owner,
            repo_label="demo",
            name=name,
            reason=f"test set {name}",
            source=UploadSource(kind="records", records=records),
            visibility=visibility,
            **extra,
        )

    return make
