"""Serializers of exposure flags (field names of Rubin's exposure log) and bad-data records: shapes only."""

from __future__ import annotations

from rest_framework import serializers

from core import api
from core.parsers import JSONField

from ..models import BadDataEvent, BadDataRecord, BadDataStatus, ExposureFlag, ExposureFlagValue


class FlagSerializer(serializers.ModelSerializer):
    """One message, as the exposure log answers it (plus ``repo`` and ``exposure``)."""

    repo = serializers.CharField(source="repo.label", default=None, read_only=True, allow_null=True)
    parent_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = ExposureFlag
        fields = [
            "id",
            "repo",
            "instrument",
            "obs_id",
            "day_obs",
            "seq_num",
            "exposure",
            "message_text",
            "level",
            "tags",
            "urls",
            "user_id",
            "user_agent",
            "is_human",
            "is_valid",
            "exposure_flag",
            "date_added",
            "date_invalidated",
            "parent_id",
        ]
        read_only_fields = fields


class FlagAddSerializer(serializers.Serializer):
    repo = serializers.CharField(help_text="Butler repo label")
    instrument = serializers.CharField(required=False, allow_blank=True)
    obs_id = serializers.CharField(required=False, allow_blank=True)
    day_obs = api.IntegerField(required=False)
    seq_num = api.IntegerField(required=False)
    exposure = api.IntegerField(required=False, help_text="exposure id")
    message_text = serializers.CharField()
    exposure_flag = serializers.ChoiceField(choices=ExposureFlagValue.choices, default=ExposureFlagValue.NONE)
    level = api.IntegerField(default=20, min_value=0, max_value=api.INT32_MAX, help_text="a Python logging level")
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    urls = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    user_agent = serializers.CharField(required=False, allow_blank=True, default="")
    is_human = serializers.BooleanField(default=True)


class FlagEditSerializer(serializers.Serializer):
    message_text = serializers.CharField(required=False)
    exposure_flag = serializers.ChoiceField(choices=ExposureFlagValue.choices, required=False)
    level = api.IntegerField(required=False, min_value=0, max_value=api.INT32_MAX)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    urls = serializers.ListField(child=serializers.CharField(), required=False)
    user_agent = serializers.CharField(required=False, allow_blank=True, default="")


class FlagImportSerializer(serializers.Serializer):
    repo = serializers.CharField(help_text="Butler repo label")
    file = serializers.FileField(required=False, help_text="a JSON export of exposure-log messages")
    messages = JSONField(required=False, help_text="the messages themselves, instead of a file")

    def validate(self, attrs):
        if ("file" in attrs) == ("messages" in attrs):
            raise serializers.ValidationError({"file": ["Send either a file or messages."]})
        return attrs


class BadDataEventSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")

    class Meta:
        model = BadDataEvent
        fields = ["action", "from_status", "to_status", "changes", "comment", "user", "at"]


class BadDataSerializer(serializers.ModelSerializer):
    repo = serializers.CharField(source="repo.label")
    created_by = serializers.CharField(source="created_by.username")
    data_id = serializers.SerializerMethodField()

    class Meta:
        model = BadDataRecord
        fields = [
            "id",
            "repo",
            "summary",
            "status",
            "key",
            "data_id",
            "dataset_type",
            "dataset_id",
            "collection",
            "explanation",
            "links",
            "source",
            "quantum_error",
            "source_detail",
            "created_by",
            "created",
            "updated",
        ]

    def get_data_id(self, record: BadDataRecord) -> dict:
        return {d: getattr(record, d) for d in record.dimensions}


class BadDataAddSerializer(serializers.Serializer):
    repo = serializers.CharField()
    summary = serializers.CharField(max_length=200)
    data_id = serializers.DictField(required=False, help_text="e.g. {instrument: DemoCam, exposure: …, detector: 4}")
    dataset_type = serializers.CharField(required=False, allow_blank=True, default="")
    dataset_id = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    collection = serializers.CharField(required=False, allow_blank=True, default="")
    explanation = serializers.CharField(required=False, allow_blank=True, default="")
    links = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    status = serializers.ChoiceField(choices=BadDataStatus.choices, default=BadDataStatus.OPEN)


class BadDataEditSerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=200, required=False)
    dataset_type = serializers.CharField(required=False, allow_blank=True)
    dataset_id = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    collection = serializers.CharField(required=False, allow_blank=True)
    explanation = serializers.CharField(required=False, allow_blank=True)
    links = serializers.ListField(child=serializers.CharField(), required=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class BadDataStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=BadDataStatus.choices)
    explanation = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class BadDataFromFailureSerializer(serializers.Serializer):
    quantum_error = api.IntegerField(help_text="id of the failed-quantum record")
    summary = serializers.CharField(required=False, allow_blank=True, default="")
