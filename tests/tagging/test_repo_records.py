"""Butler repo records: updating one never forgets that its mirror was read."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tagging.models import ButlerRepo, Exposure
from tagging.services import butler_repo_upsert

pytestmark = pytest.mark.django_db


def test_updating_a_repo_record_keeps_when_its_mirror_was_read(butler_repo):
    synced = ButlerRepo.objects.get(pk=butler_repo.pk).mirror_synced
    assert synced is not None
    butler_repo_upsert(label="demo", config_uri=butler_repo.config_uri, description="new words")
    again = ButlerRepo.objects.get(pk=butler_repo.pk)
    assert again.description == "new words"
    assert again.mirror_synced == synced


def test_build_demo_repo_registers_the_repo_and_reads_its_exposures_once(tmp_path, capsys):
    root = tmp_path / "demo"
    call_command(
        "build_demo_repo", root=str(root), label="demo-cmd", nights="20251121", science_per_night=2, detectors=3
    )
    out = capsys.readouterr().out
    repo = ButlerRepo.objects.get(label="demo-cmd")
    assert (root / "butler.yaml").exists()
    assert "Read 8 exposures and 3 detectors" in out
    assert Exposure.objects.filter(repo=repo).count() == 8
    call_command("build_demo_repo", root=str(root), label="demo-cmd")
    out = capsys.readouterr().out
    assert "already exists" in out
    assert "Read " not in out  # the mirror is not read again for nothing
