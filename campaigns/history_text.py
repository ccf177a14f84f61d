"""A campaign's history in words: what the page shows for each entry, instead of raw JSON.

Pure functions over ``HistoryEntry.changes`` (``{field: [old, new]}``): state changes (the campaign's status, a
step's, a group's) become "from → to" in the words of their choices, many groups moving alike become one line,
split rules and steps are described, mappings and lists are flattened. No database access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .choices import CampaignStatus, GroupStatus, HistoryAction, StepStatus

# The two tabs of the history: what people defined, and what happened when it ran.
DEFINITION_ACTIONS = (
    HistoryAction.CREATE,
    HistoryAction.EDIT,
    HistoryAction.ATTACHMENT,
    HistoryAction.ATTACHMENT_DELETE,
    HistoryAction.ARCHIVE,
    HistoryAction.UNARCHIVE,
    HistoryAction.SHARE,
    HistoryAction.SCHEDULE,
)
EXECUTION_ACTIONS = (HistoryAction.LAUNCH, HistoryAction.APPROVE, HistoryAction.EXECUTION, HistoryAction.STATUS)
HISTORY_TABS = {"all": None, "definition": DEFINITION_ACTIONS, "execution": EXECUTION_ACTIONS}

GROUPS_COLLAPSED = 3  # more groups than this moving alike in one entry: one line

_LABELS: dict[str, str] = {}
for _choices in (GroupStatus, StepStatus, CampaignStatus):
    for _value, _label in _choices.choices:
        _LABELS.setdefault(str(_value), str(_label).lower())

_FIELD_NAMES = {
    "campaign_type": "Type",
    "butler_repo": "Butler repo",
    "input_collections": "Input collections",
    "data_query": "Data query",
    "input_selection": "Input selection",
    "include_sets": "Include sets",
    "exclude_sets": "Exclude sets",
    "output_collection": "Output collection",
    "bps": "BPS settings",
    "notify": "Notifications",
    "archived": "Archived",
}


@dataclass
class Change:
    """One line of a history entry.

    ``state``: a status change, shown as two status badges (``old_state``/``new_state`` are the raw states).
    Otherwise ``old``/``new`` are words (``"—"`` for nothing). ``names``: the groups of a collapsed line.
    """

    label: str
    old: str = ""
    new: str = ""
    state: bool = False
    old_state: str = ""
    new_state: str = ""
    names: list[str] = field(default_factory=list)


def state_words(value: Any) -> str:
    """A status in words: ``awaiting_approval`` → "awaiting approval"."""
    if value in (None, ""):
        return "—"
    return _LABELS.get(str(value), str(value).replace("_", " "))


def split_text(split: Any) -> str:
    """A split rule in words: ``{"by": "exposure", "max_size": 10}`` → "groups of at most 10 exposures"."""
    if not isinstance(split, Mapping) or not split:
        return "one group per night" if split in (None, {}, "") else value_text(split)
    by = str(split.get("by", "night"))
    size = split.get("max_size")
    rest = {k: v for k, v in split.items() if k not in ("by", "max_size", "groups", "where")}
    if by == "night":
        text = "one group per night"
    elif by == "list":
        groups = split.get("groups") or []
        names = ", ".join(str(g.get("name", "?")) for g in groups if isinstance(g, Mapping))
        text = f"{len(groups)} named group{'s' if len(groups) != 1 else ''}" + (f" ({names})" if names else "")
    elif size:
        text = (
            f"groups of at most {size} {by}s"
            if by in ("exposure", "visit", "detector", "patch")
            else (f"one group per {by}, at most {size} each")
        )
    else:
        text = f"one group per {by}"
    if split.get("where"):
        text += f", where {split['where']}"
    if rest:
        text += f" ({value_text(rest)})"
    return text


def step_text(step: Any) -> str:
    """One step of a definition in words."""
    if not isinstance(step, Mapping):
        return value_text(step)
    parts = [f"subset {step['pipeline_subset']}"] if step.get("pipeline_subset") else []
    if step.get("depends_on"):
        parts.append("after " + ", ".join(step["depends_on"]))
    if step.get("requires_approval"):
        parts.append("needs approval")
    if step.get("split") is not None:
        parts.append(split_text(step["split"]))
    if step.get("quality_gates"):
        parts.append("gates: " + value_text(step["quality_gates"]))
    if step.get("metric_input"):
        parts.append("input: " + value_text(step["metric_input"]))
    return f"{step.get('name', '?')}" + (f" ({'; '.join(parts)})" if parts else "")


def value_text(value: Any) -> str:
    """Any recorded value in one readable line (mappings as ``key: value``, lists joined)."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {value_text(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            return ", ".join(value_text(item) for item in value)
        return " | ".join(value_text(item) for item in value)
    return str(value)


def _field_label(name: str) -> str:
    return _FIELD_NAMES.get(name, name.replace("_", " ").capitalize() if name.islower() else name)


def _state_change(label: str, pair: Any) -> Change:
    old, new = [*list(pair), None, None][:2] if isinstance(pair, list | tuple) else (None, pair)
    return Change(
        label=label,
        old=state_words(old),
        new=state_words(new),
        state=True,
        old_state=str(old or ""),
        new_state=str(new or ""),
    )


def describe(changes: Mapping[str, Any] | None) -> list[Change]:
    """The lines of one history entry, in words (see the module's docstring)."""
    lines: list[Change] = []
    moves: dict[tuple[str, str, str], list[str]] = {}  # (step, old, new) -> group names
    for key, pair in (changes or {}).items():
        old, new = [*list(pair), None, None][:2] if isinstance(pair, list | tuple) else (None, pair)
        if key.startswith("group ") and "/" in key:
            step, _, group = key[len("group ") :].partition("/")
            moves.setdefault((step, str(old or ""), str(new or "")), []).append(group)
        elif key == "status":
            lines.append(_state_change("Status", pair))
        elif key.startswith("step ") and key.endswith(" split"):
            lines.append(Change(label=f"Split of step {key[5:-6]}", old=split_text(old), new=split_text(new)))
        elif key.startswith("step ") and " " not in key[5:]:
            lines.append(_state_change(f"Step {key[5:]}", pair))
        elif key == "steps":
            lines.append(Change(label="Steps", old=_steps_text(old), new=_steps_text(new)))
        else:
            lines.append(Change(label=_field_label(key), old=value_text(old), new=value_text(new)))
    for (step, old, new), names in moves.items():
        if len(names) > GROUPS_COLLAPSED:
            change = _state_change(f"{len(names)} groups of step {step}", [old, new])
            change.names = names
            lines.append(change)
        else:
            lines += [_state_change(f"Group {step}/{name}", [old, new]) for name in names]
    return lines


def _steps_text(steps: Any) -> str:
    if not isinstance(steps, list):
        return value_text(steps)
    return " | ".join(step_text(s) for s in steps) or "—"


def history_filter(tab: str | None) -> tuple[str, Iterable[str] | None]:
    """The tab asked for (``all`` when unknown) and the history actions it shows (None: all)."""
    tab = tab if tab in HISTORY_TABS else "all"
    return tab, HISTORY_TABS[tab]
