"""Does a step's split cover its data exactly once? The plan and the launch refuse a split that would drop
or duplicate data.

The unit is what would run: for each task of the step, the data IDs of the task's dimensions (as
:func:`lsst_adapter.estimate.task_data_ids` selects them, joined as the QuantumGraph builder joins them).
The union of the groups' data IDs must equal the step's (the campaign's data query AND the step's own
``where``, with the campaign's DataID sets), and no data ID may be in two groups.

A rule whose group key is part of every task's data ID (a night split of per-exposure tasks, a tract split
of per-patch tasks, chunks of a set of exposure x detector for per-detector tasks) cuts the step into a
partition by construction: its groups are made from the same selection, each data ID has one key. Nothing
is asked of the registry then. Otherwise (``list`` splits, overlapping ``where``s, a night split of a
per-tract task, ...) the registry is asked for the data IDs of the step and of each group, for at most
``CM_SPLIT_CHECK_MAX_GROUPS`` groups and ``CM_SPLIT_CHECK_MAX_ROWS`` data IDs; past that the plan says the
split was not checked rather than hold the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from ..choices import SplitBy
from ..models import Campaign, Step
from ..splits import KEY_DIMENSION, describe
from .planning import PlannedGroup, clean_split

SHOWN = 5  # data IDs named in a message


@dataclass
class SplitCheck:
    """The verdict on one step's split: ``partition`` (by construction), ``checked`` (data ID by data ID),
    or ``unchecked`` (why in ``note``). A split that drops or duplicates data raises instead."""

    state: str
    note: str

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "note": self.note}


def _data_id_text(dims: Sequence[str], values: tuple) -> str:
    return "{" + ", ".join(f"{d}: {v}" for d, v in zip(dims, values, strict=True) if d != "instrument") + "}"


def _key_of(step_split: dict[str, Any], groups: list[PlannedGroup]) -> list[str] | None:
    """The dimensions every group's key is made of, or None when the groups have no key (``list``)."""
    by = step_split["by"]
    if by == SplitBy.DATAID_SET:
        table = next((g.table for g in groups if g.table is not None), None)
        return [d for d in (table.dimensions if table else []) if d != "instrument"] or None
    key = KEY_DIMENSION.get(by)
    return [key] if key else None


def check_split(
    *,
    campaign: Campaign,
    step: Step,
    groups: list[PlannedGroup],
    shape: Any,
    where: str,
    tables: Sequence[Any],
) -> SplitCheck:
    """Check the groups of ``step`` against its selection ``where`` (and the campaign's data-ID ``tables``).

    ``shape`` is the step's :class:`lsst_adapter.estimate.PipelineShape`. Raises ``ValidationError`` (key
    ``steps[i].split``) naming the data IDs dropped or duplicated, how many, and by which groups."""
    from lsst_adapter.estimate import TooManyDataIds, task_data_ids
    from lsst_adapter.registry import RepoError

    if step.groups.exists():
        return SplitCheck("unchecked", "pre-defined groups: not checked")
    split = clean_split(step.split)
    key = _key_of(split, groups)
    to_check: dict[tuple, str] = {}
    for label, dims in shape.tasks.items():
        names = set(shape.names.get(label, dims))
        if key and all(k in names for k in key):
            continue
        signature = (tuple(dims), tuple(sorted({d for ds in shape.inputs.get(label, {}).values() for d in ds})))
        to_check.setdefault(signature, label)
    rule = describe(split)
    if not to_check:
        return SplitCheck(
            "partition", f"{rule}: a partition by construction (every task's data IDs have a {' and '.join(key or [])})"
        )
    if len(groups) > settings.CM_SPLIT_CHECK_MAX_GROUPS:
        return SplitCheck(
            "unchecked",
            f"{rule}: {len(groups)} groups, more than the {settings.CM_SPLIT_CHECK_MAX_GROUPS} "
            "compared data ID by data ID (CM_SPLIT_CHECK_MAX_GROUPS): not checked for dropped or duplicated data",
        )
    repo = campaign.butler_repo
    limit = settings.CM_SPLIT_CHECK_MAX_ROWS
    collections = list(campaign.input_collections or [])
    instrument = repo.default_instrument or None
    problems: list[str] = []
    held = 0
    for label in to_check.values():
        dims = shape.tasks[label]
        try:
            total = task_data_ids(
                repo.config_uri,
                shape,
                label,
                where,
                tables=tables,
                limit=limit,
                input_collections=collections,
                default_instrument=instrument,
            )
            owners: dict[tuple, list[str]] = {}
            held += len(total)
            for group in groups:
                extra = [group.table] if group.table is not None else []
                ids = task_data_ids(
                    repo.config_uri,
                    shape,
                    label,
                    group.where,
                    tables=[*tables, *extra],
                    limit=limit,
                    input_collections=collections,
                    default_instrument=instrument,
                )
                held += len(ids)
                if held > limit:
                    raise TooManyDataIds(f"more than {limit:,} data IDs")
                for data_id in ids:
                    owners.setdefault(data_id, []).append(group.name)
        except TooManyDataIds as exc:
            return SplitCheck(
                "unchecked",
                f"{rule}: task {label} has {exc} to compare (CM_SPLIT_CHECK_MAX_ROWS): "
                "not checked for dropped or duplicated data",
            )
        except RepoError as exc:
            raise ValidationError({f"steps[{step.position}].split": f"Step {step.name}: {exc}"}) from exc
        dims_text = ", ".join(d for d in dims if d != "instrument")
        hint = ""
        if key:
            hint = (
                f" A {split['by']} split cuts a step into a partition only when every task's data IDs have a "
                f"{' and '.join(key)}; task {label} is per {dims_text}."
            )
        dropped = sorted(total - owners.keys())
        if dropped:
            shown = "; ".join(_data_id_text(dims, d) for d in dropped[:SHOWN])
            more = f" and {len(dropped) - SHOWN} more" if len(dropped) > SHOWN else ""
            problems.append(
                f"Step {step.name} ({rule}) drops data: {len(dropped)} of the {len(total)} data IDs of task {label} "
                f"({dims_text}) that the step selects are in no group: {shown}{more}."
            )
        duplicated = sorted(d for d, names in owners.items() if len(names) > 1)
        if duplicated:
            shown = "; ".join(
                f"{_data_id_text(dims, d)} in {', '.join(owners[d][:4])}{' …' if len(owners[d]) > 4 else ''}"
                for d in duplicated[:SHOWN]
            )
            more = f" and {len(duplicated) - SHOWN} more" if len(duplicated) > SHOWN else ""
            problems.append(
                f"Step {step.name} ({rule}) duplicates data: {len(duplicated)} data IDs of task {label} "
                f"({dims_text}) are in more than one group: {shown}{more}.{hint}"
            )
        outside = sorted(owners.keys() - total)
        if outside:  # a group's where is the step's AND more, so this means the registry answered oddly
            shown = "; ".join(_data_id_text(dims, d) for d in outside[:SHOWN])
            problems.append(
                f"Step {step.name} ({rule}): {len(outside)} data IDs of task {label} are in a group but not in "
                f"the step's selection: {shown}."
            )
    if problems:
        raise ValidationError({f"steps[{step.position}].split": problems})
    checked = ", ".join(to_check.values())
    return SplitCheck("checked", f"{rule}: checked data ID by data ID for task{'s' if len(to_check) > 1 else ''} "
                      f"{checked}; every data ID is in exactly one group")  # fmt: skip
