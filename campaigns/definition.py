"""The campaign definition: one normalised, validated form shared by forms, API, YAML and services.

A definition is a plain dict with the keys of ``DEFINITION_FIELDS`` (and
``steps``). ``clean_definition`` checks every rule in one place and raises a
``ValidationError`` whose keys name the field at fault, with dotted paths
inside structures (``bps.request_memory``, ``links[1].url``,
``steps[2].depends_on``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from core.names import name_unavailable
from core.roles import is_staff_member
from lsst_adapter import check_where_syntax
from metrics.conditions import clean_gates, clean_metric_input
from tagging.models import ButlerRepo

from .choices import CampaignType, NotificationEvent, Visibility, WmsPlugin
from .models import Campaign, slug_safe
from .splits import clean_split, clean_step_where, is_default

# Order matters: it is the order of YAML export and of the history diff.
DEFINITION_FIELDS = (
    "name",
    "campaign_type",
    "reason",
    "description",
    "owner",
    "collaborators",
    "visibility",
    "butler_repo",
    "pipeline",
    "input_collections",
    "data_query",
    "input_selection",
    "include_sets",
    "exclude_sets",
    "output_collection",
    "bps",
    "scope",
    "links",
    "notify",
)
REQUIRED_FIELDS = ("name", "campaign_type", "reason", "butler_repo", "pipeline")
STEP_FIELDS = (
    "name",
    "pipeline_subset",
    "depends_on",
    "requires_approval",
    "where",
    "split",
    "quality_gates",
    "metric_input",
)
BPS_FIELDS = ("compute_site", "wms", "request_memory", "request_cpus", "extra")
LINK_FIELDS = ("label", "url")
NOTIFY_FIELDS = ("emails", "webhook", "events")
NOTIFY_MAX_EMAILS = 20

DEFAULTS: dict[str, Any] = {
    "description": "",
    "collaborators": [],
    "visibility": Visibility.PUBLIC.value,
    "input_collections": [],
    "data_query": "",
    "input_selection": {},
    "include_sets": [],
    "exclude_sets": [],
    "output_collection": "",
    "bps": {},
    "scope": "",
    "links": [],
    "notify": {},
}

_url = URLValidator(schemes=["http", "https"])


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def normalize_newlines(text: str) -> str:
    """``\r\n`` and a lone ``\r`` as ``\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text(value: Any, key: str, errors: _Errors, *, required: bool = False, max_length: int | None = None) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.add(key, f"Must be text, got {type(value).__name__}.")
        return ""
    # Browsers send a textarea's lines with CRLF: one newline convention, so exports and diffs stay clean.
    value = normalize_newlines(value)
    value = value.strip() if key != "description" else value.rstrip()
    if required and not value:
        errors.add(key, "This field is required.")
    if max_length is not None and len(value) > max_length:
        errors.add(key, f"At most {max_length} characters (got {len(value)}).")
    return value


def _string_list(value: Any, key: str, errors: _Errors) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        errors.add(key, f"Must be a list of text, got {type(value).__name__}.")
        return []
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            errors.add(f"{key}[{i}]", "Must be non-empty text.")
            continue
        if item.strip() in out:
            errors.add(f"{key}[{i}]", f"{item.strip()!r} is listed twice.")
            continue
        out.append(item.strip())
    return out


def _choice(value: Any, key: str, choices, errors: _Errors) -> str:
    allowed = [c.value for c in choices]
    if value not in allowed:
        errors.add(key, f"{value!r} is not one of: {', '.join(allowed)}.")
        return ""
    return value


def _positive_int(value: Any, key: str, errors: _Errors) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors.add(key, "Must be a positive whole number.")
        return None
    try:
        number = int(value)
    except ValueError:
        errors.add(key, f"Must be a positive whole number, got {value!r}.")
        return None
    if number <= 0:
        errors.add(key, f"Must be a positive whole number, got {number}.")
        return None
    return number


def _bps(value: Any, errors: _Errors) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        errors.add("bps", "Must be a mapping with keys " + ", ".join(BPS_FIELDS) + ".")
        return {}
    out: dict[str, Any] = {}
    for key in value:
        if key not in BPS_FIELDS:
            errors.add(f"bps.{key}", f"Unknown key; allowed: {', '.join(BPS_FIELDS)}.")
    if value.get("compute_site") not in (None, ""):
        site = _text(value["compute_site"], "bps.compute_site", errors, max_length=100)
        if site:
            out["compute_site"] = site
    if value.get("wms") not in (None, ""):
        wms = _choice(value["wms"], "bps.wms", WmsPlugin, errors)
        if wms:
            out["wms"] = wms
    for key in ("request_memory", "request_cpus"):
        number = _positive_int(value.get(key), f"bps.{key}", errors)
        if number is not None:
            out[key] = number
    extra = value.get("extra")
    if extra not in (None, {}, ""):
        if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
            errors.add("bps.extra", "Must be a mapping of BPS option names to values.")
        else:
            out["extra"] = {k: extra[k] for k in sorted(extra)}
    return {k: out[k] for k in BPS_FIELDS if k in out}


def _links(value: Any, errors: _Errors) -> list[dict[str, str]]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple):
        errors.add("links", "Must be a list of {label, url}.")
        return []
    out = []
    for i, link in enumerate(value):
        if not isinstance(link, Mapping):
            errors.add(f"links[{i}]", "Must be a mapping with 'label' and 'url'.")
            continue
        for key in link:
            if key not in LINK_FIELDS:
                errors.add(f"links[{i}].{key}", "Unknown key; allowed: label, url.")
        label = _text(link.get("label"), f"links[{i}].label", errors, required=True, max_length=100)
        url = _text(link.get("url"), f"links[{i}].url", errors, required=True, max_length=1000)
        if url:
            try:
                _url(url)
            except ValidationError:
                errors.add(f"links[{i}].url", f"{url!r} is not an http(s) URL.")
        out.append({"label": label, "url": url})
    return out


def _notify(value: Any, errors: _Errors) -> dict[str, Any]:
    """``{"emails": [...], "webhook": url, "events": [...]}`` normalised: empty parts left out, events in
    their canonical order; no e-mail and no web hook means no notifications (``{}``)."""
    if value in (None, "", {}):
        return {}
    if not isinstance(value, Mapping):
        errors.add("notify", "Must be a mapping with keys " + ", ".join(NOTIFY_FIELDS) + ".")
        return {}
    for key in value:
        if key not in NOTIFY_FIELDS:
            errors.add(f"notify.{key}", f"Unknown key; allowed: {', '.join(NOTIFY_FIELDS)}.")
    emails = _string_list(value.get("emails"), "notify.emails", errors)
    if len(emails) > NOTIFY_MAX_EMAILS:
        errors.add("notify.emails", f"At most {NOTIFY_MAX_EMAILS} addresses (got {len(emails)}).")
    for i, email in enumerate(emails):
        try:
            validate_email(email)
        except ValidationError:
            errors.add(f"notify.emails[{i}]", f"{email!r} is not an e-mail address.")
    webhook = _text(value.get("webhook"), "notify.webhook", errors, max_length=1000)
    if webhook:
        try:
            _url(webhook)
        except ValidationError:
            errors.add("notify.webhook", f"{webhook!r} is not an http(s) URL.")
    events_raw = value.get("events")
    if events_raw is None:
        events = [e.value for e in NotificationEvent]  # not said: every event
    else:
        names = _string_list(events_raw, "notify.events", errors)
        allowed = [e.value for e in NotificationEvent]
        for i, name in enumerate(names):
            if name not in allowed:
                errors.add(f"notify.events[{i}]", f"{name!r} is not one of: {', '.join(allowed)}.")
        events = [e for e in allowed if e in names]
        if (emails or webhook) and not events and not any(k.startswith("notify.events") for k in errors.errors):
            errors.add("notify.events", "Choose at least one event, or remove the e-mails and the web hook.")
    if not emails and not webhook:
        return {}
    out: dict[str, Any] = {}
    if emails:
        out["emails"] = emails
    if webhook:
        out["webhook"] = webhook
    out["events"] = events
    return out


def _users(usernames: list[str], key: str, errors: _Errors, *, must_be_staff: bool = False) -> list:
    User = get_user_model()
    found = {u.username: u for u in User.objects.filter(username__in=usernames, is_active=True)}
    users = []
    for i, name in enumerate(usernames):
        user = found.get(name)
        at = key if key == "owner" else f"{key}[{i}]"
        if user is None:
            errors.add(at, f"No active user {name!r}.")
        elif must_be_staff and not is_staff_member(user):
            errors.add(at, f"{name!r} is not a staff member; only staff can own campaigns.")
        else:
            users.append(user)
    return users


def _steps(value: Any, errors: _Errors, *, repo_label: str = "") -> list[dict[str, Any]]:
    if value in (None, ""):
        return []
    if not isinstance(value, list | tuple):
        errors.add("steps", "Must be a list of steps.")
        return []
    out: list[dict[str, Any]] = []
    seen: list[str] = []
    for i, step in enumerate(value):
        key = f"steps[{i}]"
        if not isinstance(step, Mapping):
            errors.add(key, "Must be a mapping with at least 'name'.")
            continue
        for field in step:
            if field not in STEP_FIELDS:
                errors.add(f"{key}.{field}", f"Unknown key; allowed: {', '.join(STEP_FIELDS)}.")
        name = _text(step.get("name"), f"{key}.name", errors, required=True, max_length=100)
        if name:
            try:
                slug_safe(name)
            except ValidationError as exc:
                errors.add(f"{key}.name", exc.messages[0])
            if name in seen:
                errors.add(f"{key}.name", f"Another step is already named {name!r}.")
        depends = _string_list(step.get("depends_on"), f"{key}.depends_on", errors)
        for dep in depends:
            if dep == name:
                errors.add(f"{key}.depends_on", "A step cannot depend on itself.")
            elif dep not in seen:
                errors.add(
                    f"{key}.depends_on",
                    f"{dep!r} is not an earlier step; steps may only depend on steps listed before them.",
                )
        approval = step.get("requires_approval", False)
        if not isinstance(approval, bool):
            errors.add(f"{key}.requires_approval", "Must be true or false.")
            approval = False
        spec: dict[str, Any] = {
            "name": name,
            "pipeline_subset": _text(step.get("pipeline_subset"), f"{key}.pipeline_subset", errors, max_length=200),
            "depends_on": depends,
            "requires_approval": approval,
        }
        # A step's own where and its split: left out of the normal form when not used (no where; one group
        # per night), so older YAML and history stay the same.
        where = clean_step_where(step.get("where"), f"{key}.where", errors.add)
        if where:
            spec["where"] = where
        split = clean_split(step.get("split"), f"{key}.split", errors.add, repo_label=repo_label or None)
        if not is_default(split):
            spec["split"] = split
        # The loop back: optional, and left out of the normal form when not used (older YAML stays the same).
        gates = clean_gates(step.get("quality_gates"), f"{key}.quality_gates", errors.add)
        if gates:
            spec["quality_gates"] = gates
        metric_input = clean_metric_input(
            step.get("metric_input"), f"{key}.metric_input", errors.add, earlier_steps=depends
        )
        if metric_input:
            spec["metric_input"] = metric_input
        out.append(spec)
        seen.append(name)
    return out


def _set_scope(user, instance: Campaign | None) -> Callable[[str, str], Any]:
    """``versions(repo_label, name)``: the versions of that set a definition may name. With a ``user``,
    only sets they may see (a private set of someone else reads as missing: same message, nothing used),
    except the sets the campaign already names (a collaborator may edit a campaign whose owner pinned one
    of their own sets)."""
    from tagging.models import DataIdSet, DataIdSetVersion

    kept: set[str] = set()
    if instance is not None:
        refs = [instance.input_selection or {}, *(instance.include_sets or []), *(instance.exclude_sets or [])]
        kept = {ref["dataid_set"] for ref in refs if isinstance(ref, Mapping) and "dataid_set" in ref}

    def versions(repo_label: str, name: str):
        qs = DataIdSetVersion.objects.filter(dataid_set__repo__label=repo_label, dataid_set__name=name)
        if user is not None and name not in kept:
            qs = qs.filter(dataid_set__in=DataIdSet.objects.restrict(user, "view"))
        return qs

    return versions


def _input_selection(
    value: Any, repo_label: str, errors: _Errors, versions: Callable[[str, str], Any] | None = None
) -> dict[str, Any]:
    """A frozen selection (any DataID set version of exposures or visits) the inputs are limited to,
    with its version pinned: ``{"dataid_set": name, "version": n}``; ``{}`` for none."""
    from tagging.selection.services import campaign_selection_version

    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        name, _, number = value.partition("@v")
        value = {"dataid_set": name, "version": int(number) if number.isdigit() else None}
    if not isinstance(value, Mapping) or not isinstance(value.get("dataid_set"), str):
        errors.add("input_selection", 'Must be {"dataid_set": NAME, "version": N} or "NAME@vN".')
        return {}
    unknown = [k for k in value if k not in ("dataid_set", "version")]
    if unknown:
        errors.add(f"input_selection.{unknown[0]}", "Unknown key; use dataid_set and version.")
        return {}
    version = value.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        errors.add("input_selection.version", f"Must be a version number, got {version!r}.")
        return {}
    if not repo_label:
        return {}
    if versions is not None and not versions(repo_label, value["dataid_set"]).exists():
        errors.add("input_selection", f"No DataID set {value['dataid_set']!r} in repo {repo_label}.")
        return {}
    try:
        found = campaign_selection_version(repo_label=repo_label, name=value["dataid_set"], number=version)
    except ValidationError as exc:
        errors.add("input_selection", exc.messages[0])
        return {}
    return {"dataid_set": value["dataid_set"], "version": found.number}


SET_DIMENSIONS = ("instrument", "exposure", "visit", "detector")


def _set_ref(value: Any, key: str, errors: _Errors) -> tuple[str, int | None] | None:
    """``{"dataid_set": NAME, "version": N}`` or ``"NAME@vN"`` (version optional) → (name, version)."""
    if isinstance(value, str):
        name, _, number = value.strip().partition("@v")
        if number and not number.isdigit():
            errors.add(f"{key}.version", f"Must be a version number, got {number!r}.")
            return None
        value = {"dataid_set": name, "version": int(number) if number else None}
    unknown = [k for k in value if k not in ("dataid_set", "version")] if isinstance(value, Mapping) else []
    if unknown:
        errors.add(f"{key}.{unknown[0]}", "Unknown key; use dataid_set and version.")
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("dataid_set"), str) or not value["dataid_set"]:
        errors.add(key, 'Must be {"dataid_set": NAME, "version": N} or "NAME@vN".')
        return None
    version = value.get("version")
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        errors.add(f"{key}.version", f"Must be a version number, got {version!r}.")
        return None
    return value["dataid_set"].strip(), version


def _dataid_sets(
    value: Any,
    key: str,
    repo_label: str,
    errors: _Errors,
    *,
    included: list[dict[str, Any]] | None = None,
    versions: Callable[[str, str], Any] | None = None,
) -> list[dict[str, Any]]:
    """A list of DataID set versions (``include_sets``/``exclude_sets``), each pinned to a version of a set in
    the campaign's repo (the latest when none is given) whose dimensions a pipeline can be constrained by."""
    from tagging.models import DataIdSetVersion

    if value in (None, "", [], ()):
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        errors.add(key, 'Must be a list of {"dataid_set": NAME, "version": N} (or "NAME@vN").')
        return []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        at = f"{key}[{i}]"
        ref = _set_ref(item, at, errors)
        if ref is None or not repo_label:
            continue
        name, number = ref
        if versions is not None:
            of_set = versions(repo_label, name)
        else:
            of_set = DataIdSetVersion.objects.filter(dataid_set__repo__label=repo_label, dataid_set__name=name)
        if not of_set.exists():
            errors.add(f"{at}.dataid_set", f"No DataID set {name!r} in repo {repo_label}.")
            continue
        found = of_set.order_by("-number").first() if number is None else of_set.filter(number=number).first()
        if found is None:
            latest = of_set.order_by("-number").values_list("number", flat=True).first()
            errors.add(f"{at}.version", f"{name} has no version {number} (latest: v{latest}).")
            continue
        dims = list(found.dimensions)
        odd = [d for d in dims if d not in SET_DIMENSIONS]
        if odd or not any(d in dims for d in ("exposure", "visit")):
            errors.add(
                f"{at}.dataid_set",
                f"{name} v{found.number} holds ({', '.join(dims)}); campaign inputs are constrained by sets of "
                "exposures or visits (optionally with detectors).",
            )
            continue
        pinned = {"dataid_set": name, "version": found.number}
        if included and pinned in included:
            errors.add(at, f"{name} v{found.number} is also an include set.")
            continue
        if pinned in out:
            errors.add(at, f"{name} v{found.number} is listed twice.")
            continue
        out.append(pinned)
    return out


def _check_set_keys(clean: dict[str, Any], repo_label: str, errors: _Errors) -> None:
    """All sets of a campaign must be keyed alike (all by exposure or all by visit): they are combined."""
    from tagging.models import DataIdSetVersion

    keyed: dict[str, str] = {}
    refs: list[tuple[str, dict[str, Any]]] = []
    if clean.get("input_selection"):
        refs.append(("input_selection", clean["input_selection"]))
    for field in ("include_sets", "exclude_sets"):
        refs += [(f"{field}[{i}]", ref) for i, ref in enumerate(clean.get(field) or [])]
    for at, ref in refs:
        version = DataIdSetVersion.objects.filter(
            dataid_set__repo__label=repo_label, dataid_set__name=ref["dataid_set"], number=ref["version"]
        ).first()
        if version is not None:
            keyed[at] = "exposure" if "exposure" in version.dimensions else "visit"
    if len(set(keyed.values())) > 1:
        first = next(iter(keyed))
        for at, dim in keyed.items():
            if dim != keyed[first]:
                errors.add(
                    at,
                    f"This set is keyed by {dim} but {first} by {keyed[first]}; the sets of one campaign must all "
                    "hold exposures or all hold visits.",
                )


def clean_definition(
    data: Mapping[str, Any], *, instance: Campaign | None = None, allow_unknown: bool = False, user=None
) -> dict[str, Any]:
    """Validate a complete definition and return it normalised.

    Usernames become ``User`` objects under ``owner``/``collaborators``; the
    repo label stays a label. Raises ``ValidationError`` naming every field at fault.
    """
    errors = _Errors()
    if not allow_unknown:
        for key in data:
            if key not in DEFINITION_FIELDS and key != "steps":
                errors.add(key, f"Unknown field {key!r}.")
    merged = {**DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
    for field in REQUIRED_FIELDS:
        if merged.get(field) in (None, ""):
            errors.add(field, "This field is required.")

    out: dict[str, Any] = {}
    name = _text(merged.get("name"), "name", errors, max_length=100)
    if name:
        try:
            slug_safe(name)
        except ValidationError as exc:
            errors.add("name", exc.messages[0])
        clash = Campaign.objects.filter(name__iexact=name)
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if clash.exists():
            errors.add("name", name_unavailable(name))  # the same whether or not the user may see it
    out["name"] = name
    if merged.get("campaign_type"):
        out["campaign_type"] = _choice(merged["campaign_type"], "campaign_type", CampaignType, errors)
    out["reason"] = _text(merged.get("reason"), "reason", errors)
    out["description"] = _text(merged.get("description"), "description", errors, max_length=100_000)
    out["visibility"] = _choice(merged.get("visibility"), "visibility", Visibility, errors)

    repo_label = _text(merged.get("butler_repo"), "butler_repo", errors)
    if repo_label and not ButlerRepo.objects.filter(label=repo_label).exists():
        known = ", ".join(ButlerRepo.objects.values_list("label", flat=True)) or "none configured"
        errors.add("butler_repo", f"Unknown Butler repo {repo_label!r} (known: {known}).")
    out["butler_repo"] = repo_label

    out["pipeline"] = _text(merged.get("pipeline"), "pipeline", errors, max_length=1024)
    out["input_collections"] = _string_list(merged.get("input_collections"), "input_collections", errors)
    out["data_query"] = _text(merged.get("data_query"), "data_query", errors, max_length=100_000)
    if out["data_query"]:
        problem = check_where_syntax(out["data_query"])
        if problem is not None:
            errors.add("data_query", f"Not a valid Butler 'where' expression: {problem.message}")
    versions = _set_scope(user, instance) if user is not None else None
    out["input_selection"] = _input_selection(merged.get("input_selection"), repo_label, errors, versions)
    out["include_sets"] = _dataid_sets(
        merged.get("include_sets"), "include_sets", repo_label, errors, versions=versions
    )
    out["exclude_sets"] = _dataid_sets(
        merged.get("exclude_sets"),
        "exclude_sets",
        repo_label,
        errors,
        included=[*out["include_sets"], *([out["input_selection"]] if out["input_selection"] else [])],
        versions=versions,
    )
    if repo_label:
        _check_set_keys(out, repo_label, errors)
    out["output_collection"] = _text(merged.get("output_collection"), "output_collection", errors, max_length=512)
    if any(ch.isspace() for ch in out["output_collection"]):
        errors.add("output_collection", "A collection name cannot contain spaces.")
    out["bps"] = _bps(merged.get("bps"), errors)
    out["scope"] = _text(merged.get("scope"), "scope", errors, max_length=100_000)
    out["links"] = _links(merged.get("links"), errors)
    out["notify"] = _notify(merged.get("notify"), errors)

    owner = merged.get("owner")
    if owner is not None and not isinstance(owner, str):
        owner = getattr(owner, "username", owner)
    if owner:
        owners = _users([owner], "owner", errors, must_be_staff=True)
        out["owner"] = owners[0] if owners else None
    collaborators = merged.get("collaborators") or []
    collaborators = (
        [getattr(c, "username", c) for c in collaborators] if isinstance(collaborators, list) else collaborators
    )
    collab_names = _string_list(collaborators, "collaborators", errors)
    out["collaborators"] = _users(collab_names, "collaborators", errors)
    if "steps" in data:
        out["steps"] = _steps(data.get("steps"), errors, repo_label=repo_label)
    errors.raise_if_any()
    return out


def snapshot(campaign: Campaign) -> dict[str, Any]:
    """The campaign's definition as plain data (usernames, labels), in ``DEFINITION_FIELDS`` order plus steps."""
    steps = list(campaign.steps.all().prefetch_related("depends_on"))
    return {
        "name": campaign.name,
        "campaign_type": campaign.campaign_type,
        "reason": campaign.reason,
        "description": campaign.description,
        "owner": campaign.owner.username,
        "collaborators": sorted(u.username for u in campaign.collaborators.all()),
        "visibility": campaign.visibility,
        "butler_repo": campaign.butler_repo_id,
        "pipeline": campaign.pipeline,
        "input_collections": list(campaign.input_collections),
        "data_query": campaign.data_query,
        "input_selection": dict(campaign.input_selection or {}),
        "include_sets": [dict(ref) for ref in campaign.include_sets or []],
        "exclude_sets": [dict(ref) for ref in campaign.exclude_sets or []],
        "output_collection": campaign.output_collection,
        "bps": dict(campaign.bps),
        "scope": campaign.scope,
        "links": list(campaign.links),
        "notify": dict(campaign.notify or {}),
        "steps": [_step_snapshot(s) for s in steps],
    }


def _step_snapshot(step) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": step.name,
        "pipeline_subset": step.pipeline_subset,
        "depends_on": [d.name for d in sorted(step.depends_on.all(), key=lambda d: d.position)],
        "requires_approval": step.requires_approval,
    }
    if step.where:
        out["where"] = step.where
    if not is_default(step.split):
        out["split"] = dict(step.split)
    if step.quality_gates:
        out["quality_gates"] = list(step.quality_gates)
    if step.metric_input:
        out["metric_input"] = dict(step.metric_input)
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field-level differences ``{field: [old, new]}`` between two snapshots."""
    return {key: [old.get(key), new.get(key)] for key in new if old.get(key) != new.get(key)}


def as_snapshot(clean: Mapping[str, Any], *, previous: Mapping[str, Any]) -> dict[str, Any]:
    """What ``snapshot`` will return once ``clean`` (output of ``clean_definition``) is saved."""
    out = {key: clean[key] for key in DEFINITION_FIELDS if key in clean}
    out["owner"] = clean["owner"].username if clean.get("owner") else previous.get("owner")
    out["collaborators"] = sorted(u.username for u in clean.get("collaborators", []))
    out["steps"] = clean["steps"] if "steps" in clean else previous.get("steps", [])
    return out


HIDDEN_WEBHOOK = "(hidden: only people who may edit the campaign see its web hook address)"


def redact_notify(notify: Any) -> Any:
    """A ``notify`` value with its web hook address hidden: the address is a secret (Slack's carry a token)."""
    if isinstance(notify, Mapping) and notify.get("webhook"):
        return {**notify, "webhook": HIDDEN_WEBHOOK}
    return notify


def redact_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A history diff ``{field: [old, new]}`` with web hook addresses hidden."""
    if "notify" not in changes:
        return dict(changes)
    return {**changes, "notify": [redact_notify(value) for value in changes["notify"]]}
