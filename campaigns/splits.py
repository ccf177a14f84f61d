"""How a step is cut into groups (its ``split``): the rules, their normal form and their validation.

A split is part of a campaign's definition (YAML, API, form, clone, schedules, history). Its normal form
is a mapping whose first key is ``by``, then only the keys its rule takes, in ``KEY_ORDER``:

- ``{"by": "night"}``: one group per night (``day_obs``) of the step's exposures (the default);
- ``{"by": "exposure"|"visit"|"detector", "max_size": N}``: groups of at most N of them (N defaults to 50);
- ``{"by": "band"}``: one group per band of the step's exposures;
- ``{"by": "tract", "skymap": NAME[, "max_size": N]}``: one group per tract of the skymap that the step's
  data overlap (the registry's spatial join); with ``max_size``, a tract is cut into groups of at most N patches;
- ``{"by": "list", "groups": [{"name": ..., "where": ...}, ...]}``: named groups, each with its own ``where``;
- ``{"by": "dataid_set", "dataid_set": NAME, "version": N, "max_size": M}``: one group per chunk of at most M
  data IDs (default 1000) of a DataID set version (pinned to the latest when saved without one); each group
  is constrained by its chunk as a data-ID table.

``clean_split`` validates one and names the part at fault with a dotted path under the key it is given
(``steps[1].split.max_size``, ``steps[0].split.groups[2].where``). A bare rule name (``split: band``) is
accepted for rules that need nothing else. Whether the groups of a split cover the step's data exactly once
is checked when the campaign is planned (``campaigns.execution.split_check``): that needs the registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError

from lsst_adapter import check_where_syntax

from .choices import SplitBy
from .models import slug_safe

DEFAULT_SPLIT: dict[str, Any] = {"by": SplitBy.NIGHT.value}
DEFAULT_MAX_SIZE = 50
DEFAULT_SET_CHUNK = 1000
MAX_SIZE_LIMIT = 1_000_000
MAX_LIST_GROUPS = 10_000
KEY_ORDER = ("by", "skymap", "dataid_set", "version", "max_size", "groups")
_SKYMAP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,99}$")

# The keys each rule takes besides ``by``: name -> required?
RULE_KEYS: dict[str, dict[str, bool]] = {
    SplitBy.NIGHT: {},
    SplitBy.EXPOSURE: {"max_size": False},
    SplitBy.VISIT: {"max_size": False},
    SplitBy.DETECTOR: {"max_size": False},
    SplitBy.BAND: {},
    SplitBy.TRACT: {"skymap": True, "max_size": False},
    SplitBy.LIST: {"groups": True},
    SplitBy.DATAID_SET: {"dataid_set": True, "version": False, "max_size": False},
}
# The dimension a rule's group key is (a step whose every task has it in its data IDs is cut into a partition).
KEY_DIMENSION = {
    SplitBy.NIGHT: "day_obs",
    SplitBy.EXPOSURE: "exposure",
    SplitBy.VISIT: "visit",
    SplitBy.DETECTOR: "detector",
    SplitBy.BAND: "band",
    SplitBy.TRACT: "tract",
}

Add = Callable[[str, str], None]


def _max_size(value: Any, key: str, add: Add) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        add(key, f"Must be a positive whole number, got {value!r}.")
        return None
    try:
        number = int(value)
    except ValueError:
        add(key, f"Must be a positive whole number, got {value!r}.")
        return None
    if not 1 <= number <= MAX_SIZE_LIMIT:
        add(key, f"Must be a whole number from 1 to {MAX_SIZE_LIMIT:,}, got {number}.")
        return None
    return number


def _where(value: Any, key: str, add: Add, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        add(key, f"Must be a Butler 'where' expression (text), got {type(value).__name__}.")
        return ""
    value = value.strip()
    if not value:
        if required:
            add(key, "A non-empty Butler 'where' expression is required.")
        return ""
    if len(value) > 100_000:
        add(key, f"At most 100000 characters (got {len(value)}).")
        return ""
    problem = check_where_syntax(value)
    if problem is not None:
        add(key, f"Not a valid Butler 'where' expression: {problem.message}")
    return value


def clean_step_where(value: Any, key: str, add: Add) -> str:
    """A step's own ``where`` (ANDed to the campaign's data query for that step's groups); ``""`` for none."""
    return _where(value, key, add, required=False)


def _groups(value: Any, key: str, add: Add) -> list[dict[str, str]]:
    if not isinstance(value, list | tuple) or not value:
        add(key, 'A "list" split needs a non-empty list of groups: [{"name": ..., "where": ...}, ...].')
        return []
    if len(value) > MAX_LIST_GROUPS:
        add(key, f"At most {MAX_LIST_GROUPS:,} groups (got {len(value):,}).")
        return []
    out: list[dict[str, str]] = []
    names: set[str] = set()
    for i, group in enumerate(value):
        at = f"{key}[{i}]"
        if not isinstance(group, Mapping):
            add(at, 'Must be a mapping with a "name" and a "where".')
            continue
        for extra in group:
            if extra not in ("name", "where"):
                add(f"{at}.{extra}", "Unknown key; a group has a name and a where.")
        name = group.get("name")
        if not isinstance(name, str) or not name.strip():
            add(f"{at}.name", "A group needs a name.")
            name = ""
        else:
            name = name.strip()
            try:
                slug_safe(name)
            except ValidationError as exc:
                add(f"{at}.name", exc.messages[0])
            if len(name) > 100:
                add(f"{at}.name", f"At most 100 characters (got {len(name)}).")
            if name in names:
                add(f"{at}.name", f"{name!r} is used by another group of this step.")
            names.add(name)
        where = _where(group.get("where"), f"{at}.where", add, required=True)
        out.append({"name": name, "where": where})
    return out


def _dataid_set(value: Any, version: Any, key: str, add: Add, repo_label: str | None) -> tuple[str, int | None]:
    if isinstance(value, str) and "@v" in value and version is None:
        value, _, number = value.partition("@v")
        version = int(number) if number.isdigit() else number
    if not isinstance(value, str) or not value.strip():
        add(f"{key}.dataid_set", "Name the DataID set whose chunks make the groups.")
        return "", None
    name = value.strip()
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        add(f"{key}.version", f"Must be a version number, got {version!r}.")
        return name, None
    if not repo_label:
        return name, version
    from tagging.models import DataIdSetVersion

    versions = DataIdSetVersion.objects.filter(dataid_set__repo__label=repo_label, dataid_set__name=name)
    latest = versions.order_by("-number").values_list("number", flat=True).first()
    if latest is None:
        add(f"{key}.dataid_set", f"No DataID set {name!r} in repo {repo_label}.")
        return name, version
    if version is None:
        return name, latest  # pinned: the split keeps meaning the same data IDs when the set grows
    if not versions.filter(number=version).exists():
        add(f"{key}.version", f"{name} has no version {version} (latest: v{latest}).")
    return name, version


def clean_split(value: Any, key: str, add: Add, *, repo_label: str | None = None) -> dict[str, Any]:
    """Validate a split rule; return its normal form. Problems go to ``add(path, message)`` under ``key``.

    ``repo_label`` (when known) pins a ``dataid_set`` rule's version and checks the set exists."""
    if value in (None, "", {}):
        return dict(DEFAULT_SPLIT)
    if isinstance(value, str):
        value = {"by": value.strip()}
    if not isinstance(value, Mapping):
        add(key, 'Must be a mapping such as {"by": "night"} or {"by": "tract", "skymap": "..."}.')
        return dict(DEFAULT_SPLIT)
    rules = ", ".join(SplitBy.values)
    by = value.get("by")
    if by is None:
        add(f"{key}.by", f"Say how the step is cut: by one of {rules}.")
        return dict(DEFAULT_SPLIT)
    if by not in SplitBy.values:
        add(f"{key}.by", f"{by!r} is not a split rule; use one of {rules}.")
        return dict(DEFAULT_SPLIT)
    takes = RULE_KEYS[by]
    for extra in value:
        if extra != "by" and extra not in takes:
            allowed = ", ".join(takes) or "nothing besides 'by'"
            add(f"{key}.{extra}", f"A {by} split does not take {extra!r} (it takes: {allowed}).")
    for needed, required in takes.items():
        if required and value.get(needed) in (None, "", [], {}):
            add(f"{key}.{needed}", f"A {by} split needs {needed!r}.")
    out: dict[str, Any] = {"by": by}
    if by == SplitBy.TRACT and value.get("skymap") not in (None, ""):
        skymap = value["skymap"]
        if not isinstance(skymap, str) or not _SKYMAP_NAME.match(skymap.strip()):
            add(f"{key}.skymap", f"{skymap!r} is not a skymap name (letters, digits, '_', '.', '-', '/').")
        else:
            out["skymap"] = skymap.strip()
    if by == SplitBy.DATAID_SET and value.get("dataid_set") not in (None, ""):
        name, version = _dataid_set(value.get("dataid_set"), value.get("version"), key, add, repo_label)
        if name:
            out["dataid_set"] = name
            if version is not None:
                out["version"] = version
    if "max_size" in takes:
        if value.get("max_size") not in (None, ""):
            size = _max_size(value["max_size"], f"{key}.max_size", add)
            if size is not None:
                out["max_size"] = size
        elif by in (SplitBy.EXPOSURE, SplitBy.VISIT, SplitBy.DETECTOR):
            out["max_size"] = DEFAULT_MAX_SIZE
        elif by == SplitBy.DATAID_SET:
            out["max_size"] = DEFAULT_SET_CHUNK
    if by == SplitBy.LIST and value.get("groups") not in (None, "", []):
        out["groups"] = _groups(value["groups"], f"{key}.groups", add)
    return {k: out[k] for k in KEY_ORDER if k in out}


def split_or_raise(value: Any, *, key: str = "split", repo_label: str | None = None) -> dict[str, Any]:
    """``clean_split`` that raises one ``ValidationError`` naming every problem."""
    errors: dict[str, list[str]] = {}
    clean = clean_split(
        value, key, lambda at, message: errors.setdefault(at, []).append(message), repo_label=repo_label
    )
    if errors:
        raise ValidationError(errors)
    return clean


def is_default(split: Mapping[str, Any] | None) -> bool:
    return not split or dict(split) == DEFAULT_SPLIT


def describe(split: Mapping[str, Any] | None) -> str:
    """The rule in words, for pages and the CLI: ``by tract of hsc_rings_v1, at most 20 patches per group``."""
    split = dict(split or DEFAULT_SPLIT)
    by = split.get("by", SplitBy.NIGHT)
    if by == SplitBy.NIGHT:
        return "by night"
    if by in (SplitBy.EXPOSURE, SplitBy.VISIT, SplitBy.DETECTOR):
        return f"by {by}, at most {split.get('max_size', DEFAULT_MAX_SIZE)} per group"
    if by == SplitBy.BAND:
        return "by band"
    if by == SplitBy.TRACT:
        text = f"by tract of {split.get('skymap', '?')}"
        return text + (f", at most {split['max_size']} patches per group" if split.get("max_size") else "")
    if by == SplitBy.LIST:
        groups = split.get("groups") or []
        return (
            f"{len(groups)} named group{'s' if len(groups) != 1 else ''}: "
            + ", ".join(g.get("name", "?") for g in groups[:5])
            + (", …" if len(groups) > 5 else "")
        )
    if by == SplitBy.DATAID_SET:
        return (
            f"by chunks of DataID set {split.get('dataid_set', '?')}@v{split.get('version', '?')}, "
            f"at most {split.get('max_size', DEFAULT_SET_CHUNK)} data IDs per group"
        )
    return str(by)
