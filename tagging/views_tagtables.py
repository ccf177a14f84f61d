"""Pages of tag tables: list, create, the table with its editable grid, schema editor, history, upload."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ConflictError, InputError
from core.roles import is_staff_member

from . import selectors
from . import selectors_tagtables as tt
from .forms_tagtables import TagColumnFormSet, TagRowsUploadForm, TagTableForm
from .models import ColumnType, Polarity
from .services import tagtables as services

GRID_PAGE = 100
ACTIVE = "tagtables"


def _errors_text(exc: ValidationError) -> str:
    return "; ".join(f"{' '.join(v)}" for v in exc.message_dict.values())


def tagtable_list(request: HttpRequest) -> HttpResponse:
    g = request.GET
    qs = tt.tagtable_list(
        user=request.user,
        repo_label=g.get("repo") or None,
        polarity=g.get("polarity") or None,
        owner=g.get("owner") or None,
        q=g.get("q", ""),
    )
    page = Paginator(qs, 50).get_page(g.get("page"))
    return render(
        request,
        "tagging/tagtable_list.html",
        {
            "page": page,
            "repos": selectors.butler_repo_list(),
            "polarities": Polarity.choices,
            "filtered": any(g.get(k) for k in ("q", "repo", "polarity", "owner")),
            "active": ACTIVE,
        },
    )


@require_http_methods(["GET", "POST"])
def tagtable_create(request: HttpRequest) -> HttpResponse:
    if not is_staff_member(request.user):
        raise PermissionDenied("Only staff members can create tag tables.")
    form = TagTableForm(request.POST or None, initial=request.GET.dict() or None)
    columns = TagColumnFormSet(request.POST or None, prefix="columns")
    if request.method == "POST" and form.is_valid() and columns.is_valid():
        d = form.cleaned_data
        specs = [c for c in columns.cleaned_data if c and (c.get("name") or "").strip()]
        try:
            table = services.tagtable_create(
                user=request.user,
                repo_label=d["repo"].label,
                name=d["name"],
                key_dimensions=d["key_dimensions"],
                columns=specs,
                polarity=d["polarity"],
                purpose=d["purpose"],
                description=d["description"],
                visibility=d["visibility"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    if field in form.fields:
                        form.add_error(field, error)
                    else:
                        form.add_error(None, f"{field}: {error}" if field.startswith("columns") else error)
        else:
            messages.success(request, f"Tag table {table.name} was created. Add rows in the grid or upload a file.")
            return redirect("tagging:tagtable", pk=table.pk)
    return render(
        request,
        "tagging/tagtable_form.html",
        {"form": form, "columns": columns, "types": ColumnType.choices, "active": ACTIVE},
    )


def tagtable_detail(request: HttpRequest, pk: int) -> HttpResponse:
    table = tt.access_tagtable(request.user, pk)
    columns = tt.tagtable_columns(table=table)
    dims = list(table.key_dimensions)
    q = request.GET.get("q", "")
    page = Paginator(tt.tagtable_rows(table=table, q=q), GRID_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "key": r.key,
            "ids": [getattr(r, d) for d in dims],
            "data_id": json.dumps({d: getattr(r, d) for d in dims}),
            "cells": [(c, r.values.get(c.key)) for c in columns],
            "updated": r.updated,
            "updated_by": r.updated_by.username,
        }
        for r in page.object_list
    ]
    can_change = tt.can_change(request.user, table)
    # The data-ID inputs of the "add a row" line: the instrument comes from the repo when it has a default.
    entry_dims = [d for d in dims if not (d == "instrument" and table.repo.default_instrument)]
    return render(
        request,
        "tagging/tagtable_detail.html",
        {
            "table": table,
            "columns": columns,
            "dims": dims,
            "entry_dims": entry_dims,
            "width": len(dims) + len(columns) + 2,
            "rows": rows,
            "page": page,
            "q": q,
            "can_change": can_change,
            "retired": [c for c in tt.tagtable_columns(table=table, include_retired=True) if c.retired],
            "events": tt.tagtable_events(table=table)[:10],
            "sharing": tt.tagtable_sharing(table=table) if can_change else None,
            "active": ACTIVE,
        },
    )


@require_http_methods(["GET", "POST"])
def tagtable_schema(request: HttpRequest, pk: int) -> HttpResponse:
    table = tt.access_tagtable(request.user, pk)
    if request.method == "POST":
        table = tt.access_tagtable(request.user, pk, "change")
        p = request.POST
        what = p.get("action", "")
        version = int(p["version"]) if p.get("version", "").isdigit() else None
        reason = p.get("reason", "")
        try:
            if what == "add":
                column = services.tag_column_add(
                    user=request.user,
                    table_id=table.pk,
                    version=version,
                    reason=reason,
                    spec={
                        "name": p.get("name", ""),
                        "type": p.get("type", ""),
                        "enum_values": p.get("enum_values", ""),
                        "unit": p.get("unit", ""),
                        "description": p.get("description", ""),
                        "required": p.get("required") == "on",
                    },
                )
                messages.success(request, f"Column {column.name} was added.")
            elif what == "update":
                changes: dict[str, object] = {k: p.get(k, "") for k in ("name", "unit", "description")}
                changes["required"] = p.get("required") == "on"
                if p.get("enum_values"):
                    changes["enum_values"] = p.get("enum_values", "")
                column = services.tag_column_update(
                    user=request.user,
                    table_id=table.pk,
                    column_key=p.get("column", ""),
                    changes=changes,
                    version=version,
                    reason=reason,
                )
                messages.success(request, f"Column {column.name} was saved.")
            elif what in ("retire", "unretire"):
                column = services.tag_column_retire(
                    user=request.user,
                    table_id=table.pk,
                    column_key=p.get("column", ""),
                    retire=what == "retire",
                    version=version,
                    reason=reason,
                )
                messages.success(
                    request,
                    f"Column {column.name} was {'retired (its values are kept)' if what == 'retire' else 'brought back'}.",
                )
            elif what == "meta":
                services.tagtable_update(
                    user=request.user,
                    table_id=table.pk,
                    version=version or 0,
                    reason=reason,
                    changes={k: p.get(k, "") for k in ("name", "description", "purpose", "polarity", "visibility")},
                )
                messages.success(request, "The table was saved.")
            else:
                raise Http404("Unknown schema action.")
        except ValidationError as exc:
            messages.error(request, "Not saved: " + _errors_text(exc))
        except ConflictError as exc:
            messages.error(request, str(exc))
        return redirect("tagging:tagtable-schema", pk=table.pk)
    return render(
        request,
        "tagging/tagtable_schema.html",
        {
            "table": table,
            "columns": tt.tagtable_columns(table=table, include_retired=True),
            "types": ColumnType.choices,
            "polarities": Polarity.choices,
            "can_change": tt.can_change(request.user, table),
            "events": tt.tagtable_events(table=table)[:200],
            "active": ACTIVE,
        },
    )


def tagtable_history(request: HttpRequest, pk: int) -> HttpResponse:
    table = tt.access_tagtable(request.user, pk)
    key = request.GET.get("key") or None
    names = {c.key: c.name for c in table.columns.all()}
    page = Paginator(tt.tagtable_row_changes(table=table, key=key), 100).get_page(request.GET.get("page"))
    changes = [{"change": c, "diff": tt.changes_by_name(c, names)} for c in page.object_list]
    return render(
        request,
        "tagging/tagtable_history.html",
        {"table": table, "key": key, "page": page, "changes": changes, "active": ACTIVE},
    )


@require_POST
def tagtable_share(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.tagtable_share(
            user=request.user,
            table_id=pk,
            username=request.POST.get("username", "").strip() or None,
            group=request.POST.get("group", "").strip() or None,
            permission=request.POST.get("permission", "view"),
            grant=request.POST.get("grant", "1") == "1",
        )
    except ValidationError as exc:
        messages.error(request, "Sharing not changed: " + _errors_text(exc))
    else:
        messages.success(request, "Sharing updated.")
    return redirect(reverse("tagging:tagtable", args=[pk]) + "#sharing")


@require_http_methods(["GET", "POST"])
def tagtable_upload(request: HttpRequest, pk: int) -> HttpResponse:
    table = tt.access_tagtable(request.user, pk, "change")
    form = TagRowsUploadForm(request.POST or None, request.FILES or None)
    failure = None
    report = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        upload = d["file"]
        try:
            result = services.tag_rows_upload(
                user=request.user,
                table_id=table.pk,
                stream=upload,
                filename=upload.name or "upload",
                format=d["format"] or None,
                reason=d["reason"],
                drop_invalid=d["drop_invalid"],
            )
        except InputError as exc:
            failure = {"message": exc.message, "problems": exc.problems, "total": exc.total}
        else:
            text = f"{result.created} rows added, {result.updated} changed, {result.unchanged} unchanged"
            if result.dropped:
                text += f"; {result.dropped} invalid rows dropped (see the report below)"
                report = result
            messages.success(request, text + ".")
            if not result.dropped:
                return redirect("tagging:tagtable", pk=table.pk)
    return render(
        request,
        "tagging/tagtable_upload.html",
        {
            "table": table,
            "form": form,
            "failure": failure,
            "report": report,
            "columns": tt.tagtable_columns(table=table),
            "active": ACTIVE,
        },
    )


def tagtable_download(request: HttpRequest, pk: int) -> HttpResponse:
    from .api.tagtables import tagtable_download_response

    table = tt.access_tagtable(request.user, pk)
    fmt = (request.GET.get("format") or "csv").lower()
    if fmt not in ("csv", "json"):
        raise Http404("Unknown download format.")
    return tagtable_download_response(table, fmt, request.GET.get("retired") == "1")  # type: ignore[return-value]
