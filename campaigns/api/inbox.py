"""``GET /api/v1/inbox/``: what waits for a person (the same selector as the inbox page and ``cm inbox``)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..choices import Attention
from ..selectors_attention import ActionItem, NeedsAction, inbox

_PARAMETERS = {"mine", "kind"}


class InboxItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Attention.choices, help_text="What waits.")
    kind_label = serializers.CharField()
    title = serializers.CharField(help_text="What waits, in words.")
    reason = serializers.CharField(help_text="Why: the hold's reason, the group's error, the pause's reason.")
    since = serializers.DateTimeField(allow_null=True, help_text="Since when it waits (null: not known).")
    campaign_id = serializers.IntegerField()
    campaign = serializers.CharField()
    owner = serializers.CharField()
    can_act = serializers.BooleanField(help_text="Whether you may act on it (you may change the campaign).")
    step = serializers.CharField(allow_blank=True)
    step_id = serializers.IntegerField(allow_null=True)
    group = serializers.CharField(allow_blank=True)
    group_id = serializers.IntegerField(allow_null=True)
    attempts = serializers.IntegerField(help_text="Attempts of the group so far (0 for steps and campaigns).")
    actions = serializers.DictField(
        child=serializers.CharField(),
        help_text="What can be done, each with the API endpoint that does it (POST, with a comment).",
    )
    page = serializers.CharField(help_text="The page where a person acts on it.")


class InboxCampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    can_act = serializers.BooleanField()
    headline = serializers.CharField(help_text='What the campaign waits for, e.g. "awaiting approval".')
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Items by kind.")


class InboxSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Items counted (those not listed included).")
    more = serializers.IntegerField(help_text="Items counted but not listed (beyond the limit).")
    items = InboxItemSerializer(many=True)
    campaigns = InboxCampaignSerializer(many=True)


def _actions(item: ActionItem) -> dict[str, str]:
    if item.group_id is not None:
        return {verb: reverse(f"api:group-{verb}", args=[item.group_id]) for verb in item.actions}
    if item.step_id is not None:
        return {"approve": reverse("api:step-approve", args=[item.step_id])}
    return {"resume": reverse("api:campaign-resume", args=[item.campaign_id])}


def inbox_body(found: NeedsAction, *, mine: bool = False, kind: str | None = None) -> dict:
    items = [i for i in found.items if (not mine or i.can_act) and (kind is None or i.kind == kind)]
    campaigns = [c for c in found.campaigns.values() if c.total and (not mine or c.can_act)]
    return {
        "total": sum(c.total for c in campaigns),
        "more": found.more,
        "items": [
            {
                "kind": i.kind,
                "kind_label": i.kind_label,
                "title": i.title,
                "reason": i.reason,
                "since": i.since,
                "campaign_id": i.campaign_id,
                "campaign": i.campaign,
                "owner": i.owner,
                "can_act": i.can_act,
                "step": i.step,
                "step_id": i.step_id,
                "group": i.group,
                "group_id": i.group_id,
                "attempts": i.attempts,
                "actions": _actions(i),
                "page": i.url,
            }
            for i in items
        ],
        "campaigns": [
            {
                "id": c.campaign_id,
                "name": c.campaign,
                "status": c.status,
                "can_act": c.can_act,
                "headline": c.headline,
                "counts": c.counts,
            }
            for c in sorted(campaigns, key=lambda c: c.campaign)
        ],
    }


class InboxView(APIView):
    """What waits for a person in the campaigns you may see: steps awaiting approval (quality gates included),
    failed groups awaiting a decision, campaigns the executor paused. Items say whether you may act on them and
    which endpoint does what; the most pressing come first. For staff; science users get an empty inbox."""

    @extend_schema(
        parameters=[
            OpenApiParameter("mine", bool, description="Only what you may act on."),
            OpenApiParameter("kind", str, enum=Attention.values, description="Only items of this kind."),
        ],
        responses={200: InboxSerializer},
    )
    def get(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - _PARAMETERS)
        if unknown:
            raise ValidationError({name: "Unknown query parameter." for name in unknown})
        mine_raw = request.query_params.get("mine", "")
        if mine_raw not in ("", "0", "1", "true", "false"):
            raise ValidationError({"mine": "Use true or false."})
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in Attention.values:
            raise ValidationError({"kind": f"One of {', '.join(Attention.values)}."})
        body = inbox_body(inbox(user=request.user), mine=mine_raw in ("1", "true"), kind=kind)
        return Response(InboxSerializer(body).data)
