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
