"""Writes for the tagging app."""

from __future__ import annotations

from django.db import transaction

from .models import ButlerRepo


@transaction.atomic
def butler_repo_upsert(
    *, label: str, config_uri: str, description: str = "", default_instrument: str = ""
) -> ButlerRepo:
    repo = ButlerRepo(
        label=label, config_uri=config_uri, description=description, default_instrument=default_instrument
    )
    existing = ButlerRepo.objects.filter(label=label).first()
    if existing is not None:
        repo.pk, repo.created = existing.pk, existing.created
    repo.full_clean(validate_unique=existing is None)
    repo.save()
    return repo


DEMO_REPO_DESCRIPTION = "Demo repository of the DemoCam instrument (built by `manage.py build_demo_repo`)."


def demo_repo_register(*, root: str, label: str = "demo") -> ButlerRepo:
    """The ButlerRepo record of the demo repository (created or updated)."""
    return butler_repo_upsert(
        label=label, config_uri=str(root), description=DEMO_REPO_DESCRIPTION, default_instrument="DemoCam"
    )
