"""QA in every selection: the selection recipe's ``metric`` term, registered in ``MetricsConfig.ready``.

    {"mode": "exclude", "metric": "psf_fwhm", "campaign": "w48-minidrp", "per": "visit",
     "statistic": "median", "op": ">", "threshold": 1.2}

keeps (include) or drops (exclude) the exposures (``per: exposure``), visits (``per: visit``) or single
detectors (``per: detector``, a selection of detectors) whose statistic (median, mean, min or max) of the
metric's values, over their detectors, compares with the threshold. The values come from a ``campaign``
(optionally one of its ``step``\\ s) the user may view, or from an outside ``source`` label (metric values
ingested without a campaign, such as a quick-look feed) of the recipe's repo. A data ID without a value is not
matched: an include drops it, an exclude keeps it. The metric is named by its stored name or its last part
(``psf_fwhm`` for ``psfMetrics.psf_fwhm``); a frozen selection records the stored name.

The tagging app (a lower layer) only knows the registry (``tagging.selection.terms``); this module also
provides its sample stratification by a metric (``"stratify": {"metric": NAME}``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, OuterRef
from django.http import Http404

from campaigns.models import Campaign, Step
from tagging.selection.recipe import RecipeError
from tagging.selection.terms import (
    Predicate,
    ProblemSink,
    TermContext,
    TermKind,
    register_stratifier,
    register_term_kind,
)

from .models import MetricValue

STATISTICS = ("median", "mean", "min", "max")
PER = ("exposure", "visit", "detector")
OPS = ("<", "<=", ">", ">=")
KEYS = ("campaign", "source", "step", "per", "statistic", "op", "threshold")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
BUILDER_CAMPAIGNS = 200  # campaigns the builder page lists with their metric names (the newest first)
MV = MetricValue._meta.db_table


def _problem(path: str, message: str) -> RecipeError:
    return RecipeError(f"{path}: {message}", [{"where": path, "key": path.rsplit(".", 1)[-1], "message": message}])


# --- the recipe term -------------------------------------------------------------------------------------


def clean(raw: dict[str, Any], path: str, problems: ProblemSink) -> dict[str, Any]:
    """The term's fields, checked; problems are named by their path (``terms[3].threshold``)."""
    out: dict[str, Any] = {}
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        problems.add(f"{path}.metric", "name a metric, e.g. 'psf_fwhm' or 'psfMetrics.psf_fwhm'.")
        metric = ""
    elif not _NAME.match(metric.strip()) or len(metric.strip()) > 200:
        problems.add(f"{path}.metric", f"{metric!r} is not a metric name (letters, digits, '_', '.', ':', '-').")
    out["metric"] = metric.strip()
    given = [k for k in ("campaign", "source") if raw.get(k) not in (None, "")]
    if len(given) != 1:
        problems.add(
            path,
            "say where the values come from: a campaign, or an outside source (values ingested without one)"
            + (", not both." if len(given) > 1 else "."),
        )
    for key in given:
        value = raw[key]
        if not isinstance(value, str) or len(value.strip()) > 200:
            problems.add(f"{path}.{key}", f"must be a {key} name (text), got {value!r}.")
            continue
        if key == "source" and not _SOURCE.match(value.strip()):
            problems.add(
                f"{path}.source", f"{value!r} is not a source label (letters, digits, '_', '.', ':', '/', '-')."
            )
        out[key] = value.strip()
    step = raw.get("step")
    if step not in (None, ""):
        if not isinstance(step, str):
            problems.add(f"{path}.step", f"must be a step name, got {step!r}.")
        elif "campaign" not in out:
            problems.add(f"{path}.step", "only values of a campaign have steps.")
        else:
            out["step"] = step.strip()
    for key, allowed, default in (("per", PER, "exposure"), ("statistic", STATISTICS, "median")):
        value = raw.get(key, default)
        if value not in allowed:
            problems.add(f"{path}.{key}", f"{value!r} is not one of: {', '.join(allowed)}.")
        out[key] = value
    op = raw.get("op")
    if op not in OPS:
        problems.add(f"{path}.op", f"{op!r} is not one of: {', '.join(OPS)}.")
    out["op"] = op
    threshold = raw.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        problems.add(f"{path}.threshold", f"must be a finite number, got {threshold!r}.")
    out["threshold"] = threshold
    return out


def describe(term: dict[str, Any]) -> str:
    """What the term matches, in words (after "Include"/"Exclude")."""
    if term.get("campaign"):
        source = f"campaign {term['campaign']}" + (f" (step {term['step']})" if term.get("step") else "")
    else:
        source = f"outside source {term.get('source')}"
    threshold = term["threshold"]
    limit = f"{threshold:g}" if isinstance(threshold, int | float) else str(threshold)
    per = term.get("per", "exposure")
    if per == "detector":
        subject = f"detectors whose {term['metric']}"
        if term.get("statistic", "median") != "median":
            subject += f" ({term['statistic']} of its values)"
    else:
        subject = f"{per}s whose {term.get('statistic', 'median')} {term['metric']} over their detectors"
    return f"{subject} in {source} is {term['op']} {limit}"


def _statistic_sql(statistic: str) -> str:
    if statistic == "median":
        # core.sqlite_functions registers percentile_cont(fraction, value) as an SQLite aggregate.
        if connection.vendor == "postgresql":
            return "percentile_cont(0.5) WITHIN GROUP (ORDER BY m.value)"
        return "percentile_cont(0.5, m.value)"
    return {"mean": "AVG(m.value)", "min": "MIN(m.value)", "max": "MAX(m.value)"}[statistic]


def _resolve_metric(name: str, stored: list[str], where: str, path: str) -> str:
    """The stored metric name ``name`` stands for: itself, or the one stored name it is the last part of."""
    if name in stored:
        return name
    matches = [s for s in stored if s.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise _problem(f"{path}.metric", f"{name!r} matches {', '.join(matches)} in {where}; name one of them.")
    known = ", ".join(stored[:20]) + (f" and {len(stored) - 20} more" if len(stored) > 20 else "")
    raise _problem(f"{path}.metric", f"{where} has no metric {name!r}" + (f" (it has: {known})." if known else "."))


def _values_of(term: dict[str, Any], ctx: TermContext) -> tuple[str, list[Any], dict[str, Any]]:
    """(SQL condition on the values ``m``, parameters, what was resolved): the campaign's or source's values
    of the metric. A campaign the user may not view is a 404 that says no more than a missing one."""
    from .selectors import campaign_metric_names

    path = ctx.path
    if term.get("campaign"):
        campaign = Campaign.objects.restrict(ctx.user, "view").filter(name=term["campaign"]).first()
        if campaign is None:
            raise Http404(f"{path}.campaign: no campaign named {term['campaign']!r} that you may see.")
        if campaign.butler_repo_id != ctx.repo.label:
            raise _problem(
                f"{path}.campaign",
                f"campaign {campaign.name} ran on repo {campaign.butler_repo_id}; this selection is of {ctx.repo.label}.",
            )
        stored = [name for name, _unit in campaign_metric_names(campaign_ids=[campaign.pk])]
        metric = _resolve_metric(term["metric"], stored, f"campaign {campaign.name}", path)
        sql, params = "m.campaign_id = %s AND m.metric = %s", [campaign.pk, metric]
        resolved: dict[str, Any] = {"campaign_id": campaign.pk, "metric": metric}
        if term.get("step"):
            step = Step.objects.filter(campaign=campaign, name=term["step"]).first()
            if step is None:
                steps = ", ".join(campaign.steps.order_by("position").values_list("name", flat=True))
                raise _problem(f"{path}.step", f"campaign {campaign.name} has no step {term['step']!r} ({steps}).")
            sql += " AND m.step_id = %s"
            params.append(step.pk)
            resolved["step_id"] = step.pk
        return sql, params, resolved
    source = term["source"]
    outside = MetricValue.objects.filter(campaign__isnull=True, source=source, repo=ctx.repo)
    stored = sorted(set(outside.order_by().values_list("metric", flat=True).distinct()))
    if not stored:
        raise _problem(
            f"{path}.source", f"no metric values from an outside source {source!r} in repo {ctx.repo.label}."
        )
    metric = _resolve_metric(term["metric"], stored, f"outside source {source}", path)
    return (
        "m.campaign_id IS NULL AND m.source = %s AND m.repo_id = %s AND m.metric = %s",
        [source, ctx.repo.pk, metric],
        {"source": source, "metric": metric},
    )


def compile_term(term: dict[str, Any], ctx: TermContext) -> Predicate:
    """The data IDs whose statistic of the metric passes, as one ``IN (... GROUP BY ... HAVING ...)``: the
    database aggregates the source's values of the metric once (an index range of (campaign, metric)) and
    probes the result per data ID."""
    per = term["per"]
    if per == "detector" and "detector" not in ctx.keys:
        raise _problem(f"{ctx.path}.per", "'detector' judges each detector on its own: select data IDs with detectors.")
    condition, params, resolved = _values_of(term, ctx)
    # Visits where the selection or the term is of visits, else exposures (a visit's values carry its id).
    unit = "visit" if per == "visit" or (per == "detector" and "visit" in ctx.keys) else "exposure"
    mine = ["m.instrument", f"m.{unit}"] + (["m.detector"] if per == "detector" else [])
    theirs = ["e.instrument", "e.visit_id" if unit == "visit" else "e.exposure_id"]
    theirs += ["d.detector_id"] if per == "detector" else []
    columns = ", ".join(mine)
    not_null = " ".join(f"AND {c} IS NOT NULL" for c in mine[1:])
    op = {o: o for o in OPS}[term["op"]]  # never text from the request itself
    # Our aliases, column names and operators only; every user value is a parameter.
    sql = (
        f"(({', '.join(theirs)}) IN (SELECT {columns} FROM {MV} m WHERE {condition} AND m.value IS NOT NULL "  # noqa: S608
        f"{not_null} GROUP BY {columns} HAVING {_statistic_sql(term['statistic'])} {op} %s))"
    )
    return Predicate(sql, [*params, float(term["threshold"])], ctx.path, resolved=resolved)


def pin(term: dict[str, Any], predicate: Predicate) -> None:
    """A frozen recipe names the stored metric, so a re-run reads the same one."""
    term["metric"] = predicate.resolved["metric"]


def builder_choices(user) -> dict[str, Any]:
    """What the selection builder offers: the campaigns the user may view that have metric values (with their
    metric names) and the outside sources of each repo (everyone logged in sees those)."""
    from .selectors import campaign_metric_names

    measured = Exists(MetricValue.objects.filter(campaign=OuterRef("pk")))
    campaigns = list(
        Campaign.objects.restrict(user, "view")
        .filter(measured)
        .order_by("-updated")
        .values_list("pk", "name", "butler_repo_id")[:BUILDER_CAMPAIGNS]
    )
    sources: dict[tuple[str, str], list[str]] = {}
    if user is not None and user.is_authenticated:
        outside = MetricValue.objects.filter(campaign__isnull=True).exclude(source="")
        for repo, source, metric in outside.order_by().values_list("repo__label", "source", "metric").distinct():
            sources.setdefault((repo or "", source), []).append(metric)
    return {
        "campaigns": sorted(
            (
                {"name": name, "repo": repo, "metrics": [m for m, _ in campaign_metric_names(campaign_ids=[pk])]}
                for pk, name, repo in campaigns
            ),
            key=lambda c: c["name"],
        ),
        "sources": [
            {"name": source, "repo": repo, "metrics": sorted(metrics)}
            for (repo, source), metrics in sorted(sources.items())
        ],
        "per": list(PER),
        "statistics": list(STATISTICS),
        "ops": list(OPS),
    }


METRIC_TERM = TermKind(
    name="metric",
    label="metric",
    clean=clean,
    describe=describe,
    compile=compile_term,
    keys=KEYS,
    default_mode="exclude",
    pin=pin,
    choices=builder_choices,
)


# --- a sample that follows a metric's distribution ----------------------------------------------------------


def stratify_by_metric(user, repo, stratify: dict[str, Any], keys: list[str]) -> tuple[str, list[Any]]:
    """The mean of the metric per data ID (its exposure or visit, and its detector if it has one) over the
    values ``user`` may see: outside sources' and those of campaigns they may view."""
    match = "m.instrument = e.instrument AND " + (
        "m.exposure = e.exposure_id" if "exposure" in keys else "m.visit = e.visit_id"
    )
    if "detector" in keys:
        match += " AND (m.detector IS NULL OR m.detector = d.detector_id)"
    visible_sql, visible_params = "", []
    if not (user is not None and user.is_superuser):
        try:
            campaigns, params = Campaign.objects.restrict(user, "view").values("pk").query.sql_with_params()
            visible_sql, visible_params = (
                f" AND (m.campaign_id IS NULL OR m.campaign_id IN ({campaigns}))",
                list(params),
            )
        except EmptyResultSet:  # no campaign at all: outside sources only
            visible_sql = " AND m.campaign_id IS NULL"
    return (
        f"(SELECT AVG(m.value) FROM {MV} m WHERE m.metric = %s AND {match}{visible_sql})",  # noqa: S608
        [stratify["metric"], *visible_params],
    )


def register() -> None:
    register_term_kind(METRIC_TERM)
    register_stratifier("metric", stratify_by_metric)


# --- the explorer's "select where the metric is < or > a threshold" ----------------------------------------------

EXPLORER_OPERATORS = {"lt": "<", "gt": ">"}
_BAND = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def threshold_recipe(
    *,
    query,
    campaign: Campaign,
    operator: str,
    threshold: float,
    whole_exposures: bool = False,
    statistic: str = "",
) -> dict[str, Any]:
    """The selection recipe of the explorer's threshold selection, with its filters: what is frozen (and can be
    re-run and diffed like any selection) is exactly this recipe.

    Each data ID is judged by its own value (``per: detector``), or, with ``whole_exposures``, each exposure
    (visit) by a statistic over its detectors: by default "any detector" (``max`` for >, ``min`` for <). The
    explorer's band and nights become a ``where`` term, its step the term's ``step``, its detector a ``where``
    on the detector, its value range two more metric terms. Raises ``InputError`` for what a recipe cannot say.
    """
    from core.errors import InputError

    op = EXPLORER_OPERATORS.get(operator)
    if op is None:
        raise InputError(f"Operator must be one of {', '.join(EXPLORER_OPERATORS)}.", field="operator")
    if statistic and statistic not in STATISTICS:
        raise InputError(f"The statistic must be one of {', '.join(STATISTICS)}.", field="statistic")
    keyed = (
        MetricValue.objects.filter(campaign=campaign, metric=query.metric)
        .order_by()
        .values_list("exposure", "visit", "detector")
        .first()
    )
    if keyed is None:
        raise InputError(f"Campaign {campaign.name} has no value of {query.metric}.", field="metric")
    exposure, visit, detector = keyed
    if exposure is None and visit is None:
        raise InputError(
            f"The values of {query.metric} are not of exposures or visits: a selection cannot take them.",
            field="metric",
        )
    unit = "exposure" if exposure is not None else "visit"
    per_detector = detector is not None and not whole_exposures
    if whole_exposures and query.detector is not None:
        raise InputError(
            "Whole exposures are judged by all their detectors: clear the detector filter, or select per detector.",
            field="whole_exposures",
        )
    where = []
    if query.band:
        if not _BAND.match(query.band):
            raise InputError(f"{query.band!r} is not a band name.", field="band")
        where.append(f"band = '{query.band}'")
    if query.night_from is not None:
        where.append(f"day_obs >= {int(query.night_from)}")
    if query.night_to is not None:
        where.append(f"day_obs <= {int(query.night_to)}")
    if query.detector is not None and per_detector:
        where.append(f"detector = {int(query.detector)}")
    term: dict[str, Any] = {"metric": query.metric, "campaign": campaign.name}
    if query.step:
        term["step"] = query.step
    if per_detector:
        term.update(per="detector", statistic="median")
    else:
        term.update(per=unit, statistic=statistic or ("max" if op == ">" else "min"))
    terms: list[dict[str, Any]] = [{"where": " AND ".join(where)}] if where else []
    terms.append({**term, "op": op, "threshold": float(threshold)})
    if query.value_min is not None:
        terms.append({**term, "op": ">=", "threshold": float(query.value_min)})
    if query.value_max is not None:
        terms.append({**term, "op": "<=", "threshold": float(query.value_max)})
    return {
        "repo": campaign.butler_repo_id,
        "dimensions": [unit, "detector"] if per_detector else [unit],
        "terms": terms,
        "description": f"Selected in the metrics explorer: {query.metric} {op} {threshold:g} in campaign {campaign.name}.",
    }
