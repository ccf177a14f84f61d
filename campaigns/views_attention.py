"""Pages of what needs a person: the inbox, a campaign's error summary and a failed quantum's log."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core.roles import is_staff_member

from . import selectors
from .models import VIEW, QuantumError
from .selectors_attention import inbox as inbox_of
from .selectors_failures import failure_summary


def inbox(request: HttpRequest) -> HttpResponse:
    """Everything that waits for a person in the campaigns the user may see: theirs to act on first."""
    found = inbox_of(user=request.user)
    context = {
        "found": found,
        "mine": found.mine(),
        "others": found.others(),
        "staff": is_staff_member(request.user),
        "active": "inbox",
    }
    return render(request, "campaigns/inbox.html", context)


def campaign_errors(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign's failed quanta by task and by message pattern, with "make an error rule from this"."""
    campaign = selectors.access_campaign(request.user, pk, VIEW)
    latest_only = request.GET.get("attempts") != "all"
    context = {
        "campaign": campaign,
        "summary": failure_summary(campaign=campaign, latest_only=latest_only),
        "active": "campaigns",
    }
    return render(request, "campaigns/errors.html", context)


def quantum_log(request: HttpRequest, pk: int, group_id: int, error_id: int) -> HttpResponse:
    """The last records of a failed quantum's ``<task>_log`` dataset, read from the Butler (bounded, escaped)."""
    from lsst_adapter.logs import quantum_log as read_log

    group = selectors.access_group(request.user, group_id, VIEW)
    if group.step.campaign_id != pk:
        raise Http404("No such group in this campaign.")
    error = QuantumError.objects.select_related("submission").filter(pk=error_id, submission__group=group).first()
    if error is None:
        raise Http404("No such failed quantum in this group.")
    campaign = group.step.campaign
    log = read_log(
        campaign.butler_repo.config_uri,
        run=error.submission.run_collection,
        task_label=error.task_label,
        data_id=error.data_id,
        uri=error.log_dataset,
    )
    context = {"campaign": campaign, "group": group, "error": error, "log": log, "active": "campaigns"}
    return render(request, "campaigns/quantum_log.html", context)
