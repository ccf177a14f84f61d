"""Small helpers shared by the campaign tests: extra people, form data, and a snapshot of what is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from campaigns.definition import snapshot
from campaigns.forms import CampaignForm
from campaigns.models import (
    Attachment,
    Campaign,
    CampaignGroupObjectPermission,
    CampaignUserObjectPermission,
    HistoryEntry,
    Step,
)
from core.roles import ensure_role_groups, set_role
from tests.conftest import PASSWORD


def make_user(username: str, role: str | None) -> Any:
    ensure_role_groups()
    user = get_user_model().objects.create_user(username, f"{username}@example.org", PASSWORD)
    if role:
        set_role(user, role)
    return user


def stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def db_state(*, tokens: bool = False) -> dict[str, Any]:
    """Everything a request could change, to compare before and after (API tokens only if asked)."""
    state = {
        "campaigns": list(
            Campaign.objects.order_by("pk").values_list(
                "pk", "name", "version", "status", "archived", "reason", "visibility", "owner_id"
            )
        ),
        "history": list(HistoryEntry.objects.order_by("pk").values_list("pk", "action", "version")),
        "attachments": list(Attachment.objects.order_by("pk").values_list("pk", "sha256")),
        "steps": list(Step.objects.order_by("pk").values_list("pk", "name", "position")),
        "user_perms": list(
            CampaignUserObjectPermission.objects.order_by("pk").values_list(
                "user_id", "permission__codename", "content_object_id"
            )
        ),
        "group_perms": list(
            CampaignGroupObjectPermission.objects.order_by("pk").values_list(
                "group_id", "permission__codename", "content_object_id"
            )
        ),
        "files": stored_files(),
    }
    if tokens:
        state["tokens"] = sorted(Token.objects.values_list("key", flat=True))
    return state


def _formset(prefix: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, step in enumerate(rows):
        data[f"{prefix}-{i}-name"] = step["name"]
        data[f"{prefix}-{i}-pipeline_subset"] = step.get("pipeline_subset", "")
        data[f"{prefix}-{i}-depends_on"] = ", ".join(step.get("depends_on", []))
        if step.get("requires_approval"):
            data[f"{prefix}-{i}-requires_approval"] = "on"
    return data


def new_form_data(**overrides) -> dict[str, Any]:
    """POST data for the 'New campaign' page."""
    data: dict[str, Any] = {
        "name": "made-by-form",
        "campaign_type": "mini-drp",
        "reason": "A campaign made through the web form",
        "description": "",
        "owner": "",
        "visibility": "public",
        "butler_repo": "demo",
        "pipeline": "demo/pipelines/drp.yaml",
        "input_collections": "DemoCam/raw/all",
        "data_query": "instrument = 'DemoCam'",
        "comment": "",
    }
    steps = overrides.pop("steps", [{"name": "step1", "pipeline_subset": "step1"}])
    data.update(overrides)
    data.update(_formset("steps", steps))
    return data


def edit_form_data(campaign: Campaign, **changes) -> dict[str, Any]:
    """POST data for the edit page exactly as the page would send it, with ``changes`` applied."""
    campaign.refresh_from_db()
    initial = CampaignForm.initial_from(campaign)
    data = {key: ("" if value is None else value) for key, value in initial.items()}
    steps = changes.pop("steps", snapshot(campaign)["steps"])
    data.update(changes)
    data.update(_formset("steps", steps))
    return data
