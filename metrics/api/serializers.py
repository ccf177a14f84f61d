"""Serializers of the metrics API: input validation and output shape only."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.parsers import JSONField

from ..models import MetricValue


class MetricValueSerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.name", default=None, read_only=True, allow_null=True)
    step = serializers.CharField(source="step.name", default=None, read_only=True, allow_null=True)

    class Meta:
        model = MetricValue
        fields = [
            "id", "metric", "value", "unit", "data_id_key", "instrument", "exposure", "visit", "detector",
            "day_obs", "band", "physical_filter", "skymap", "tract", "patch", "campaign", "step", "group_id",
            "run", "dataset_type", "dataset_id", "source", "timestamp", "ingested",
        ]  # fmt: skip
        read_only_fields = fields


def parse_data_id(value) -> dict:
    """``{"exposure": 1}`` or ``"exposure=1,detector=4"`` (or a list of ``k=v``) → dict; ValueError otherwise."""
    from core.limits import LimitExceeded, json_loads

    if value in (None, "", [], {}):
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value).strip()
    if text.startswith("{"):
        try:
            parsed = json_loads(text)
        except LimitExceeded as exc:
            raise ValueError(exc.message) from exc
        if not isinstance(parsed, dict):
            raise ValueError("a data ID is a mapping")
        return parsed
    out = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"{part.strip()!r} is not key=value")
        out[key.strip()] = val.strip()
    return out


@extend_schema_field(OpenApiTypes.ANY)
class _AsGiven(serializers.Field):
    """A value passed on as sent (a mapping in JSON, text in a form); the validate_ method reads it."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class IngestSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="A bundle JSON, a JSON list or JSON lines of records.")
    bundle = JSONField(required=False, help_text="One MetricMeasurementBundle as JSON.")
    records = serializers.ListField(child=JSONField(), required=False, help_text="Flat records.")
    format = serializers.ChoiceField(choices=["", "bundle", "flat"], required=False, default="")
    repo = serializers.CharField(required=False, default="", allow_blank=True)
    campaign = serializers.CharField(required=False, default="", allow_blank=True, help_text="id or name")
    run = serializers.CharField(required=False, default="", allow_blank=True)
    source = serializers.CharField(required=False, default="", allow_blank=True)
    data_id = _AsGiven(required=False, help_text='{"exposure": ..., "detector": ...} or "k=v,k=v"')
    action = serializers.CharField(required=False, default="", allow_blank=True)
    units = _AsGiven(required=False, help_text='{"psfFwhm": "arcsec"} for flat records')
    dataset_type = serializers.CharField(required=False, default="", allow_blank=True)

    def validate_data_id(self, value):
        try:
            return parse_data_id(value)
        except ValueError as exc:
            raise serializers.ValidationError(f"Not a data ID: {exc}.") from exc

    def validate_units(self, value):
        if value in (None, ""):
            return {}
        if isinstance(value, str):
            from core.limits import json_loads

            try:
                value = json_loads(value)
            except ValueError as exc:
                raise serializers.ValidationError("Units are a JSON mapping of metric to unit.") from exc
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise serializers.ValidationError("Units are a mapping of metric name to unit text.")
        return value

    def validate(self, attrs):
        given = [k for k in ("file", "bundle", "records") if attrs.get(k) is not None]
        if len(given) != 1:
            raise serializers.ValidationError({"file": "Send exactly one of: file, bundle, records."})
        return attrs
