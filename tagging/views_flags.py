"""Pages of exposure flags: the list (exposure-log filters), one flag with its history, and the writes
(add on the exposure page, edit, invalidate, import). Thin: services write, selectors read."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ConflictError, InputError, validation_error_text
from core.roles import is_staff_member

from . import selectors, selectors_flags
from .forms_flags import FlagForm, FlagImportForm
from .models import ExposureFlagValue
from .services import flags as flag_services

PAGE_SIZE = 50


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def exposure_sections(request: HttpRequest, exposure) -> dict:
    """What the exposure page shows below its metadata: flags, tag-table rows, DataID sets, bad data."""
    from . import selectors_exposure

    return {
        "flags": selectors_flags.exposure_flags(user=request.user, exposure=exposure),
        "flag_form": FlagForm(),
        "can_flag": is_staff_member(request.user),
        "tag_rows": selectors_exposure.exposure_tag_rows(user=request.user, exposure=exposure),
        "dataid_sets": list(selectors_exposure.exposure_dataid_sets(user=request.user, exposure=exposure)),
        "bad_data": selectors_flags.exposure_bad_data(user=request.user, exposure=exposure),
    }


def flag_list(request: HttpRequest) -> HttpResponse:
    filters = request.GET.copy()
    if not filters.get("order_by"):
        filters["order_by"] = "-date_added"  # the page shows the newest first (the API, as the log, orders by id)
    try:
        qs = selectors_flags.flag_list(user=request.user, filters=filters)
        problem = None
    except ValidationError as exc:
        problem = validation_error_text(exc)
        qs = selectors_flags.flag_list(user=request.user, filters={"order_by": "-date_added"})
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "tagging/flag_list.html",
        {
            "page": page,
            "problem": problem,
            "repos": selectors.butler_repo_list(),
            "flag_values": ExposureFlagValue.choices,
            "chosen_flags": request.GET.getlist("exposure_flags"),
            "active": "flags",
        },
    )


def flag_detail(request: HttpRequest, pk: str) -> HttpResponse:
    flag = selectors_flags.access_flag(request.user, pk)
    history = selectors_flags.flag_history(flag=flag)
    form = FlagForm(
        initial={
            "message_text": flag.message_text,
            "exposure_flag": flag.exposure_flag,
            "level": flag.level,
            "tags": " ".join(flag.tags),
            "urls": " ".join(flag.urls),
        }
    )
    return render(
        request,
        "tagging/flag_detail.html",
        {
            "flag": flag,
            "history": history,
            "newest": history[-1] if history else flag,
            "form": form,
            "can_change": is_staff_member(request.user),
            "active": "flags",
        },
    )


@require_POST
def flag_add(request: HttpRequest, label: str, exposure_id: int) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can flag exposures.")
    repo = selectors.butler_repo_get(label=label)
    exposure = selectors.exposure_get(repo=repo, exposure_id=exposure_id)
    back = reverse("tagging:exposure", args=[label, exposure_id]) + "#flags"
    form = FlagForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Flag not added: " + "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()),
        )
        return redirect(back)
    try:
        flag_services.flag_add(
            user=request.user,
            repo_label=repo.label,
            instrument=exposure.instrument,
            exposure=exposure.exposure_id,
            user_agent="web",
            **form.cleaned_data,
        )
    except ValidationError as exc:
        messages.error(request, "Flag not added: " + validation_error_text(exc))
    else:
        messages.success(request, f"Flag added to {exposure.obs_id}.")
    return redirect(back)


@require_POST
def flag_edit(request: HttpRequest, pk: str) -> HttpResponse:
    flag = selectors_flags.access_flag(request.user, pk, "change")
    back = _back(request, reverse("tagging:flag", args=[flag.pk]))
    form = FlagForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Not changed: " + "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())
        )
        return redirect(back)
    try:
        new = flag_services.flag_edit(user=request.user, flag_id=flag.pk, user_agent="web", **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, "Not changed: " + validation_error_text(exc))
    except ConflictError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Flag edited: the new message replaces the old one, which is kept in the history.")
        if back == reverse("tagging:flag", args=[flag.pk]):
            back = reverse("tagging:flag", args=[new.pk])
    return redirect(back)


@require_POST
def flag_invalidate(request: HttpRequest, pk: str) -> HttpResponse:
    flag = selectors_flags.access_flag(request.user, pk, "change")
    flag_services.flag_invalidate(user=request.user, flag_id=flag.pk)
    messages.success(request, "Flag deleted (it is kept, marked not valid).")
    return redirect(_back(request, reverse("tagging:flag", args=[flag.pk])))


@require_http_methods(["GET", "POST"])
def flag_import(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can import exposure flags.")
    form = FlagImportForm(request.POST or None, request.FILES or None)
    failure = None
    if request.method == "POST" and form.is_valid():
        try:
            counts = flag_services.flag_import(
                user=request.user, repo_label=form.cleaned_data["repo"].label, data=form.cleaned_data["file"]
            )
        except InputError as exc:
            failure = {"message": exc.message, "problems": exc.problems, "total": exc.total}
        except ValidationError as exc:
            form.add_error(None, validation_error_text(exc))
        else:
            messages.success(
                request,
                f"{counts['read']} messages read: {counts['created']} new, {counts['updated']} updated, "
                f"{counts['unchanged']} already here"
                + (
                    f"; {counts['not_in_repo']} about exposures this repo does not have."
                    if counts["not_in_repo"]
                    else "."
                ),
            )
            return redirect(reverse("tagging:flags") + "?is_valid=any")
    return render(request, "tagging/flag_import.html", {"form": form, "failure": failure, "active": "flags"})
