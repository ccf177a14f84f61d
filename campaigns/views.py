"""Web pages for campaigns: thin views over services and selectors."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ConflictError, validation_error_text
from core.roles import is_staff_member
from tagging.selection.selectors import campaign_input_selection

from . import selectors, services
from .api.views import attachment_response
from .choices import STATUS_TRANSITIONS
from .definition import redact_changes
from .filtersets import CampaignFilterSet
from .forms import (
    AttachmentForm,
    CampaignForm,
    CloneForm,
    ImportForm,
    ShareForm,
    StatusForm,
    StepFormSet,
    apply_service_errors,
    step_initial,
)
from .history_text import describe, history_filter
from .inputs import campaign_dataid_sets
from .models import CHANGE, VIEW
from .selectors_attention import campaign_attention, needs_action
from .yaml_io import campaign_to_yaml

PAGE_SIZE = 25
HISTORY_PAGE_SIZE = 30


def _require_staff(request: HttpRequest) -> None:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can do this.")


_COLUMNS = [
    ("name", "Name", "name"),
    ("type", "Type", "type"),
    ("status", "Status", "status"),
    ("attention", "Needs action", None),
    ("progress", "Progress", None),
    ("owner", "Owner", "owner"),
    ("repo", "Repo", None),
    ("updated", "Updated", "updated"),
]


def _sort_columns(request: HttpRequest, current: str) -> list[dict]:
    """Table headers whose links flip the sort order of their column, keeping the other filters."""
    columns = []
    for key, label, sort_key in _COLUMNS:
        column = {"key": key, "label": label, "url": None, "active": False, "arrow": ""}
        if sort_key:
            active = current.lstrip("-") == sort_key
            descending = current.startswith("-")
            params = request.GET.copy()
            params.pop("page", None)
            params["sort"] = (sort_key if descending else f"-{sort_key}") if active else sort_key
            column.update(url=f"?{params.urlencode()}", active=active, arrow="▼" if descending else "▲")
        columns.append(column)
    return columns


def campaign_list(request: HttpRequest) -> HttpResponse:
    filterset = CampaignFilterSet(request.GET or None)
    try:
        qs = selectors.campaign_list(user=request.user, filters=request.GET)
    except ValidationError:
        qs = selectors.campaign_list(user=request.user, filters={})
        messages.error(request, "Some filters were not valid and were ignored.")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    for c in page.object_list:  # what waits in each: counted by the list's own query (attention_annotations)
        c.attention = campaign_attention(c)  # type: ignore[attr-defined]
    return render(
        request,
        "campaigns/list.html",
        {
            "filter": filterset,
            "page": page,
            "sort": request.GET.get("sort", "-updated"),
            "columns": _sort_columns(request, request.GET.get("sort", "-updated")),
            "active": "campaigns",
        },
    )


def _run_panel_context(request: HttpRequest, campaign, can_edit: bool) -> dict:
    """What the self-refreshing part of the campaign page shows: what needs action, progress, steps, groups,
    failures."""
    attention = needs_action(user=request.user, campaign_ids=[campaign.pk])
    return {
        "campaign": campaign,
        "can_edit": can_edit,
        "attention": attention.for_campaign(campaign.pk),
        "attention_items": attention.items,
        "steps": selectors.campaign_steps(campaign=campaign),
        "progress": selectors.campaign_progress(campaign=campaign),
        "failures": selectors.campaign_failures(campaign=campaign),
        "next_statuses": sorted(STATUS_TRANSITIONS[campaign.status]) if can_edit else [],
    }


def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = selectors.access_campaign(request.user, pk, VIEW)
    can_edit = selectors.campaign_can_change(request.user, campaign)
    tab, actions = history_filter(request.GET.get("history"))
    entries = selectors.campaign_history(campaign=campaign)
    if actions is not None:
        entries = entries.filter(action__in=actions)
    history = Paginator(entries, HISTORY_PAGE_SIZE).get_page(request.GET.get("history_page"))
    for entry in history.object_list:  # shown, never saved
        if not can_edit:
            entry.changes = redact_changes(entry.changes)
        entry.lines = describe(entry.changes)  # type: ignore[attr-defined]
    context = {
        "history_tab": tab,
        "history_tabs": [("all", "All"), ("definition", "Definition"), ("execution", "Execution")],
        **_run_panel_context(request, campaign, can_edit),
        "history": history,
        "attachments": selectors.campaign_attachments(campaign=campaign),
        "collaborators": campaign.collaborators.order_by("username"),
        "attachment_form": AttachmentForm() if can_edit else None,
        "share_form": ShareForm() if can_edit else None,
        "notifications": selectors.campaign_notifications(campaign=campaign) if can_edit else [],
        "input_selection": campaign_input_selection(user=request.user, campaign=campaign),
        "dataid_sets": campaign_dataid_sets(user=request.user, campaign=campaign),
        "active": "campaigns",
    }
    return render(request, "campaigns/detail.html", context)


def _steps_from(formset) -> tuple[list[dict], list[int]]:
    steps, index_map = [], []
    for i, form in enumerate(formset.forms):
        if form.cleaned_data.get("DELETE"):
            continue
        step = form.to_step()
        if step is not None:
            steps.append(step)
            index_map.append(i)
    return steps, index_map


def _campaign_form_page(request: HttpRequest, *, campaign=None, initial=None, title: str, submit: str) -> HttpResponse:
    """The create/edit form: one page for both, validated by the services."""
    if request.method == "POST":
        form = CampaignForm(request.POST)
        formset = StepFormSet(request.POST, prefix="steps")
        if form.is_valid() and formset.is_valid():
            definition = form.to_definition()
            steps, index_map = _steps_from(formset)
            definition["steps"] = steps
            comment = form.cleaned_data["comment"]
            try:
                if campaign is None:
                    saved = services.campaign_create(user=request.user, data=definition, comment=comment)
                    messages.success(request, f"Campaign {saved.name} was created.")
                else:
                    saved = services.campaign_update(
                        user=request.user,
                        campaign_id=campaign.pk,
                        version=form.cleaned_data["version"],
                        data=definition,
                        comment=comment,
                    )
                    if saved.version == campaign.version:
                        messages.info(request, "Nothing changed.")
                    else:
                        messages.success(request, f"Campaign {saved.name} was saved (version {saved.version}).")
                return redirect("campaigns:detail", pk=saved.pk)
            except ConflictError as exc:
                form.add_error(None, str(exc))
            except ValidationError as exc:
                apply_service_errors(exc, form, formset, index_map)
        messages.error(request, "The campaign was not saved: please correct the fields marked below.")
    else:
        form = CampaignForm(initial=initial or {})
        formset = StepFormSet(
            prefix="steps", initial=step_initial(campaign) if campaign else (initial or {}).get("steps", [])
        )
    return render(
        request,
        "campaigns/form.html",
        {
            "form": form,
            "formset": formset,
            "campaign": campaign,
            "title": title,
            "submit": submit,
            "active": "campaigns",
        },
    )


@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    initial = {"owner": request.user.username, "visibility": "public", "campaign_type": "mini-drp"}
    return _campaign_form_page(request, initial=initial, title="New campaign", submit="Create campaign")


@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = selectors.access_campaign(request.user, pk, CHANGE)
    return _campaign_form_page(
        request,
        campaign=campaign,
        initial=CampaignForm.initial_from(campaign),
        title=f"Edit {campaign.name}",
        submit="Save changes",
    )


@require_http_methods(["GET", "POST"])
def campaign_clone(request: HttpRequest, pk: int) -> HttpResponse:
    source = selectors.access_campaign(request.user, pk, VIEW)  # 404 first: never confirm an invisible campaign
    _require_staff(request)
    name = f"{source.name}-copy"
    derive = {
        "source_collection": source.output_collection,
        "source_name": source.name,
        "source_owner": source.owner.username,
        "owner": request.user.username,
    }
    form = CloneForm(
        request.POST or None,
        initial={"name": name, "output_collection": services.clone_output_collection(name=name, **derive)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            clone = services.campaign_clone(user=request.user, campaign_id=source.pk, **form.cleaned_data)
        except ValidationError as exc:
            fields = getattr(exc, "message_dict", {})
            if "name" in fields or "output_collection" in fields:
                for field in ("name", "output_collection"):
                    for message in fields.get(field, []):
                        form.add_error(field, message)
            else:
                form.add_error(None, validation_error_text(exc))
        else:
            messages.success(request, f"Campaign {clone.name} was created as a copy of {source.name}.")
            return redirect("campaigns:detail", pk=clone.pk)
    # The page derives the collection again as the name is typed (until the collection is edited by hand).
    pattern = services.clone_output_collection(name="\x00", **derive)
    return render(
        request,
        "campaigns/clone.html",
        {
            "form": form,
            "source": source,
            "active": "campaigns",
            "collection_pattern": pattern.replace("\x00", "{name}"),
        },
    )


@require_http_methods(["GET", "POST"])
def campaign_import(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("file")
        # At most one byte over the limit is read: the service refuses it, naming the limit.
        text = upload.read(settings.CM_YAML_MAX_BYTES + 1) if upload else form.cleaned_data.get("yaml", "")
        if not text:
            form.add_error(None, "Choose a YAML file or paste YAML.")
        else:
            try:
                campaign = services.campaign_import(user=request.user, text=text)
            except ValidationError as exc:
                for key, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(None, error if key in ("yaml", "__all__") else f"{key}: {error}")
            else:
                messages.success(request, f"Campaign {campaign.name} was imported.")
                return redirect("campaigns:detail", pk=campaign.pk)
    return render(request, "campaigns/import.html", {"form": form, "active": "import"})


def campaign_export(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = selectors.access_campaign(request.user, pk, VIEW)
    response = HttpResponse(
        campaign_to_yaml(campaign, redact=not selectors.campaign_can_change(request.user, campaign)),
        content_type="application/yaml; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{campaign.name}.yaml"'
    return response


@require_POST
def campaign_status(request: HttpRequest, pk: int) -> HttpResponse:
    selectors.access_campaign(request.user, pk, CHANGE)
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            campaign = services.campaign_set_status(user=request.user, campaign_id=pk, **form.cleaned_data)
            messages.success(request, f"Status is now {campaign.get_status_display().lower()}.")
        except (ValidationError, ConflictError) as exc:
            messages.error(request, validation_error_text(exc) if isinstance(exc, ValidationError) else str(exc))
    else:
        messages.error(request, "Choose a valid status.")
    return redirect("campaigns:detail", pk=pk)


@require_POST
def campaign_archive(request: HttpRequest, pk: int) -> HttpResponse:
    archived = request.POST.get("archived", "1") == "1"
    try:
        services.campaign_archive(
            user=request.user, campaign_id=pk, archived=archived, comment=request.POST.get("comment", "")
        )
        messages.success(request, "Campaign archived." if archived else "Campaign restored.")
    except ValidationError as exc:
        messages.error(request, validation_error_text(exc))
    return redirect("campaigns:detail", pk=pk)


@require_POST
def campaign_share(request: HttpRequest, pk: int) -> HttpResponse:
    selectors.access_campaign(request.user, pk, CHANGE)
    form = ShareForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            services.campaign_share(
                user=request.user,
                campaign_id=pk,
                username=d["username"] or None,
                group=d["group"] or None,
                permission=d["permission"],
                grant=d["grant"],
            )
            messages.success(request, "Sharing updated.")
        except ValidationError as exc:
            messages.error(request, validation_error_text(exc))
    else:
        messages.error(request, "Sharing was not changed: " + form.errors.as_text())
    return redirect("campaigns:detail", pk=pk)


@require_POST
def attachment_upload(request: HttpRequest, pk: int) -> HttpResponse:
    selectors.access_campaign(request.user, pk, CHANGE)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            attachment = services.attachment_add(
                user=request.user,
                campaign_id=pk,
                upload=form.cleaned_data["file"],
                description=form.cleaned_data["description"],
            )
            messages.success(request, f"{attachment.original_name} was attached.")
        except ValidationError as exc:
            messages.error(request, "The file was not attached: " + validation_error_text(exc))
    elif "file" not in request.FILES:
        messages.error(request, "The file was not attached: choose a file.")
    else:  # e.g. an empty file: say so rather than "choose a file"
        messages.error(
            request, "The file was not attached: " + " ".join(str(m) for e in form.errors.values() for m in e)
        )
    return redirect(reverse("campaigns:detail", args=[pk]) + "#attachments")


def attachment_download(request: HttpRequest, pk: int, attachment_id: int) -> FileResponse:
    attachment = selectors.attachment_for_download(user=request.user, campaign_id=pk, attachment_id=attachment_id)
    return attachment_response(attachment)


@require_POST
def attachment_delete(request: HttpRequest, pk: int, attachment_id: int) -> HttpResponse:
    services.attachment_delete(user=request.user, campaign_id=pk, attachment_id=attachment_id)
    messages.success(request, "Attachment removed.")
    return redirect("campaigns:detail", pk=pk)


# --- execution ---------------------------------------------------------------------------------


def campaign_run_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress/steps/failures fragment the campaign page reloads every few seconds while it runs."""
    campaign = selectors.access_campaign(request.user, pk, VIEW)
    context = _run_panel_context(request, campaign, selectors.campaign_can_change(request.user, campaign))
    response = render(request, "campaigns/_run_panel.html", context)
    response["X-Refresh-Seconds"] = "5" if campaign.status == "running" else "0"
    return response


def _run_action(request: HttpRequest, pk: int, service, done: str) -> HttpResponse:
    selectors.access_campaign(request.user, pk, CHANGE)
    try:
        service(user=request.user, campaign_id=pk, comment=request.POST.get("comment", ""))
    except ValidationError as exc:
        messages.error(request, validation_error_text(exc))
    else:
        messages.success(request, done)
    return redirect("campaigns:detail", pk=pk)


def campaign_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """The launch plan: each step's groups, their selections and estimated quanta; Launch confirms it."""
    from .execution.plan import campaign_plan as plan_of

    campaign = selectors.access_campaign(request.user, pk, VIEW)
    plan, error = None, ""
    try:
        plan = plan_of(user=request.user, campaign_id=campaign.pk)
    except ValidationError as exc:
        error = validation_error_text(exc)
    context = {
        "campaign": campaign,
        "plan": plan,
        "error": error,
        "can_edit": selectors.campaign_can_change(request.user, campaign),
    }
    return render(request, "campaigns/plan.html", context)


@require_POST
def campaign_launch(request: HttpRequest, pk: int) -> HttpResponse:
    from .execution.services import campaign_launch as launch

    return _run_action(request, pk, launch, "Launched: groups are planned and the first steps are queued.")


@require_POST
def campaign_pause(request: HttpRequest, pk: int) -> HttpResponse:
    from .execution.services import campaign_pause as pause

    return _run_action(request, pk, pause, "Paused: nothing new is submitted; running groups go on.")


@require_POST
def campaign_resume(request: HttpRequest, pk: int) -> HttpResponse:
    from .execution.services import campaign_resume as resume

    return _run_action(request, pk, resume, "Resumed.")


@require_POST
def step_approve(request: HttpRequest, pk: int, step_id: int) -> HttpResponse:
    from .execution.services import step_approve as approve

    step = selectors.access_step(request.user, step_id, CHANGE)
    if step.campaign_id != pk:
        raise Http404("No such step in this campaign.")
    try:
        approve(user=request.user, step_id=step.pk, comment=request.POST.get("comment", ""))
    except ValidationError as exc:
        messages.error(request, "Not approved: " + validation_error_text(exc))
    else:
        messages.success(request, f"Step {step.name} approved; its groups are queued.")
    return redirect(reverse("campaigns:detail", args=[pk]) + "#steps")


ATTEMPT_LOGS_SHOWN = 5  # the log tails of the latest attempts are read; older ones have a path only


def group_detail(request: HttpRequest, pk: int, group_id: int) -> HttpResponse:
    """A group at the level of the PanDA monitor: attempts (times, submit directory, BPS report per task, log),
    failed quanta with their logs, the actions and what each does, and every transition."""
    from .attempt_files import attempt_log
    from .execution.planning import run_collection

    group = selectors.access_group(request.user, group_id, VIEW)
    if group.step.campaign_id != pk:
        raise Http404("No such group in this campaign.")
    campaign = group.step.campaign
    submissions = list(selectors.group_submissions(group=group))
    for index, submission in enumerate(submissions):  # newest first
        submission.log = attempt_log(submission.submit_dir) if index < ATTEMPT_LOGS_SHOWN else None
        submission.report = sorted((submission.by_task or {}).items())
    return render(
        request,
        "campaigns/group.html",
        {
            "campaign": campaign,
            "group": group,
            "can_edit": selectors.campaign_can_change(request.user, campaign),
            "submissions": submissions,
            "errors": selectors.group_errors(group=group)[:200],
            "transitions": selectors.group_transitions(group=group),
            "refresh": group.status in ("preflight", "submitting", "running"),
            "next_run": run_collection(group.output_collection, group.attempts + 1) if group.output_collection else "",
            "previous_runs": [s.run_collection for s in submissions if s.state not in ("queued", "cancelled")],
        },
    )


_GROUP_ACTIONS = {
    "retry": ("group_retry", "A new attempt is queued (fresh run)."),
    "rescue": ("group_rescue", "A rescue attempt is queued: it skips what the previous attempt produced."),
    "accept": ("group_accept", "The group is accepted as done."),
    "cancel": ("group_cancel", "The group is cancelled."),
}


@require_POST
def group_action(request: HttpRequest, pk: int, group_id: int, verb: str) -> HttpResponse:
    from .execution import services as execution

    if verb not in _GROUP_ACTIONS:
        raise Http404("No such action.")
    group = selectors.access_group(request.user, group_id, CHANGE)
    if group.step.campaign_id != pk:
        raise Http404("No such group in this campaign.")
    name, done = _GROUP_ACTIONS[verb]
    try:
        getattr(execution, name)(user=request.user, group_id=group.pk, comment=request.POST.get("comment", ""))
    except ValidationError as exc:
        messages.error(request, f"Could not {verb}: " + validation_error_text(exc))
    else:
        messages.success(request, done)
    return redirect("campaigns:group", pk=pk, group_id=group.pk)


@require_http_methods(["GET", "POST"])
def error_rules(request: HttpRequest) -> HttpResponse:
    from .execution import services as execution
    from .forms import ErrorRuleForm

    # "Make an error rule from this" (the error summary) prefills the form: task, message pattern, the campaign.
    initial: dict[str, str] = {}
    source = None
    if request.method == "GET":
        for key in ("task_label", "message_regex"):
            if request.GET.get(key):
                initial[key] = request.GET[key][:1000]
        if initial:
            initial["action"] = "review"
        if request.GET.get("campaign"):
            source = selectors.access_campaign(request.user, request.GET["campaign"], VIEW)
    form = ErrorRuleForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not is_staff_member(request.user):
            raise PermissionDenied("Only staff members can change error rules.")
        if "delete" in request.POST:
            try:
                rule = selectors.access_error_rule(request.POST["delete"])
            except Http404:
                messages.error(request, "There is no such rule (it may have been deleted already).")
                return redirect("campaigns:error-rules")
            execution.error_rule_delete(user=request.user, rule_id=rule.pk)
            messages.success(request, "Rule deleted.")
            return redirect("campaigns:error-rules")
        if form.is_valid():
            try:
                execution.error_rule_create(user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, "Rule added.")
                return redirect("campaigns:error-rules")
    context = {"rules": selectors.error_rules(), "form": form, "prefilled": bool(initial), "source": source}
    return render(request, "campaigns/error_rules.html", context)


# --------------------------------------------------------------------------------------
# Recurring campaigns
# --------------------------------------------------------------------------------------


def _put_errors(form, exc: ValidationError) -> None:
    fields = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    for field, errors in fields.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


@require_http_methods(["GET", "POST"])
def recurring_list(request: HttpRequest) -> HttpResponse:
    from . import recurring
    from .forms import RecurringForm

    if request.method == "POST":
        _require_staff(request)
    initial = {}
    if request.GET.get("template", "").isdigit():
        initial["template"] = int(request.GET["template"])
    form = RecurringForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = recurring.recurring_create(
                user=request.user,
                template_id=data["template"].pk,
                name_prefix=data["name_prefix"],
                cron=data["cron"],
                last_nights=data["last_nights"],
                enabled=data["enabled"],
            )
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, f"Schedule {created.name_prefix} was created.")
            return redirect("campaigns:recurring-list")
    rows = recurring.recurring_rows(user=request.user)
    return render(
        request,
        "campaigns/recurring_list.html",
        {"rows": rows, "form": form if is_staff_member(request.user) else None, "active": "recurring"},
    )


@require_http_methods(["GET", "POST"])
def recurring_edit(request: HttpRequest, recurring_id: int) -> HttpResponse:
    from . import recurring
    from .forms import RecurringForm

    schedule = recurring.access_recurring(request.user, recurring_id, CHANGE)
    initial = {
        "name_prefix": schedule.name_prefix,
        "cron": schedule.cron,
        "last_nights": schedule.last_nights,
        "enabled": schedule.enabled,
    }
    form = RecurringForm(request.POST or None, user=request.user, editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            recurring.recurring_update(user=request.user, recurring_id=schedule.pk, **form.cleaned_data)
        except ValidationError as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, f"Schedule {form.cleaned_data['name_prefix']} was saved.")
            return redirect("campaigns:recurring-list")
    return render(
        request,
        "campaigns/recurring_edit.html",
        {"form": form, "schedule": schedule, "next_run": recurring.next_run(schedule), "active": "recurring"},
    )


@require_POST
def recurring_action(request: HttpRequest, recurring_id: int, verb: str) -> HttpResponse:
    from . import recurring

    _require_staff(request)
    if verb in ("enable", "disable"):
        schedule = recurring.recurring_update(user=request.user, recurring_id=recurring_id, enabled=verb == "enable")
        messages.success(request, f"Schedule {schedule.name_prefix} is {verb}d.")
    elif verb == "delete":
        recurring.recurring_delete(user=request.user, recurring_id=recurring_id)
        messages.success(request, "Schedule deleted; the campaigns it made stay.")
    else:
        raise Http404("No such action.")
    return redirect("campaigns:recurring-list")
