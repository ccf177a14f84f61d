"""Writes of the bad-data register: record, edit and move records through open → explained → fixed."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.roles import is_staff_member

from ..dataids.normalize import DataIdChecker
from ..models import DATA_ID_COLUMNS, BadDataEvent, BadDataRecord, BadDataSource, BadDataStatus, ButlerRepo

URL_RE = re.compile(r"^https?://\S+$")
EDITABLE = ("summary", "explanation", "links", "dataset_type", "dataset_id", "collection")


def _require_staff(user) -> None:
    if not is_staff_member(user):
        raise PermissionDenied("Only staff members can change the bad-data register.")


def _links(value: Any) -> list[str]:
    if value is None:
        return []
    items = [v for v in re.split(r"[\s,]+", value) if v] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(u, str) and URL_RE.match(u) for u in items):
        raise ValidationError({"links": ["Links are URLs starting with http:// or https://."]})
    return list(items)


def _dataset_id(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError({"dataset_id": [f"{value!r} is not a dataset id (a UUID)."]}) from None


def bad_data_id_check(*, repo: ButlerRepo, data_id: dict[str, Any]) -> tuple[list[str], dict[str, Any], str]:
    """A data ID checked against the repo (alternate keys accepted): its dimensions, values and canonical key."""
    if not isinstance(data_id, dict) or not data_id:
        raise ValidationError({"data_id": ["A data ID is a mapping of dimension names to values."]})
    result = DataIdChecker(repo).run(iter([("data_id", dict(data_id))]))
    if result.error_total or not result.rows:
        reasons = "; ".join(f"{p.key + ': ' if p.key else ''}{p.message}" for p in result.errors) or "not valid"
        raise ValidationError({"data_id": [f"Not a data ID of repo {repo.label}: {reasons}."]})
    dims = list(result.dimensions)
    values = dict(zip(dims, result.rows[0], strict=True))
    key = ",".join(f"{d}={values[d]}" for d in dims)
    return dims, values, key


@transaction.atomic
def bad_data_add(
    *,
    user,
    repo_label: str,
    summary: str,
    data_id: dict[str, Any] | None = None,
    dataset_type: str = "",
    dataset_id: Any = None,
    collection: str = "",
    explanation: str = "",
    links: Any = None,
    status: str = BadDataStatus.OPEN,
    source: str = BadDataSource.MANUAL,
    quantum_error=None,
    source_detail: dict | None = None,
) -> BadDataRecord:
    """Record a data ID and/or a dataset as bad (staff only). The data ID is checked against the repo."""
    _require_staff(user)
    repo = ButlerRepo.objects.filter(label=repo_label).first()
    if repo is None:
        raise ValidationError({"repo": [f"No Butler repo labelled {repo_label!r}."]})
    errors: dict[str, list[str]] = {}
    if not (summary or "").strip():
        errors["summary"] = ["Say in one line what is wrong."]
    if status not in BadDataStatus.values:
        errors["status"] = [f"Use one of {', '.join(BadDataStatus.values)}."]
    if not data_id and not dataset_id and not dataset_type:
        errors["data_id"] = ["Give a data ID, a dataset (type and id), or both."]
    if dataset_id and not dataset_type:
        errors["dataset_type"] = ["Give the dataset type of the dataset id."]
    if errors:
        raise ValidationError(errors)
    record = BadDataRecord(
        repo=repo,
        summary=summary.strip()[:200],
        dataset_type=(dataset_type or "").strip(),
        dataset_id=_dataset_id(dataset_id),
        collection=(collection or "").strip(),
        explanation=explanation or "",
        links=_links(links),
        status=status,
        source=source,
        quantum_error=quantum_error,
        source_detail=source_detail or {},
        created_by=user,
    )
    if data_id:
        dims, values, key = bad_data_id_check(repo=repo, data_id=data_id)
        record.dimensions, record.key = dims, key
        for column in DATA_ID_COLUMNS:
            if column in values:
                setattr(record, column, values[column])
    record.full_clean()
    record.save()
    BadDataEvent.objects.create(
        record=record, action="created", to_status=record.status, user=user, comment=record.summary
    )
    return record


@transaction.atomic
def bad_data_from_failure(*, user, quantum_error_id: int, summary: str = "") -> BadDataRecord:
    """Record the data ID of a failed quantum as bad data, keeping a copy of the failure.

    The user must be staff and allowed to see the campaign. Doing it twice for the same failure
    returns the first record.
    """
    from campaigns.models import QuantumError
    from campaigns.selectors import access_group

    _require_staff(user)
    error = QuantumError.objects.select_related("submission__group__step__campaign").filter(pk=quantum_error_id).first()
    if error is None:
        raise ValidationError({"quantum_error": [f"No failure record {quantum_error_id}."]})
    group = access_group(user, error.submission.group_id)
    existing = BadDataRecord.objects.filter(quantum_error=error).first()
    if existing is not None:
        return existing
    campaign = group.step.campaign
    detail = {
        "campaign": campaign.name,
        "campaign_id": campaign.pk,
        "step": group.step.name,
        "group": group.name,
        "group_id": group.pk,
        "attempt": error.submission.number,
        "run_collection": error.submission.run_collection,
        "task_label": error.task_label,
        "exception_type": error.exception_type,
        "message": error.message[:4000],
        "log_location": error.log_location,
    }
    first_line = ((error.message or error.exception_type or "").strip().splitlines() or ["failed"])[0]
    return bad_data_add(
        user=user,
        repo_label=campaign.butler_repo_id,
        summary=(summary or f"{error.task_label} failed: {first_line}")[:200],
        data_id=error.data_id or None,
        dataset_type="" if error.data_id else error.task_label,
        collection=error.submission.run_collection or "",
        source=BadDataSource.FAILURE,
        quantum_error=error,
        source_detail=detail,
    )


def _lock(record_id: Any) -> BadDataRecord:
    try:
        pk = int(record_id)
    except (TypeError, ValueError):
        raise ValidationError({"id": [f"{record_id!r} is not a record id."]}) from None
    record = BadDataRecord.objects.select_for_update().filter(pk=pk).first()
    if record is None:
        raise ValidationError({"id": [f"No bad-data record {pk}."]})
    return record


@transaction.atomic
def bad_data_set_status(
    *, user, record_id: Any, status: str, explanation: str | None = None, comment: str = ""
) -> BadDataRecord:
    """Move a record to ``status``; explaining it needs an explanation (given now or before)."""
    _require_staff(user)
    record = _lock(record_id)
    if status not in BadDataStatus.values:
        raise ValidationError({"status": [f"Use one of {', '.join(BadDataStatus.values)}."]})
    changes: dict[str, list] = {}
    if explanation is not None and explanation != record.explanation:
        changes["explanation"] = [record.explanation, explanation]
        record.explanation = explanation
    if status == BadDataStatus.EXPLAINED and not record.explanation.strip():
        raise ValidationError({"explanation": ["Say what the explanation is."]})
    old = record.status
    if old == status and not changes:
        return record
    record.status = status
    record.save()
    BadDataEvent.objects.create(
        record=record,
        action="status" if old != status else "edited",
        from_status=old,
        to_status=status,
        changes=changes,
        comment=comment,
        user=user,
    )
    return record


@transaction.atomic
def bad_data_edit(*, user, record_id: Any, comment: str = "", **changes: Any) -> BadDataRecord:
    """Change the summary, explanation, links or dataset of a record; every change is kept in its history."""
    _require_staff(user)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["This field cannot be edited."]})
    record = _lock(record_id)
    if "links" in changes:
        changes["links"] = _links(changes["links"])
    if "dataset_id" in changes:
        changes["dataset_id"] = _dataset_id(changes["dataset_id"])
    if "summary" in changes and not (changes["summary"] or "").strip():
        raise ValidationError({"summary": ["Say in one line what is wrong."]})
    diff: dict[str, list] = {}
    for field, value in changes.items():
        old = getattr(record, field)
        if old != value:
            diff[field] = [
                str(old) if isinstance(old, uuid.UUID) else old,
                str(value) if isinstance(value, uuid.UUID) else value,
            ]
            setattr(record, field, value)
    if not diff:
        return record
    record.full_clean()
    record.save()
    BadDataEvent.objects.create(
        record=record,
        action="edited",
        from_status=record.status,
        to_status=record.status,
        changes=diff,
        comment=comment,
        user=user,
    )
    return record
