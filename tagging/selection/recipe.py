"""The selection recipe: plain JSON, validated in one place with errors that name the path of the bad key.

    {
      "repo": "demo",
      "dimensions": ["exposure", "detector"],
      "terms": [
        {"mode": "include", "where": "band = 'r' AND exposure.day_obs >= 20251121"},
        {"mode": "include", "tag_table": "seeing", "condition": "fwhm < 1.0 AND NOT dome_open"},
        {"mode": "exclude", "dataid_set": "known-bad", "version": 2},
        {"mode": "exclude", "flags": ["junk"]},
        {"mode": "exclude", "bad_data": ["open", "explained"]},
        {"mode": "exclude", "metric": "psf_fwhm", "campaign": "w48-minidrp", "per": "visit",
         "statistic": "median", "op": ">", "threshold": 1.2}
      ],
      "sample": {"size": 100, "seed": 42, "stratify": {"field": "band"}}
    }

Terms apply in order, each to what the previous ones left: ``include`` keeps the data IDs that match,
``exclude`` drops them. Which kinds of term exist is a registry (``terms``): this app registers where, DataID
sets, tag tables, flags and bad data; the metrics app adds ``metric`` (a per-exposure, per-visit or
per-detector statistic of a metric's values from a campaign or an outside ``source``, compared with a
threshold; see ``metrics.selection``). Without an ``include`` term the selection starts from every data ID of the
dimensions in the mirror. ``sample`` (optional) then takes ``size`` items or a ``fraction``, chosen
by a seeded hash (reproducible), optionally in proportion to the strata of a ``field`` (exposure field),
a tag-table ``column`` or a ``metric`` (numeric values split into ``bins`` quantile bins).
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from core.errors import InputError
from core.limits import INT64_MAX, INT64_MIN

from .terms import ProblemSink, term_kind, term_kinds

DIMENSION_CHOICES = (("exposure",), ("exposure", "detector"), ("visit",), ("visit", "detector"))
FLAG_VALUES = ("junk", "questionable", "none")
BAD_DATA_STATUSES = ("open", "explained", "fixed")
# Exposure fields a sample may be stratified by; values are the mirror's column names.
STRATIFY_FIELDS = {
    "band": "e.band",
    "physical_filter": "e.physical_filter",
    "day_obs": "e.day_obs",
    "observation_type": "e.observation_type",
    "target_name": "e.target_name",
    "science_program": "e.science_program",
    "exposure_time": "e.exposure_time",
    "zenith_angle": "e.zenith_angle",
    "detector": "d.detector_id",
}
MAX_TERMS = 50
MAX_SAMPLE_BINS = 100


class RecipeError(InputError):
    """A recipe with problems; ``problems`` lists them as {where: path, key, message}."""


class _Problems(ProblemSink):
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"where": path, "key": path.rsplit(".", 1)[-1], "message": f"{path}: {message}"})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]["message"]
            more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
            raise RecipeError(f"The recipe has a problem: {first}{more}", self.items, len(self.items))


def _unknown_keys(value: dict, allowed: set[str], path: str, problems: _Problems) -> None:
    for key in value:
        if key not in allowed:
            problems.add(f"{path}.{key}" if path else key, f"unknown key; use {', '.join(sorted(allowed))}.")


def _text(value: Any, path: str, problems: ProblemSink, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            problems.add(path, "is required.")
        return ""
    if not isinstance(value, str):
        problems.add(path, f"must be text, got {type(value).__name__}.")
        return ""
    return value.strip()


def _choices(value: Any, allowed: tuple[str, ...], path: str, problems: ProblemSink) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        problems.add(path, f"must be a non-empty list of: {', '.join(allowed)}.")
        return []
    out = []
    for i, item in enumerate(value):
        if item not in allowed:
            problems.add(f"{path}[{i}]", f"{item!r} is not one of: {', '.join(allowed)}.")
        elif item not in out:
            out.append(item)
    return out


def _term(raw: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.add(path, f"must be an object, got {type(raw).__name__}.")
        return None
    registered = term_kinds()
    names = [k.name for k in registered]
    kinds = [k for k in names if k in raw]
    if len(kinds) != 1:
        problems.add(
            path,
            f"must have exactly one of {', '.join(names)}" + (f" (it has {', '.join(kinds)})." if kinds else "."),
        )
        return None
    kind = term_kind(kinds[0])
    assert kind is not None
    allowed = {"mode", "label", "kind", kind.name, *kind.keys}  # "kind" as written by normalize_recipe
    if raw.get("kind", kind.name) != kind.name:
        problems.add(f"{path}.kind", f"says {raw['kind']!r} but the term has {kind.name}.")
    _unknown_keys(raw, allowed, path, problems)
    mode = raw.get("mode", "include")
    if mode not in ("include", "exclude"):
        problems.add(f"{path}.mode", f"{mode!r} is not include or exclude.")
    term: dict[str, Any] = {"mode": mode, "kind": kind.name}
    label = raw.get("label")
    if label is not None:
        term["label"] = _text(label, f"{path}.label", problems, required=False)
    term.update(kind.clean(raw, path, problems))
    return term


# --- the kinds of this app (registered in TaggingConfig.ready through tagging.selection.kinds) ----------------


def clean_where(raw: dict[str, Any], path: str, problems: ProblemSink) -> dict[str, Any]:
    where = _text(raw["where"], f"{path}.where", problems)
    if where:
        from lsst_adapter import check_where_syntax

        problem = check_where_syntax(where)
        if problem is not None:
            problems.add(f"{path}.where", f"not a valid Butler 'where' expression: {problem.message}")
    return {"where": where}


def clean_dataid_set(raw: dict[str, Any], path: str, problems: ProblemSink) -> dict[str, Any]:
    name = _text(raw["dataid_set"], f"{path}.dataid_set", problems)
    version = raw.get("version")
    if (
        version is not None
        and version != "latest"
        and (not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= INT64_MAX)
    ):
        problems.add(f"{path}.version", f"must be a version number (1, 2, ...) or 'latest', got {version!r}.")
    return {"dataid_set": name, "version": None if version in (None, "latest") else version}


def clean_tag_table(raw: dict[str, Any], path: str, problems: ProblemSink) -> dict[str, Any]:
    return {
        "tag_table": _text(raw["tag_table"], f"{path}.tag_table", problems),
        "condition": _text(raw.get("condition", ""), f"{path}.condition", problems, required=False),
    }


def clean_flags(raw: dict[str, Any], path: str, problems: ProblemSink) -> dict[str, Any]:
    return {"flags": _choices(raw["flags"], FLAG_VALUES, f"{path}.flags", problems)}


def clean_bad_data(raw: dict[str, Any], path: str, problems: ProblemSink) -> dict[str, Any]:
    return {"bad_data": _choices(raw["bad_data"], BAD_DATA_STATUSES, f"{path}.bad_data", problems)}


def _number(value: Any, path: str, problems: _Problems, *, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        problems.add(path, f"must be {'an integer' if integer else 'a number'}, got {value!r}.")
        return None
    # Numbers go into SQL (LIMIT, hashes, comparisons): a bigint at most, never NaN or infinity.
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        problems.add(path, "is out of range (a 64-bit integer).")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problems.add(path, f"must be a finite number, got {value!r}.")
        return None
    return value


def _sample(raw: Any, problems: _Problems) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("sample", f"must be an object, got {type(raw).__name__}.")
        return None
    _unknown_keys(raw, {"size", "fraction", "seed", "stratify"}, "sample", problems)
    sample: dict[str, Any] = {}
    if ("size" in raw) == ("fraction" in raw):
        problems.add("sample", "give either size (a number of items) or fraction (between 0 and 1).")
    elif "size" in raw:
        size = _number(raw["size"], "sample.size", problems, integer=True)
        if size is not None and size < 1:
            problems.add("sample.size", "must be at least 1.")
        sample["size"] = size
    else:
        fraction = _number(raw["fraction"], "sample.fraction", problems, integer=False)
        if fraction is not None and not 0 < fraction <= 1:
            problems.add("sample.fraction", "must be more than 0 and at most 1.")
        sample["fraction"] = fraction
    seed = raw.get("seed")
    if seed is None:
        seed = secrets.randbelow(2**31)  # recorded in the normalised recipe, so the sample can be repeated
    elif _number(seed, "sample.seed", problems, integer=True) is None:
        seed = 0
    sample["seed"] = seed
    stratify = raw.get("stratify")
    if stratify is not None:
        if not isinstance(stratify, dict):
            problems.add("sample.stratify", 'must be an object such as {"field": "band"}.')
        else:
            _unknown_keys(stratify, {"field", "tag_table", "column", "metric", "bins"}, "sample.stratify", problems)
            out: dict[str, Any] = {}
            if "field" in stratify:
                field = stratify["field"]
                if field not in STRATIFY_FIELDS:
                    problems.add("sample.stratify.field", f"{field!r} is not one of: {', '.join(STRATIFY_FIELDS)}.")
                out["field"] = field
            elif "tag_table" in stratify or "column" in stratify:
                out["tag_table"] = _text(stratify.get("tag_table"), "sample.stratify.tag_table", problems)
                out["column"] = _text(stratify.get("column"), "sample.stratify.column", problems)
            elif "metric" in stratify:
                out["metric"] = _text(stratify.get("metric"), "sample.stratify.metric", problems)
            else:
                problems.add("sample.stratify", "name a field, a tag_table and column, or a metric.")
            if "bins" in stratify:
                bins = _number(stratify["bins"], "sample.stratify.bins", problems, integer=True)
                if bins is not None and not 1 <= bins <= MAX_SAMPLE_BINS:
                    problems.add("sample.stratify.bins", f"must be between 1 and {MAX_SAMPLE_BINS}.")
                out["bins"] = bins
            elif "metric" in out:
                out["bins"] = 10
            sample["stratify"] = out
    return sample


def normalize_recipe(raw: Any) -> dict[str, Any]:
    """The recipe with defaults filled in (``mode``, a recorded ``seed``), or ``RecipeError`` naming every
    bad key by its path (``terms[2].condition``, ``sample.size``). Names are not resolved here."""
    problems = _Problems()
    if not isinstance(raw, dict):
        problems.add("recipe", f"must be a JSON object, got {type(raw).__name__}.")
        problems.raise_if_any()
    _unknown_keys(raw, {"repo", "dimensions", "terms", "sample", "description"}, "", problems)
    recipe: dict[str, Any] = {"repo": _text(raw.get("repo"), "repo", problems)}
    dims = raw.get("dimensions", ["exposure"])
    if isinstance(dims, str):
        dims = [d.strip() for d in dims.replace("+", ",").split(",") if d.strip()]
    dims = [d for d in dims if d != "instrument"] if isinstance(dims, list) else dims
    if not isinstance(dims, list) or tuple(dims) not in DIMENSION_CHOICES:
        problems.add(
            "dimensions",
            f"{raw.get('dimensions')!r} is not one of: " + "; ".join(" + ".join(c) for c in DIMENSION_CHOICES) + ".",
        )
        dims = ["exposure"]
    recipe["dimensions"] = list(dims)
    terms = raw.get("terms", [])
    if not isinstance(terms, list):
        problems.add("terms", f"must be a list, got {type(terms).__name__}.")
        terms = []
    if len(terms) > MAX_TERMS:
        problems.add("terms", f"at most {MAX_TERMS} terms.")
    recipe["terms"] = [t for i, raw_term in enumerate(terms) if (t := _term(raw_term, f"terms[{i}]", problems))]
    sample = _sample(raw.get("sample"), problems)
    if sample is not None:
        recipe["sample"] = sample
    if raw.get("description"):
        recipe["description"] = _text(raw["description"], "description", problems, required=False)
    problems.raise_if_any()
    return recipe


def describe_term(term: dict[str, Any]) -> str:
    """One readable line for a term, for pages and provenance."""
    verb = "Include" if term["mode"] == "include" else "Exclude"
    kind = term_kind(term["kind"])
    if kind is None:  # a frozen recipe whose kind is no longer known here
        return f"{verb} data IDs matching a {term['kind']} term"
    return f"{verb} {kind.describe(term)}"


def describe_sample(sample: dict[str, Any] | None) -> str:
    if not sample:
        return ""
    amount = f"{sample['size']:,} items" if sample.get("size") else f"{sample['fraction']:.4g} of the items"
    text = f"Random sample of {amount} (seed {sample['seed']})"
    stratify = sample.get("stratify")
    if stratify:
        what = (
            stratify.get("field") or stratify.get("metric") or f"{stratify.get('tag_table')}.{stratify.get('column')}"
        )
        bins = f" in {stratify['bins']} quantile bins" if stratify.get("bins") else ""
        text += f", following the distribution of {what}{bins}"
    return text
