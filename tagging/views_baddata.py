"""Pages of the bad-data register: list, detail with history, create, edit, status changes, and
"Record as bad data" from a failed quantum of a campaign group."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import validation_error_text
from core.roles import is_staff_member

from . import selectors, selectors_flags
from .forms_flags import BadDataForm, BadDataStatusForm
from .models import BadDataSource, BadDataStatus
from .services import baddata as services
from .views_flags import _back

PAGE_SIZE = 50


def _form_errors(form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, " ".join(exc.messages))
        return
    for field, errors in exc.message_dict.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def bad_data_list(request: HttpRequest) -> HttpResponse:
    try:
        qs = selectors_flags.bad_data_list(user=request.user, filters=request.GET)
        problem = None
    except ValidationError as exc:
        problem = validation_error_text(exc)
        qs = selectors_flags.bad_data_list(user=request.user, filters={})
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "tagging/baddata_list.html",
        {
            "page": page,
            "problem": problem,
            "repos": selectors.butler_repo_list(),
            "statuses": BadDataStatus.choices,
            "sources": BadDataSource.choices,
            "chosen_statuses": request.GET.getlist("status"),
            "active": "baddata",
        },
    )


def bad_data_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = selectors_flags.access_bad_data(request.user, pk)
    return render(
        request,
        "tagging/baddata_detail.html",
        {
            "record": record,
            "events": selectors_flags.bad_data_events(record=record),
            "status_form": BadDataStatusForm(initial={"status": record.status, "explanation": record.explanation}),
            "can_change": is_staff_member(request.user),
            "active": "baddata",
        },
    )


@require_http_methods(["GET", "POST"])
def bad_data_create(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can record bad data.")
    form = BadDataForm(request.POST or None, initial=request.GET.dict() or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            record = services.bad_data_add(
                user=request.user,
                repo_label=d["repo"].label,
                summary=d["summary"],
                data_id=d["data_id"] or None,
                dataset_type=d["dataset_type"],
                dataset_id=d["dataset_id"] or None,
                collection=d["collection"],
                explanation=d["explanation"],
                links=d["links"],
                status=d["status"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Recorded as bad data: {record.key or record.dataset_type}.")
            return redirect("tagging:baddata", pk=record.pk)
    return render(request, "tagging/baddata_form.html", {"form": form, "record": None, "active": "baddata"})


@require_http_methods(["GET", "POST"])
def bad_data_edit(request: HttpRequest, pk: int) -> HttpResponse:
    record = selectors_flags.access_bad_data(request.user, pk)
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can change the bad-data register.")
    initial = {
        "repo": record.repo.label,
        "summary": record.summary,
        "data_id": ", ".join(part for part in record.key.split(",") if part),
        "dataset_type": record.dataset_type,
        "dataset_id": record.dataset_id or "",
        "collection": record.collection,
        "explanation": record.explanation,
        "links": " ".join(record.links),
        "status": record.status,
    }
    form = BadDataForm(request.POST or None, initial=initial)
    for name in ("repo", "data_id", "status"):  # the data ID names the record; status changes have their own form
        form.fields[name].disabled = True
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.bad_data_edit(
                user=request.user,
                record_id=record.pk,
                summary=d["summary"],
                dataset_type=d["dataset_type"],
                dataset_id=d["dataset_id"] or None,
                collection=d["collection"],
                explanation=d["explanation"],
                links=d["links"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("tagging:baddata", pk=record.pk)
    return render(request, "tagging/baddata_form.html", {"form": form, "record": record, "active": "baddata"})


@require_POST
def bad_data_status(request: HttpRequest, pk: int) -> HttpResponse:
    record = selectors_flags.access_bad_data(request.user, pk)
    form = BadDataStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Status not changed: choose a status.")
        return redirect("tagging:baddata", pk=record.pk)
    d = form.cleaned_data
    try:
        services.bad_data_set_status(
            user=request.user,
            record_id=record.pk,
            status=d["status"],
            explanation=d["explanation"] if d["explanation"].strip() else None,
            comment=d["comment"],
        )
    except ValidationError as exc:
        messages.error(request, "Status not changed: " + validation_error_text(exc))
    else:
        messages.success(request, f"Status: {d['status']}.")
    return redirect("tagging:baddata", pk=record.pk)


@require_POST
def bad_data_from_failure(request: HttpRequest, error_id: int) -> HttpResponse:
    try:
        record = services.bad_data_from_failure(user=request.user, quantum_error_id=error_id)
    except ValidationError as exc:
        if "quantum_error" in getattr(exc, "error_dict", {}):
            raise Http404("No such failure record.") from None  # the failure named in the URL does not exist
        messages.error(request, "Not recorded: " + validation_error_text(exc))
        return redirect(_back(request, reverse("tagging:baddata-list")))
    messages.success(request, "Recorded as bad data; explain it when you know more.")
    return redirect("tagging:baddata", pk=record.pk)
