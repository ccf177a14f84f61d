"""Pages of the loop back: the re-observation download behind the campaign page's button."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from .api.views import reobservation_response


@login_required
def reobserve(request: HttpRequest, pk: int) -> HttpResponse:
    params = request.GET.copy()
    params["campaign"] = str(pk)
    try:
        return reobservation_response(request.user, params)
    except ValidationError as exc:
        lines = [f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()]
        return HttpResponseBadRequest("Cannot export: " + "; ".join(lines), content_type="text/plain")
