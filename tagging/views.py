"""Pages of the tagging app: Butler repos and the exposure browser."""

from __future__ import annotations

import itertools

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import InputError
from core.roles import is_staff_member

from . import selectors, services
from .dataids.uploads import upload_source
from .forms import DataIdSetUploadForm
from .models import DataIdSet
from .selection.selectors import selection_explained

PAGE_SIZE = 50


def repo_list(request: HttpRequest) -> HttpResponse:
    return render(request, "tagging/repo_list.html", {"repos": selectors.butler_repo_list(), "active": "exposures"})


def exposure_list(request: HttpRequest, label: str) -> HttpResponse:
    repo = selectors.butler_repo_get(label=label)
    try:
        qs = selectors.exposure_list(repo=repo, filters=request.GET)
    except ValidationError:
        messages.error(request, "Some filters were not valid and were ignored.")
        qs = selectors.exposure_list(repo=repo, filters={})
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "tagging/exposure_list.html",
        {"repo": repo, "page": page, "facets": selectors.exposure_facets(repo=repo), "active": "exposures"},
    )


def exposure_detail(request: HttpRequest, label: str, exposure_id: int) -> HttpResponse:
    repo = selectors.butler_repo_get(label=label)
    exposure = selectors.exposure_get(repo=repo, exposure_id=exposure_id)
    from .views_flags import exposure_sections

    return render(
        request,
        "tagging/exposure_detail.html",
        {
            "repo": repo,
            "exposure": exposure,
            "detectors": selectors.detector_list(repo=repo),
            "active": "exposures",
            **exposure_sections(request, exposure),
        },
    )


@require_POST
def repo_sync(request: HttpRequest, label: str) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can refresh a repo's exposure list.")
    repo = selectors.butler_repo_get(label=label)
    try:
        counts = services.repo_mirror_sync(repo=repo)
    except ValidationError as exc:  # the location is no longer under an allowed root: nothing was read
        messages.error(request, f"Could not read the registry of {repo.label}: {' '.join(exc.messages)}")
    except Exception as exc:  # the Butler reports many kinds of failure; the user needs the message
        messages.error(request, f"Could not read the registry of {repo.label}: {exc}")
    else:
        messages.success(
            request, f"Read {counts['exposures']} exposures and {counts['detectors']} detectors from {repo.label}."
        )
    return redirect("tagging:exposures", label=label)


# --- DataID sets ---------------------------------------------------------------------------------


def _problems_from(exc: InputError) -> dict:
    return {"message": exc.message, "problems": exc.problems, "total": exc.total}


def dataidset_list(request: HttpRequest) -> HttpResponse:
    qs = selectors.dataidset_list(
        user=request.user, repo_label=request.GET.get("repo") or None, q=request.GET.get("q", "")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "tagging/dataidset_list.html", {"page": page, "repos": selectors.butler_repo_list(), "active": "sets"}
    )


@require_http_methods(["GET", "POST"])
def dataidset_upload(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can create DataID sets.")
    form = DataIdSetUploadForm(request.POST or None, request.FILES or None, initial=request.GET.dict() or None)
    failure = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        common = {
            "user": request.user,
            "repo_label": d["repo"].label,
            "name": d["name"],
            "reason": d["reason"],
            "description": d["description"],
            "visibility": d["visibility"],
            "drop_invalid": d["drop_invalid"],
            "comment": d["comment"],
        }
        try:
            if d["source"] == "file":
                with upload_source(d["file"], fmt=d["format"], dimensions=d["dimensions"] or None) as source:
                    version = services.dataidset_create(source=source, **common)
            else:
                version = services.dataidset_create(
                    source=services.UploadSource(kind="query", query=d["query"], dimensions=d["dimensions"]), **common
                )
        except InputError as exc:
            failure = _problems_from(exc)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            note = f"{version.count:,} data IDs stored as {version.dataid_set.name} v{version.number}"
            extra = []
            if version.duplicates_removed:
                extra.append(f"{version.duplicates_removed:,} duplicates removed")
            if version.dropped_count:
                extra.append(f"{version.dropped_count:,} invalid data IDs dropped (see the report)")
            messages.success(request, note + (f"; {', '.join(extra)}." if extra else "."))
            return redirect("tagging:set", pk=version.dataid_set_id)
    return render(request, "tagging/dataidset_upload.html", {"form": form, "failure": failure, "active": "sets"})


def dataidset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataid_set = selectors.access_dataidset(request.user, pk)
    versions = list(dataid_set.versions.select_related("created_by").order_by("-number"))
    shown = selectors.dataidset_version(dataid_set=dataid_set, number=request.GET.get("version")) if versions else None
    can_change = DataIdSet.objects.restrict(request.user, "change").filter(pk=dataid_set.pk).exists()
    preview = list(itertools.islice(selectors.dataidset_rows(version=shown), 25)) if shown else []
    others = (
        selectors.dataidset_list(user=request.user, repo_label=dataid_set.repo.label).exclude(pk=dataid_set.pk)
        if is_staff_member(request.user)
        else []
    )
    busy = bool(shown and shown.tag_status in ("pending", "running"))
    return render(
        request,
        "tagging/dataidset_detail.html",
        {
            "set": dataid_set,
            "versions": versions,
            "shown": shown,
            "preview": preview,
            "can_change": can_change,
            "is_owner": dataid_set.owner_id == request.user.pk or request.user.is_superuser,
            "sharing": selectors.dataidset_sharing(dataid_set=dataid_set) if can_change else None,
            "others": others,
            "refresh": busy,
            "selection": selection_explained(shown) if shown else None,
            "active": "sets",
        },
    )


def dataidset_download(request: HttpRequest, pk: int) -> HttpResponse:
    from .api.views import dataidset_download_response

    dataid_set = selectors.access_dataidset(request.user, pk)
    version = selectors.dataidset_version(dataid_set=dataid_set, number=request.GET.get("version"))
    fmt = (request.GET.get("format") or "csv").lower()
    if fmt not in ("json", "csv", "ecsv"):
        raise Http404("Unknown download format.")
    return dataidset_download_response(dataid_set, version, fmt)


@require_POST
def dataidset_tag(request: HttpRequest, pk: int) -> HttpResponse:
    dataid_set = selectors.access_dataidset(request.user, pk)
    version = selectors.dataidset_version(dataid_set=dataid_set, number=request.POST.get("version"))
    collections = [
        c.strip() for c in request.POST.get("input_collections", "").replace("\n", ",").split(",") if c.strip()
    ]
    try:
        services.dataidset_tag_start(
            user=request.user,
            version_id=version.pk,
            dataset_type=request.POST.get("dataset_type", ""),
            input_collections=collections,
            collection=request.POST.get("collection", ""),
        )
    except ValidationError as exc:
        messages.error(request, "Not started: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
    else:
        messages.info(request, "Resolution queued: a worker finds the datasets and fills the TAGGED collection.")
    return redirect(f"{reverse('tagging:set', args=[pk])}?version={version.number}#tagged")


@require_POST
def dataidset_share(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.dataidset_share(
            user=request.user,
            set_id=pk,
            username=request.POST.get("username", "").strip() or None,
            group=request.POST.get("group", "").strip() or None,
            permission=request.POST.get("permission", "view"),
            grant=request.POST.get("grant", "1") == "1",
        )
    except ValidationError as exc:
        messages.error(request, "Sharing not changed: " + "; ".join(" ".join(v) for v in exc.message_dict.values()))
    else:
        messages.success(request, "Sharing updated.")
    return redirect(reverse("tagging:set", args=[pk]) + "#sharing")


@require_POST
def dataidset_combine(request: HttpRequest, pk: int) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can create DataID sets.")
    dataid_set = selectors.access_dataidset(request.user, pk)
    first = selectors.dataidset_version(dataid_set=dataid_set, number=request.POST.get("version"))
    other_id = request.POST.get("other")
    try:
        other = selectors.dataidset_version(dataid_set=selectors.access_dataidset(request.user, other_id or 0))
        version = services.dataidset_algebra(
            user=request.user,
            operation=request.POST.get("operation", ""),
            parent_version_ids=[first.pk, other.pk],
            name=request.POST.get("name", "").strip(),
            reason=request.POST.get("reason", ""),
        )
    except Http404:
        messages.error(request, "Choose the other set to combine with.")
    except (ValidationError, InputError) as exc:
        text = exc.message if isinstance(exc, InputError) else "; ".join(" ".join(v) for v in exc.message_dict.values())
        messages.error(request, "Not combined: " + text)
    else:
        messages.success(request, f"{version.dataid_set.name}: {version.count:,} data IDs.")
        return redirect("tagging:set", pk=version.dataid_set_id)
    return redirect(reverse("tagging:set", args=[pk]) + "#combine")
