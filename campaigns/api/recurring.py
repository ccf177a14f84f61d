"""REST API of recurring campaigns: the same services and permission gate as the schedules page."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core import api

from .. import recurring
from ..models import CHANGE, VIEW, RecurringCampaign


class RecurringCampaignSerializer(serializers.ModelSerializer):
    template_name = serializers.CharField(source="template.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    last_campaign_name = serializers.CharField(
        source="last_campaign.name", read_only=True, default=None, allow_null=True
    )
    next_run = serializers.SerializerMethodField()
    periodic_task = serializers.CharField(source="periodic_task.name", read_only=True, default=None, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RecurringCampaign
        fields = [
            "id",
            "template",
            "template_name",
            "name_prefix",
            "cron",
            "last_nights",
            "enabled",
            "owner",
            "created",
            "updated",
            "last_run",
            "last_campaign",
            "last_campaign_name",
            "last_error",
            "next_run",
            "periodic_task",
            "url",
        ]
        read_only_fields = fields

    def get_next_run(self, obj: RecurringCampaign) -> str | None:
        when = recurring.next_run(obj)
        return when.isoformat() if when else None

    def get_url(self, obj: RecurringCampaign) -> str:
        return reverse("api:recurringcampaign-detail", args=[obj.pk])


class RecurringCampaignWriteSerializer(serializers.Serializer):
    template = api.IntegerField(required=False, help_text="id of the template campaign (create only)")
    name_prefix = serializers.CharField(required=False)
    cron = serializers.CharField(required=False, help_text="5 fields, UTC: minute hour day-of-month month day-of-week")
    last_nights = api.IntegerField(required=False)
    enabled = serializers.BooleanField(required=False)

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: [f"Unknown field {key!r}."] for key in unknown})
        return super().to_internal_value(data)


class RecurringCampaignViewSet(viewsets.GenericViewSet):
    """Recurring campaigns: anyone who may view the template sees its schedules; staff who may change it edit them."""

    queryset = RecurringCampaign.objects.none()
    serializer_class = RecurringCampaignSerializer

    def list(self, request: Request) -> Response:
        return Response(RecurringCampaignSerializer(recurring.recurring_list(user=request.user), many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(RecurringCampaignSerializer(recurring.access_recurring(request.user, pk, VIEW)).data)

    @extend_schema(request=RecurringCampaignWriteSerializer, responses={201: RecurringCampaignSerializer})
    def create(self, request: Request) -> Response:
        serializer = RecurringCampaignWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "template" not in data:
            raise serializers.ValidationError({"template": ["This field is required."]})
        created = recurring.recurring_create(
            user=request.user,
            template_id=data.pop("template"),
            name_prefix=data.get("name_prefix", ""),
            cron=data.get("cron", ""),
            last_nights=data.get("last_nights", 14),
            enabled=data.get("enabled", True),
        )
        fresh = recurring.access_recurring(request.user, created.pk, VIEW)
        return Response(RecurringCampaignSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RecurringCampaignWriteSerializer, responses=RecurringCampaignSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        recurring.access_recurring(request.user, pk, CHANGE)
        serializer = RecurringCampaignWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "template" in data:
            raise serializers.ValidationError({"template": ["A schedule keeps its template."]})
        updated = recurring.recurring_update(user=request.user, recurring_id=int(pk), **data)
        return Response(RecurringCampaignSerializer(recurring.access_recurring(request.user, updated.pk, VIEW)).data)

    def destroy(self, request: Request, pk: str) -> Response:
        recurring.recurring_delete(user=request.user, recurring_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
