"""Serializers of the tagging API: shapes only; rules live in the services."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from core import api

from ..models import ButlerRepo, DataIdSet, DataIdSetVersion, Exposure, SetVisibility


class ButlerRepoSerializer(serializers.ModelSerializer):
    exposure_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ButlerRepo
        fields = [
            "label",
            "config_uri",
            "description",
            "default_instrument",
            "created",
            "mirror_synced",
            "exposure_count",
        ]
        read_only_fields = ["created", "mirror_synced", "exposure_count"]


class ExposureSerializer(serializers.ModelSerializer):
    repo = serializers.CharField(source="repo.label")

    class Meta:
        model = Exposure
        fields = [
            "repo",
            "instrument",
            "exposure_id",
            "obs_id",
            "day_obs",
            "seq_num",
            "physical_filter",
            "band",
            "observation_type",
            "observation_reason",
            "target_name",
            "science_program",
            "exposure_time",
            "ra",
            "dec",
            "zenith_angle",
            "azimuth",
            "begin",
            "end",
            "visit_id",
        ]


class DataIdSetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = DataIdSetVersion
        fields = [
            "id",
            "number",
            "dimensions",
            "count",
            "duplicates_removed",
            "dropped_count",
            "dropped_report",
            "source_kind",
            "source",
            "comment",
            "created_by",
            "created",
            "tag_status",
            "tag_collection",
            "tag_dataset_type",
            "tag_input_collections",
            "tag_found",
            "tag_missing_count",
            "tag_missing",
            "tag_error",
            "tag_updated",
        ]


class DataIdSetSerializer(serializers.ModelSerializer):
    repo = serializers.CharField(source="repo.label")
    owner = serializers.CharField(source="owner.username")
    latest = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = DataIdSet
        fields = [
            "id",
            "name",
            "repo",
            "owner",
            "description",
            "reason",
            "visibility",
            "created",
            "updated",
            "latest",
            "url",
        ]

    def get_latest(self, obj: DataIdSet) -> dict | None:
        version = obj.versions.order_by("-number").first()
        return DataIdSetVersionSerializer(version).data if version else None

    def get_url(self, obj: DataIdSet) -> str:
        return reverse("api:dataidset-detail", args=[obj.pk])


class DataIdSetCreateSerializer(serializers.Serializer):
    """Create a set (or a new version of your set of that name) from a file, a list of data IDs, or a query."""

    name = serializers.CharField()
    repo = serializers.CharField(help_text="label of a Butler repo")
    reason = serializers.CharField(allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(
        choices=SetVisibility.choices,
        required=False,
        help_text="default: private for a new set, unchanged for a new version",
    )
    drop_invalid = serializers.BooleanField(default=False, help_text="store the valid data IDs and report the rest")
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    file = serializers.FileField(required=False, help_text="JSON, CSV, ECSV, VOTable, Parquet or FITS")
    format = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="if the file name does not tell"
    )
    data_ids = serializers.ListField(child=serializers.DictField(), required=False, help_text="data IDs as mappings")
    query = serializers.CharField(required=False, allow_blank=True, default="", help_text="a Butler 'where' expression")
    dimensions = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="for a query, or to declare them"
    )

    def validate(self, attrs):
        given = [k for k in ("file", "data_ids", "query") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError({"file": ["Give exactly one of: file, data_ids, query."]})
        return attrs


class AlgebraParentSerializer(serializers.Serializer):
    set = api.IntegerField(help_text="DataID set id")
    version = api.IntegerField(required=False, help_text="version number (default: latest)")


class AlgebraSerializer(serializers.Serializer):
    operation = serializers.ChoiceField(
        choices=[("union", "union"), ("intersection", "intersection"), ("difference", "difference")]
    )
    parents = AlgebraParentSerializer(many=True)
    name = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=SetVisibility.choices, default=SetVisibility.PRIVATE)


class TagRequestSerializer(serializers.Serializer):
    dataset_type = serializers.CharField(help_text="e.g. raw")
    input_collections = serializers.ListField(child=serializers.CharField())
    collection = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="default u/<you>/dataids/<set>/v<n>"
    )
    version = api.IntegerField(required=False, help_text="version number (default: latest)")


class DataIdSetShareSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=True, default="")
    group = serializers.CharField(required=False, allow_blank=True, default="")
    permission = serializers.ChoiceField(choices=[("view", "view"), ("change", "change")], default="view")
    grant = serializers.BooleanField(default=True)
