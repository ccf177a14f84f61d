"""Every write to the campaign database.

Each service is keyword-only, atomic, validates before it saves and records
its own history entry. Views, serializers, tasks and commands call these;
nothing else saves campaign models.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from core.errors import ConflictError
from core.roles import is_staff_member
from core.sharing import share_object

from .choices import STATUS_TRANSITIONS, CampaignStatus, HistoryAction
from .definition import DEFINITION_FIELDS, as_snapshot, clean_definition, diff, snapshot
from .models import CHANGE, VIEW, Attachment, Campaign, HistoryEntry, Step, WorkerHeartbeat, default_split
from .selectors import access_campaign

# Steps may only be redefined while nothing has run.
_EDITABLE_STEP_STATES = {CampaignStatus.DRAFT, CampaignStatus.READY}


def _require_staff(user) -> None:
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can change campaigns.")


def _record(
    *, campaign: Campaign, actor, action: str, changes: Mapping[str, Any] | None = None, comment: str = ""
) -> HistoryEntry:
    return HistoryEntry.objects.create(
        campaign=campaign,
        actor=actor,
        action=action,
        version=campaign.version,
        changes=dict(changes or {}),
        comment=comment.strip(),
    )


def _write_steps(campaign: Campaign, steps: list[dict[str, Any]]) -> None:
    existing = {s.name: s for s in campaign.steps.all()}
    wanted = [s["name"] for s in steps]
    Step.objects.filter(campaign=campaign).exclude(name__in=wanted).delete()
    by_name: dict[str, Step] = {}
    for position, spec in enumerate(steps):
        step = existing.get(spec["name"]) or Step(campaign=campaign, name=spec["name"])
        step.position = position
        step.pipeline_subset = spec["pipeline_subset"]
        step.requires_approval = spec["requires_approval"]
        step.where = spec.get("where", "")
        step.split = spec.get("split") or default_split()
        step.quality_gates = spec.get("quality_gates", [])
        step.metric_input = spec.get("metric_input", {})
        step.save()
        by_name[step.name] = step
    for spec in steps:
        by_name[spec["name"]].depends_on.set([by_name[d] for d in spec["depends_on"]])


def _grant_owner(campaign: Campaign) -> None:
    for perm in ("view_campaign", "change_campaign"):
        assign_perm(perm, campaign.owner, campaign)


@transaction.atomic
def campaign_create(*, user, data: Mapping[str, Any], comment: str = "", action_note: str = "") -> Campaign:
    """Create a campaign (and its steps) from a definition; ``user`` becomes definer and, unless named, owner."""
    _require_staff(user)
    clean = clean_definition(data, user=user)  # DataID sets it names: only those the user may see
    owner = clean.pop("owner", None) or user
    collaborators = clean.pop("collaborators")
    steps = clean.pop("steps", [])
    clean["butler_repo_id"] = clean.pop("butler_repo")
    campaign = Campaign.objects.create(definer=user, owner=owner, status=CampaignStatus.DRAFT, version=1, **clean)
    campaign.collaborators.set(collaborators)
    _write_steps(campaign, steps)
    _grant_owner(campaign)
    after = snapshot(campaign)
    _record(
        campaign=campaign,
        actor=user,
        action=HistoryAction.CREATE,
        changes={k: [None, v] for k, v in after.items() if v not in ("", [], {}, None)},
        comment=comment or action_note,
    )
    return campaign


def _stale_message(campaign: Campaign, since_version: int) -> tuple[str, list[dict[str, Any]]]:
    entries = list(campaign.history.filter(version__gt=since_version).select_related("actor").order_by("at", "pk"))
    changes = []
    parts = []
    for entry in entries:
        who = entry.actor.username if entry.actor else "the system"
        fields = sorted(entry.changes)
        changes.append(
            {"by": who, "at": entry.at.isoformat(), "action": entry.action, "fields": fields, "version": entry.version}
        )
        what = ", ".join(fields) if fields else entry.get_action_display().lower()
        parts.append(f"{who} changed {what} at {entry.at:%Y-%m-%d %H:%M:%S} UTC (version {entry.version})")
    message = (
        f"This campaign was changed after you loaded version {since_version}: "
        + ("; ".join(parts) if parts else f"it is now at version {campaign.version}")
        + ". Reload it and apply your edit again."
    )
    return message, changes


@transaction.atomic
def campaign_update(*, user, campaign_id: int, version: int, data: Mapping[str, Any], comment: str = "") -> Campaign:
    """Apply a (partial) edit based on ``version``; a stale version is refused with who changed what meanwhile."""
    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    if version is None:
        raise ValidationError({"version": "The version your edit is based on is required."})
    if int(version) != campaign.version:
        message, stale = _stale_message(campaign, int(version))
        raise ConflictError(message, current_version=campaign.version, changes=stale)
    before = snapshot(campaign)
    unknown = [k for k in data if k not in DEFINITION_FIELDS and k != "steps"]
    if unknown:
        raise ValidationError({k: f"Unknown field {k!r}." for k in unknown})
    merged = {**before, **data}
    if "steps" not in data:
        merged.pop("steps")
    clean = clean_definition(merged, instance=campaign, user=user)
    if "steps" in clean and clean["steps"] != before["steps"] and campaign.status not in _EDITABLE_STEP_STATES:
        raise ValidationError(
            {"steps": f"Steps cannot change once the campaign is {campaign.get_status_display().lower()}."}
        )
    changes = diff(before, as_snapshot(clean, previous=before))
    if not changes:
        return campaign
    owner = clean.pop("owner")
    collaborators = clean.pop("collaborators")
    steps = clean.pop("steps", None)
    for field, value in clean.items():
        setattr(campaign, field if field != "butler_repo" else "butler_repo_id", value)
    campaign.owner = owner
    # The conditional update is the real guard: it holds even where SELECT ... FOR UPDATE is a no-op (SQLite).
    updated = Campaign.objects.filter(pk=campaign.pk, version=campaign.version).update(version=F("version") + 1)
    if updated != 1:
        campaign.refresh_from_db()
        message, stale = _stale_message(campaign, int(version))
        raise ConflictError(message, current_version=campaign.version, changes=stale)
    campaign.version += 1
    campaign.save()
    campaign.collaborators.set(collaborators)
    if steps is not None:
        _write_steps(campaign, steps)
    if owner.username != before["owner"]:
        _grant_owner(campaign)
        # The previous owner's rights came with ownership; they go with it (unless they stay a collaborator).
        previous = get_user_model().objects.filter(username=before["owner"]).first()
        if previous is not None:
            for perm in ("view_campaign", "change_campaign"):
                remove_perm(perm, previous, campaign)
    _record(campaign=campaign, actor=user, action=HistoryAction.EDIT, changes=changes, comment=comment)
    return campaign


@transaction.atomic
def campaign_set_status(
    *, user, campaign_id: int, status: str, comment: str = "", version: int | None = None
) -> Campaign:
    """Move a campaign to ``status`` if the transition table allows it."""
    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    if version is not None and int(version) != campaign.version:
        message, changes = _stale_message(campaign, int(version))
        raise ConflictError(message, current_version=campaign.version, changes=changes)
    if status not in CampaignStatus.values:
        raise ValidationError({"status": f"{status!r} is not a campaign status."})
    if status == campaign.status:
        return campaign
    allowed = STATUS_TRANSITIONS[campaign.status]
    if status not in allowed:
        names = ", ".join(sorted(allowed)) or "none"
        raise ValidationError({"status": f"A {campaign.status} campaign cannot become {status} (allowed: {names})."})
    old = campaign.status
    campaign.status = status
    campaign.version += 1
    campaign.save(update_fields=["status", "version", "updated"])
    _record(
        campaign=campaign, actor=user, action=HistoryAction.STATUS, changes={"status": [old, status]}, comment=comment
    )
    return campaign


@transaction.atomic
def campaign_archive(*, user, campaign_id: int, archived: bool = True, comment: str = "") -> Campaign:
    """Archive (the API's DELETE) or restore a campaign. Nothing is ever deleted."""
    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    if campaign.archived == archived:
        return campaign
    if archived and campaign.status == CampaignStatus.RUNNING:
        raise ValidationError({"archived": "A running campaign cannot be archived; pause or cancel it first."})
    campaign.archived = archived
    campaign.version += 1
    campaign.save(update_fields=["archived", "version", "updated"])
    _record(
        campaign=campaign,
        actor=user,
        action=HistoryAction.ARCHIVE if archived else HistoryAction.UNARCHIVE,
        changes={"archived": [not archived, archived]},
        comment=comment,
    )
    return campaign


def clone_output_collection(
    *, source_collection: str, source_name: str, source_owner: str, name: str, owner: str
) -> str:
    """The output collection of a copy named ``name`` owned by ``owner``: the source's with its name replaced
    by the new one where it is a part of the path (``HSC/runs/w48`` → ``HSC/runs/w49``); the owner's default
    ``u/<owner>/<name>`` when the source used the default (or had none) or does not contain its name."""
    default = f"u/{source_owner}/{source_name}"
    parts = source_collection.split("/")
    if source_collection and source_collection != default and source_name in parts:
        return "/".join(name if part == source_name else part for part in parts)
    return f"u/{owner}/{name}"


@transaction.atomic
def campaign_clone(
    *,
    user,
    campaign_id: int,
    name: str,
    overrides: Mapping[str, Any] | None = None,
    comment: str = "",
    output_collection: str = "",
) -> Campaign:
    """A new draft campaign with the same definition and steps, owned by ``user``.

    Its output collection is ``output_collection`` if given, else derived from its name
    (``clone_output_collection``): never the source's, whose RUN collections exist already (every group of
    the copy would fail its preflight)."""
    source = access_campaign(user, campaign_id, VIEW)
    _require_staff(user)
    data = snapshot(source)
    # The copy is the cloner's: the source's collaborators get no rights on it unless the cloner adds them.
    data.update({"name": name, "owner": user.username, "collaborators": []})
    data["output_collection"] = output_collection.strip() or clone_output_collection(
        source_collection=source.output_collection,
        source_name=source.name,
        source_owner=source.owner.username,
        name=str(name).strip(),
        owner=user.username,
    )
    data.update(overrides or {})
    # The source writes to its own, or (not launched yet) to its default u/<owner>/<name>.
    source_writes_to = source.output_collection or f"u/{source.owner.username}/{source.name}"
    taken = data["output_collection"] == source_writes_to or (
        Campaign.objects.filter(butler_repo__label=source.butler_repo_id, output_collection=data["output_collection"])
        .exclude(output_collection="")
        .exists()
    )
    if taken:
        raise ValidationError(
            {
                "output_collection": f"{data['output_collection']} is the output collection of another campaign "
                "(its RUN collections would already exist): give the copy its own."
            }
        )
    return campaign_create(
        user=user, data=data, comment=comment or f"Cloned from {source.name} (version {source.version})."
    )


@transaction.atomic
def campaign_share(
    *,
    user,
    campaign_id: int,
    username: str | None = None,
    group: str | None = None,
    permission: str = "view",
    grant: bool = True,
) -> Campaign:
    """Share (or stop sharing) a campaign with one user or one group, for ``view`` or ``change``."""
    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    done = share_object(campaign, username=username, group=group, permission=permission, grant=grant)
    campaign.version += 1
    campaign.save(update_fields=["version", "updated"])
    _record(
        campaign=campaign,
        actor=user,
        action=HistoryAction.SHARE,
        changes={"sharing": [None, done]},
    )
    return campaign


def _check_upload(upload: UploadedFile) -> None:
    limit = settings.CM_ATTACHMENT_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ValidationError(
            {
                "file": f"{upload.name} is {filesizeformat(upload.size or 0)}; attachments may be at most {filesizeformat(limit)}."
            }
        )
    if upload.size == 0:
        raise ValidationError({"file": f"{upload.name} is empty."})


@transaction.atomic
def attachment_add(
    *, user, campaign_id: int, upload: UploadedFile, description: str = "", comment: str = ""
) -> Attachment:
    """Store an uploaded file under MEDIA_ROOT and attach it to the campaign."""
    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    _check_upload(upload)
    size = int(upload.size or 0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    original = (upload.name or "attachment").replace("\\", "/").rsplit("/", 1)[-1][:255] or "attachment"
    attachment = Attachment(
        campaign=campaign,
        original_name=original,
        size=size,
        sha256=digest.hexdigest(),
        uuid_hex=uuid.uuid4().hex,
        content_type=(getattr(upload, "content_type", "") or "")[:100],
        description=description.strip()[:300],
        uploaded_by=user,
    )
    attachment.file.save(original, upload, save=False)
    try:
        attachment.save()
        campaign.version += 1
        campaign.save(update_fields=["version", "updated"])
        _record(
            campaign=campaign,
            actor=user,
            action=HistoryAction.ATTACHMENT,
            changes={"attachments": [None, f"{original} ({filesizeformat(size)}, sha256 {attachment.sha256[:12]}…)"]},
            comment=comment,
        )
    except Exception:
        attachment.file.delete(save=False)
        raise
    return attachment


@transaction.atomic
def attachment_delete(*, user, campaign_id: int, attachment_id: int, comment: str = "") -> None:
    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    attachment = campaign.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404(f"No attachment {attachment_id} on campaign {campaign.name}.")
    name, stored = attachment.original_name, str(attachment.file.name)
    attachment.delete()
    campaign.version += 1
    campaign.save(update_fields=["version", "updated"])
    _record(
        campaign=campaign,
        actor=user,
        action=HistoryAction.ATTACHMENT_DELETE,
        changes={"attachments": [name, None]},
        comment=comment,
    )
    storage = attachment.file.storage
    transaction.on_commit(lambda: storage.delete(stored))


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Called by the heartbeat task: note that ``hostname`` is alive. Safe to run twice."""
    beat, _ = WorkerHeartbeat.objects.get_or_create(hostname=hostname[:255], defaults={"seen": timezone.now()})
    WorkerHeartbeat.objects.filter(pk=beat.pk).update(seen=timezone.now(), tasks_seen=F("tasks_seen") + 1)
    beat.refresh_from_db()
    return beat


@transaction.atomic
def campaign_import(*, user, text: str | bytes, comment: str = "") -> Campaign:
    """Create a campaign from a YAML definition (the form ``campaign_to_yaml`` writes)."""
    from .yaml_io import parse_campaign_yaml

    _require_staff(user)
    size = len(text.encode() if isinstance(text, str) else text)
    if size > settings.CM_YAML_MAX_BYTES:
        raise ValidationError(
            {
                "yaml": f"The YAML is {filesizeformat(size)}; at most {filesizeformat(settings.CM_YAML_MAX_BYTES)} is accepted (CM_YAML_MAX_BYTES)."
            }
        )
    data = parse_campaign_yaml(text)
    return campaign_create(user=user, data=data, comment=comment or "Imported from YAML.")


@transaction.atomic
def step_groups_define(*, user, campaign_id: int, step_name: str, groups: list[Mapping[str, Any]]) -> list:
    """Replace the groups of a step that has not started (names and frozen data queries)."""
    from .choices import GroupStatus
    from .models import Group

    campaign = access_campaign(user, campaign_id, CHANGE, for_update=True)
    step = campaign.steps.filter(name=step_name).first()
    if step is None:
        raise ValidationError({"step": f"Campaign {campaign.name} has no step {step_name!r}."})
    if step.groups.exclude(status__in=[GroupStatus.WAITING, GroupStatus.READY]).exists():
        raise ValidationError(
            {"step": f"Step {step_name} has groups that already ran; its groups cannot be redefined."}
        )
    step.groups.all().delete()
    created = []
    for position, spec in enumerate(groups):
        group = Group(step=step, name=spec["name"], position=position, data_query=spec.get("data_query", ""))
        group.full_clean(exclude=["step"])
        group.save()
        created.append(group)
    return created


@transaction.atomic
def group_set_status(*, user, group_id: int, status: str, comment: str = "") -> Any:
    """Record a group's new state (the executor of issue "Execution" drives this)."""
    from .choices import GroupStatus
    from .models import Group

    group = Group.objects.select_related("step__campaign").select_for_update(of=("self",)).get(pk=group_id)
    access_campaign(user, group.step.campaign_id, CHANGE)
    if status not in GroupStatus.values:
        raise ValidationError({"status": f"{status!r} is not a group status."})
    old = group.status
    if old == status:
        return group
    group.status = status
    group.save(update_fields=["status", "updated"])
    campaign = group.step.campaign
    Campaign.objects.filter(pk=campaign.pk).update(version=F("version") + 1)
    campaign.refresh_from_db(fields=["version"])
    _record(
        campaign=campaign,
        actor=user,
        action=HistoryAction.STATUS,
        changes={f"group {group.step.name}/{group.name}": [old, status]},
        comment=comment,
    )
    return group
