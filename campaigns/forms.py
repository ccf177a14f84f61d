"""Web forms. They turn form fields into a definition dict and put service errors back on their fields."""

from __future__ import annotations

import re
from typing import Any

import yaml
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q
from django.template.defaultfilters import filesizeformat

from core.limits import LimitExceeded, yaml_load
from core.roles import STAFF_GROUP
from tagging.models import ButlerRepo

from .choices import CampaignStatus, CampaignType, ErrorAction, NotificationEvent, Visibility, WmsPlugin
from .definition import snapshot
from .models import Campaign


def models_q_staff() -> Q:
    return Q(is_superuser=True) | Q(groups__name=STAFF_GROUP)


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Unique; letters, digits, '-', '_', '.'.")
    campaign_type = forms.ChoiceField(choices=CampaignType.choices, label="Type")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Why this campaign exists.")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 5}), help_text="Markdown; rendered safely."
    )
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), to_field_name="username", required=False)
    collaborators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        to_field_name="username",
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
        help_text="Collaborators may edit the campaign.",
    )
    visibility = forms.ChoiceField(choices=Visibility.choices)
    butler_repo = forms.ModelChoiceField(queryset=ButlerRepo.objects.all(), to_field_name="label", label="Butler repo")
    pipeline = forms.CharField(max_length=1024, help_text="URI of a pipeline YAML, optionally with '#subset'.")
    input_collections = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="One collection per line."
    )
    data_query = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        label="Data query",
        help_text="A Butler 'where' expression, e.g. instrument = 'DemoCam' AND band IN ('g', 'r').",
    )
    include_sets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        label="Include DataID sets",
        help_text="One set per line, as NAME or NAME@vN (latest version if none): inputs must be in every one.",
    )
    exclude_sets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        label="Exclude DataID sets",
        help_text="One set per line, as NAME or NAME@vN: their data IDs are left out.",
    )
    output_collection = forms.CharField(required=False, max_length=512)
    bps_compute_site = forms.CharField(required=False, label="Compute site", max_length=100)
    bps_wms = forms.ChoiceField(required=False, choices=[("", "—"), *WmsPlugin.choices], label="WMS plugin")
    bps_request_memory = forms.IntegerField(required=False, min_value=1, label="Request memory (MB)")
    bps_request_cpus = forms.IntegerField(required=False, min_value=1, label="Request CPUs")
    bps_extra = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        label="Extra BPS options",
        help_text="YAML mapping, e.g. 'numberOfRetries: 2'.",
    )
    scope = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Tracts, nights, exposure ranges."
    )
    links = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="One per line: label | https://…",
    )
    notify_emails = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Notify by e-mail",
        help_text="One address per line (or comma-separated).",
    )
    notify_webhook = forms.CharField(
        required=False,
        max_length=1000,
        label="Notify a web hook",
        help_text="A Slack-compatible incoming web hook URL (https://…); receives a JSON body with 'text'.",
    )
    notify_events = forms.MultipleChoiceField(
        required=False,
        choices=NotificationEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Notify about",
        initial=NotificationEvent.values,
    )
    comment = forms.CharField(required=False, max_length=1000, help_text="Why this change (kept in the history).")
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["owner"].queryset = (
            User.objects.filter(models_q_staff(), is_active=True).distinct().order_by("username")
        )
        self.fields["collaborators"].queryset = User.objects.filter(is_active=True).order_by("username")

    @staticmethod
    def initial_from(campaign: Campaign) -> dict[str, Any]:
        data = snapshot(campaign)
        bps = data.pop("bps")
        notify = data.pop("notify") or {}
        data.pop("steps")
        return {
            **data,
            "input_collections": "\n".join(data["input_collections"]),
            "include_sets": "\n".join(f"{r['dataid_set']}@v{r['version']}" for r in data["include_sets"]),
            "exclude_sets": "\n".join(f"{r['dataid_set']}@v{r['version']}" for r in data["exclude_sets"]),
            "links": "\n".join(f"{link['label']} | {link['url']}" for link in data["links"]),
            "bps_compute_site": bps.get("compute_site", ""),
            "bps_wms": bps.get("wms", ""),
            "bps_request_memory": bps.get("request_memory"),
            "bps_request_cpus": bps.get("request_cpus"),
            "bps_extra": yaml.safe_dump(bps["extra"], sort_keys=True).strip() if bps.get("extra") else "",
            "notify_emails": "\n".join(notify.get("emails", [])),
            "notify_webhook": notify.get("webhook", ""),
            "notify_events": notify.get("events", NotificationEvent.values),
            "version": campaign.version,
        }

    def clean_bps_extra(self):
        text = self.cleaned_data["bps_extra"].strip()
        if not text:
            return {}
        try:
            value = yaml_load(text)
        except LimitExceeded as exc:
            raise ValidationError(f"YAML refused: {exc.message}") from exc
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            raise ValidationError(
                f"Not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}."
            ) from exc
        if not isinstance(value, dict):
            raise ValidationError("Must be a YAML mapping of option: value.")
        return value

    def clean_links(self):
        links = []
        for number, line in enumerate(self.cleaned_data["links"].splitlines(), start=1):
            if not line.strip():
                continue
            if "|" not in line:
                raise ValidationError(f"Line {number}: write 'label | url'.")
            label, url = (part.strip() for part in line.split("|", 1))
            links.append({"label": label, "url": url})
        return links

    def clean_notify_emails(self):
        return [part.strip() for part in re.split(r"[\n,;]", self.cleaned_data["notify_emails"]) if part.strip()]

    def clean_include_sets(self):
        return [line.strip() for line in self.cleaned_data["include_sets"].splitlines() if line.strip()]

    def clean_exclude_sets(self):
        return [line.strip() for line in self.cleaned_data["exclude_sets"].splitlines() if line.strip()]

    def clean_input_collections(self):
        return [line.strip() for line in re.split(r"[\n,]", self.cleaned_data["input_collections"]) if line.strip()]

    def to_definition(self) -> dict[str, Any]:
        d = self.cleaned_data
        bps = {
            "compute_site": d["bps_compute_site"],
            "wms": d["bps_wms"],
            "request_memory": d["bps_request_memory"],
            "request_cpus": d["bps_request_cpus"],
            "extra": d["bps_extra"],
        }
        return {
            "name": d["name"],
            "campaign_type": d["campaign_type"],
            "reason": d["reason"],
            "description": d["description"],
            "owner": d["owner"].username if d.get("owner") else None,
            "collaborators": [u.username for u in d["collaborators"]],
            "visibility": d["visibility"],
            "butler_repo": d["butler_repo"].label,
            "pipeline": d["pipeline"],
            "input_collections": d["input_collections"],
            "data_query": d["data_query"],
            "include_sets": d["include_sets"],
            "exclude_sets": d["exclude_sets"],
            "output_collection": d["output_collection"],
            "bps": {k: v for k, v in bps.items() if v not in (None, "", {})},
            "scope": d["scope"],
            "links": d["links"],
            "notify": {
                "emails": d["notify_emails"],
                "webhook": d["notify_webhook"].strip(),
                "events": list(d["notify_events"]),
            },
        }


def _split_choices() -> list[tuple[str, str]]:
    from .choices import SplitBy

    return [(value, value.replace("_", " ")) for value in SplitBy.values]


class StepForm(forms.Form):
    """One step row of the campaign form. Its split is several fields; only those of the chosen rule are read."""

    name = forms.CharField(max_length=100, required=False)
    pipeline_subset = forms.CharField(max_length=200, required=False, label="Pipeline subset")
    depends_on = forms.CharField(required=False, help_text="Earlier step names, comma-separated.")
    requires_approval = forms.BooleanField(required=False, label="Needs approval")
    where = forms.CharField(
        required=False,
        max_length=100_000,
        label="Step where",
        widget=forms.Textarea(attrs={"rows": 1, "class": "mono"}),
        help_text="Optional: ANDed to the campaign's data query for this step, e.g. band IN ('g', 'r').",
    )
    split_by = forms.ChoiceField(
        required=False, label="Split by", initial="night", help_text="How the step is cut into groups."
    )
    split_max_size = forms.IntegerField(
        required=False,
        min_value=1,
        label="Max per group",
        help_text="exposure, visit, detector: how many per group (default 50); tract: patches per group "
        "(optional); DataID set: data IDs per group (default 1000).",
    )
    split_skymap = forms.CharField(
        required=False,
        max_length=100,
        label="Skymap",
        widget=forms.TextInput(attrs={"class": "mono", "placeholder": "e.g. lsst_cells_v1"}),
        help_text="tract: the skymap whose tracts the step's data overlap.",
    )
    split_dataid_set = forms.CharField(
        required=False,
        max_length=200,
        label="DataID set",
        widget=forms.TextInput(attrs={"class": "mono", "placeholder": "NAME or NAME@vN"}),
        help_text="DataID set: its data IDs cut into chunks (latest version if none).",
    )
    split_groups = forms.CharField(
        required=False,
        max_length=1_000_000,
        label="Groups",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "placeholder": "north: tract IN (1, 2)"}),
        help_text="list: one group per line, 'name: where'. Together they must cover the step's data once.",
    )
    quality_gates = forms.CharField(
        required=False, max_length=2000, help_text="e.g. psf_fwhm median < 1.1; several separated by ';'."
    )
    metric_input = forms.CharField(
        required=False, max_length=500, label="Input from metrics", help_text="e.g. step1: psf_fwhm < 1.2 per visit"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        split_by = self.fields["split_by"]
        assert isinstance(split_by, forms.ChoiceField)
        split_by.choices = _split_choices()

    def clean_metric_input(self) -> dict[str, Any]:
        from metrics.conditions import parse_input_text

        text = (self.cleaned_data.get("metric_input") or "").strip()
        if not text:
            return {}
        parsed = parse_input_text(text)
        if isinstance(parsed, str):
            raise forms.ValidationError(parsed)
        return parsed

    def clean_split_groups(self) -> list[dict[str, str]]:
        groups = []
        for number, line in enumerate(self.cleaned_data.get("split_groups", "").splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, where = line.partition(":")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number}: write 'name: where'.")
            groups.append({"name": name.strip(), "where": where.strip()})
        return groups

    def split(self) -> dict[str, Any]:
        """The split of the chosen rule, from the fields that rule takes (the others are ignored)."""
        from .splits import RULE_KEYS

        d = self.cleaned_data
        by = d.get("split_by") or "night"
        takes = RULE_KEYS.get(by, {})
        split: dict[str, Any] = {"by": by}
        if "max_size" in takes and d.get("split_max_size"):
            split["max_size"] = d["split_max_size"]
        if "skymap" in takes and (d.get("split_skymap") or "").strip():
            split["skymap"] = d["split_skymap"].strip()
        if "dataid_set" in takes and (d.get("split_dataid_set") or "").strip():
            name, _, number = d["split_dataid_set"].strip().partition("@v")
            split["dataid_set"] = name.strip()
            if number:
                split["version"] = number.strip()
        if "groups" in takes and d.get("split_groups"):
            split["groups"] = d["split_groups"]
        return split

    def to_step(self) -> dict[str, Any] | None:
        d = self.cleaned_data
        if not d.get("name"):
            return None
        step: dict[str, Any] = {
            "name": d["name"].strip(),
            "pipeline_subset": d.get("pipeline_subset", ""),
            "depends_on": [p.strip() for p in d.get("depends_on", "").split(",") if p.strip()],
            "requires_approval": bool(d.get("requires_approval")),
        }
        if (d.get("where") or "").strip():
            step["where"] = d["where"].strip()
        step["split"] = self.split()
        gates = [g.strip() for g in (d.get("quality_gates") or "").split(";") if g.strip()]
        if gates:
            step["quality_gates"] = gates
        if d.get("metric_input"):
            step["metric_input"] = d["metric_input"]
        return step


# One empty row to start with; the page's "+ another step" adds more (up to max_num).
StepFormSet = forms.formset_factory(StepForm, extra=1, can_delete=True, max_num=100, absolute_max=100)


def _split_initial(split: dict[str, Any] | None) -> dict[str, Any]:
    split = dict(split or {"by": "night"})
    out: dict[str, Any] = {"split_by": split.get("by", "night")}
    if split.get("max_size"):
        out["split_max_size"] = split["max_size"]
    if split.get("skymap"):
        out["split_skymap"] = split["skymap"]
    if split.get("dataid_set"):
        version = split.get("version")
        out["split_dataid_set"] = split["dataid_set"] + (f"@v{version}" if version else "")
    if split.get("groups"):
        out["split_groups"] = "\n".join(f"{g['name']}: {g['where']}" for g in split["groups"])
    return out


def step_initial(campaign: Campaign | None) -> list[dict[str, Any]]:
    if campaign is None:
        return []
    from metrics.conditions import gate_text, input_form_text

    return [
        {
            **{k: v for k, v in step.items() if k != "split"},
            **_split_initial(step.get("split")),
            "depends_on": ", ".join(step["depends_on"]),
            "quality_gates": "; ".join(gate_text(g) for g in step.get("quality_gates", [])),
            "metric_input": input_form_text(step["metric_input"]) if step.get("metric_input") else "",
        }
        for step in snapshot(campaign)["steps"]
    ]


_STEP_KEY = re.compile(r"^steps\[(\d+)\]\.(\w+)")
# steps[i].split.<part> -> the step row's field that holds that part
_SPLIT_FIELDS = {
    "by": "split_by",
    "max_size": "split_max_size",
    "skymap": "split_skymap",
    "dataid_set": "split_dataid_set",
    "version": "split_dataid_set",
    "groups": "split_groups",
}


def _step_field(key: str, match: re.Match) -> tuple[str, bool]:
    """(the step row's field for a service error key, whether the key names a part deeper than the field)."""
    field = match.group(2)
    rest = key[match.end() :]
    if field != "split":
        return field, bool(rest)
    part = re.match(r"^\.(\w+)", rest)
    if part is None:
        return "split_by", bool(rest)
    target = _SPLIT_FIELDS.get(part.group(1), "split_by")
    deeper = bool(rest[part.end() :]) or part.group(1) not in _SPLIT_FIELDS or part.group(1) == "version"
    return target, deeper


def apply_service_errors(error: ValidationError, form: CampaignForm, formset, step_index_map: list[int]) -> None:
    """Put a service ValidationError back on the form field (or step row) it names."""
    errors = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    for key, messages in errors.items():
        m = _STEP_KEY.match(key)
        if m and formset is not None:
            index = int(m.group(1))
            step_field, deeper = _step_field(key, m)
            if index < len(step_index_map):
                target = formset.forms[step_index_map[index]]
                for message in messages:
                    # e.g. steps[0].split.groups[1].where: say which part
                    target.add_error(
                        step_field if step_field in target.fields else None, f"{key}: {message}" if deeper else message
                    )
                continue
        base = re.split(r"[.\[]", key, maxsplit=1)[0]
        if key.startswith("bps."):
            base = "bps_" + key.split(".")[1]
            base = base if base in form.fields else "bps_extra"
        elif key == "notify" or key.startswith("notify."):
            base = "notify_" + re.split(r"[.\[]", key + ".emails")[1]
            base = base if base in form.fields else "notify_emails"
        field = base if base in form.fields else None
        for message in messages:
            plain = field == key or (field is None and key == NON_FIELD_ERRORS)
            form.add_error(field, message if plain else f"{key}: {message}")


class CloneForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Name of the new campaign.")
    output_collection = forms.CharField(
        max_length=512,
        required=False,
        help_text="Where the copy writes its outputs; derived from its name (the source's collection cannot be "
        "used again: its RUN collections exist). Leave empty to derive it.",
    )
    comment = forms.CharField(required=False, max_length=1000)

    def clean_output_collection(self) -> str:
        value = self.cleaned_data.get("output_collection", "").strip()
        if any(ch.isspace() for ch in value):
            raise ValidationError("A collection name cannot contain spaces.")
        return value


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A campaign YAML file (as exported).", required=False)
    yaml = forms.CharField(
        required=False,
        strip=False,  # stripping leading blank lines would shift the line numbers of YAML errors
        widget=forms.Textarea(attrs={"rows": 12, "class": "mono"}),
        label="…or paste YAML",
    )

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        # Checked before anything reads the file into memory.
        if upload is not None and upload.size > settings.CM_YAML_MAX_BYTES:
            raise ValidationError(
                f"The file is {filesizeformat(upload.size)}; at most {filesizeformat(settings.CM_YAML_MAX_BYTES)} is accepted."
            )
        return upload


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=CampaignStatus.choices)
    comment = forms.CharField(required=False, max_length=1000)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class AttachmentForm(forms.Form):
    file = forms.FileField()
    description = forms.CharField(required=False, max_length=300)


class ShareForm(forms.Form):
    username = forms.CharField(required=False, max_length=150)
    group = forms.CharField(required=False, max_length=150)
    permission = forms.ChoiceField(choices=[("view", "view"), ("change", "edit")])
    grant = forms.TypedChoiceField(
        choices=[("1", "share"), ("0", "stop sharing")], coerce=lambda v: v == "1", initial="1"
    )


class ErrorRuleForm(forms.Form):
    task_label = forms.CharField(required=False, max_length=200, help_text="Blank: any task.")
    message_regex = forms.CharField(
        max_length=1000,
        label="Message pattern",
        help_text=(
            "A regular expression searched in the exception message (RE2 syntax, like Python's without "
            "back-references or look-around, so that no pattern can stall a worker)."
        ),
    )
    action = forms.ChoiceField(choices=ErrorAction.choices)
    max_retries = forms.IntegerField(min_value=0, initial=1, help_text="For auto-retry: how many new attempts at most.")
    comment = forms.CharField(required=False, max_length=1000)


class RecurringForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=Campaign.objects.none(), help_text="The campaign copied at each run (you must be able to edit it)."
    )
    name_prefix = forms.CharField(
        max_length=80, label="Name prefix", help_text="Each run is named <prefix>-<YYYYMMDD-HHMM> (UTC)."
    )
    cron = forms.CharField(
        max_length=100,
        label="Cron (UTC)",
        widget=forms.TextInput(attrs={"class": "mono", "placeholder": "0 12 * * *"}),
        help_text="minute hour day-of-month month day-of-week, e.g. '0 12 * * 1' (Mondays 12:00 UTC).",
    )
    last_nights = forms.IntegerField(
        min_value=1, initial=14, label="Last N nights", help_text="The copy selects the last N nights with exposures."
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, user=None, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        from .models import CHANGE

        template = self.fields["template"]
        assert isinstance(template, forms.ModelChoiceField)
        template.queryset = Campaign.objects.restrict(user, CHANGE).filter(archived=False).order_by("name")
        if editing:
            del self.fields["template"]  # a schedule keeps its template
