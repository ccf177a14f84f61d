"""Pages of the selection builder: the builder itself and the re-run of a frozen selection.

The builder page is a form that the browser turns into a recipe and sends to the API
(``/api/v1/selections/count`` as the user edits, ``/api/v1/selections/freeze`` to store it).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.errors import InputError
from core.roles import is_staff_member

from . import selectors
from .selection import services as selection_services
from .selection.selectors import selection_builder_choices, selection_explained


def selection_builder(request: HttpRequest) -> HttpResponse:
    choices = selection_builder_choices(user=request.user)
    initial = None
    from_version = request.GET.get("from")
    if from_version and from_version.isdigit():
        try:
            version = selection_services.frozen_selection(user=request.user, version_id=int(from_version))
            initial = version.source.get("recipe")
        except InputError:
            initial = None
    return render(
        request,
        "tagging/selection_builder.html",
        {
            "choices": choices,
            "initial": initial,
            "can_freeze": is_staff_member(request.user),
            "active": "selections",
        },
    )


def selection_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    dataid_set = selectors.access_dataidset(request.user, pk)
    version = selectors.dataidset_version(dataid_set=dataid_set, number=request.GET.get("version"))
    error = None
    diff = None
    try:
        diff = selection_services.selection_rerun(user=request.user, version_id=version.pk)
    except InputError as exc:
        error = exc.message
    return render(
        request,
        "tagging/selection_rerun.html",
        {
            "set": dataid_set,
            "shown": version,
            "selection": selection_explained(version),
            "diff": diff,
            "error": error,
            "recipe_json": json.dumps(version.source.get("recipe"), indent=1) if version.source else "",
            "active": "sets",
        },
    )
