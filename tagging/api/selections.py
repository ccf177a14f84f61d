"""REST API of the selection builder: count (with per-term counts and a preview), freeze, re-run and diff."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import api
from core.parsers import JSONField

from .. import selectors
from ..models import SetVisibility
from ..selection import services


class RecipeField(JSONField):
    """A selection recipe (see tagging/selection/recipe.py); validated by the selection services."""


class CountSerializer(serializers.Serializer):
    recipe = RecipeField()
    per_term = serializers.BooleanField(default=True)
    preview = serializers.BooleanField(default=True)


class FreezeSerializer(serializers.Serializer):
    recipe = RecipeField()
    name = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=SetVisibility.choices, required=False)


class RerunSerializer(serializers.Serializer):
    version_id = api.IntegerField(required=False, help_text="id of a DataID set version made by freezing a selection")
    dataid_set = api.IntegerField(required=False, help_text="or: the id of the set ...")
    version = api.IntegerField(required=False, help_text="... and its version number (default: latest)")

    def validate(self, attrs):
        if "version_id" not in attrs and "dataid_set" not in attrs:
            raise serializers.ValidationError({"version_id": ["Give version_id, or dataid_set (and version)."]})
        return attrs


def _recipe(request: Request) -> dict:
    # The recipe itself, or {"recipe": ...}: the CLI sends a recipe file as it is.
    data = request.data
    return data if isinstance(data, dict) and "recipe" in data else {"recipe": data}


class SelectionCountView(APIView):
    """How many data IDs a recipe selects, how many are left after each term, and the first ones."""

    @extend_schema(request=CountSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        serializer = CountSerializer(data=_recipe(request))
        serializer.is_valid(raise_exception=True)
        return Response(services.selection_count(user=request.user, **serializer.validated_data))


class SelectionFreezeView(APIView):
    """Store the selection as a DataID set whose provenance records the recipe (staff only)."""

    @extend_schema(request=FreezeSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        serializer = FreezeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.selection_freeze(user=request.user, **serializer.validated_data)
        return Response(
            {
                "dataid_set_id": version.dataid_set_id,
                "name": version.dataid_set.name,
                "version": version.number,
                "version_id": version.pk,
                "count": version.count,
                "dimensions": version.dimensions,
                "source": version.source,
                "url": request.build_absolute_uri(reverse("tagging:set", args=[version.dataid_set_id]))
                + f"?version={version.number}",
            },
            status=status.HTTP_201_CREATED,
        )


class SelectionRerunView(APIView):
    """Run a frozen selection's recipe again and compare with the frozen set: added and removed data IDs."""

    @extend_schema(request=RerunSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        serializer = RerunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version_id = data.get("version_id")
        if version_id is None:
            dataid_set = selectors.access_dataidset(request.user, data["dataid_set"])
            version_id = selectors.dataidset_version(dataid_set=dataid_set, number=data.get("version")).pk
        return Response(services.selection_rerun(user=request.user, version_id=version_id))
