"""REST API for campaigns: thin views over the same services and selectors as the web pages."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import Pagination
from core.parsers import FormParser, JSONParser, MultiPartParser, TextYAMLParser, YAMLTextParser
from core.schema import paginated

from .. import selectors, services
from ..filtersets import CampaignFilterSet
from ..models import CHANGE, VIEW, Campaign
from ..yaml_io import campaign_to_yaml
from .serializers import (
    AttachmentSerializer,
    AttachmentUploadSerializer,
    CampaignDetailSerializer,
    CampaignListSerializer,
    CampaignWriteSerializer,
    CloneSerializer,
    HistoryEntrySerializer,
    ImportSerializer,
    ShareSerializer,
    StatusSerializer,
    StepDetailSerializer,
)


def _detail(request: Request, campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
    campaign = selectors.access_campaign(request.user, campaign.pk, VIEW)
    return Response(CampaignDetailSerializer(campaign, context={"request": request}).data, status=code)


class CampaignViewSet(viewsets.GenericViewSet):
    """Campaigns. DELETE archives; nothing is ever deleted."""

    filterset_class = CampaignFilterSet
    pagination_class = Pagination
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    serializer_class = CampaignDetailSerializer
    # For the schema generator only; every read goes through the selectors (the permission gate).
    queryset = Campaign.objects.none()

    @extend_schema(responses=CampaignListSerializer(many=True))
    @paginated
    def list(self, request: Request) -> Response:
        qs = selectors.campaign_list(user=request.user, filters=request.query_params)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(CampaignListSerializer(page, many=True).data)

    @extend_schema(request=CampaignWriteSerializer, responses={201: CampaignDetailSerializer})
    def create(self, request: Request) -> Response:
        serializer = CampaignWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        comment = data.pop("comment", "")
        data.pop("version", None)
        campaign = services.campaign_create(user=request.user, data=data, comment=comment)
        return _detail(request, campaign, status.HTTP_201_CREATED)

    @extend_schema(responses=CampaignDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return _detail(request, selectors.access_campaign(request.user, pk, VIEW))

    @extend_schema(request=CampaignWriteSerializer, responses={200: CampaignDetailSerializer, 409: OpenApiTypes.OBJECT})
    def partial_update(self, request: Request, pk: str) -> Response:
        selectors.access_campaign(request.user, pk, CHANGE)
        serializer = CampaignWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        comment = data.pop("comment", "")
        if "version" not in data:
            raise ValidationError({"version": ["Send the version your edit is based on."]})
        version = data.pop("version")
        campaign = services.campaign_update(
            user=request.user, campaign_id=int(pk), version=version, data=data, comment=comment
        )
        return _detail(request, campaign)

    @extend_schema(request=CampaignWriteSerializer, responses={200: CampaignDetailSerializer, 409: OpenApiTypes.OBJECT})
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(
        parameters=[OpenApiParameter("comment", str, description="Recorded in the history.")],
        responses={204: None},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        services.campaign_archive(
            user=request.user, campaign_id=int(pk), archived=True, comment=request.query_params.get("comment", "")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=CloneSerializer, responses={201: CampaignDetailSerializer})
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, pk: str) -> Response:
        selectors.access_campaign(request.user, pk, VIEW)  # 404 before any complaint about the body
        serializer = CloneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_clone(user=request.user, campaign_id=int(pk), **serializer.validated_data)
        return _detail(request, campaign, status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.OBJECT})  # a YAML mapping
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponse:
        campaign = selectors.access_campaign(request.user, pk, VIEW)
        response = HttpResponse(
            campaign_to_yaml(campaign, redact=not selectors.campaign_can_change(request.user, campaign)),
            content_type="application/yaml; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{campaign.name}.yaml"'
        return response

    @extend_schema(
        request={"application/yaml": OpenApiTypes.STR, "multipart/form-data": ImportSerializer},
        responses={201: CampaignDetailSerializer},
        description="Create a campaign from YAML: send the YAML as the body (Content-Type: application/yaml) "
        "or upload it as the multipart field 'file'.",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[YAMLTextParser, TextYAMLParser, MultiPartParser, FormParser, JSONParser],
    )
    def import_yaml(self, request: Request) -> Response:
        if isinstance(request.data, str):
            text: str | bytes = request.data
        elif request.data.get("file") is not None:
            upload = request.data["file"]
            from django.conf import settings

            if upload.size > settings.CM_YAML_MAX_BYTES:
                raise ValidationError({"file": [f"The file is larger than {settings.CM_YAML_MAX_BYTES} bytes."]})
            text = upload.read()
        elif request.data.get("yaml"):
            text = request.data["yaml"]
        else:
            raise ValidationError({"yaml": ["Send YAML as the body (application/yaml) or as the upload field 'file'."]})
        campaign = services.campaign_import(user=request.user, text=text)
        return _detail(request, campaign, status.HTTP_201_CREATED)

    @extend_schema(responses=StepDetailSerializer(many=True))
    @action(detail=True, methods=["get"])
    def steps(self, request: Request, pk: str) -> Response:
        campaign = selectors.access_campaign(request.user, pk, VIEW)
        return Response(StepDetailSerializer(selectors.campaign_steps(campaign=campaign), many=True).data)

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    @paginated
    def history(self, request: Request, pk: str) -> Response:
        campaign = selectors.access_campaign(request.user, pk, VIEW)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.campaign_history(campaign=campaign), request, view=self)
        redact = not selectors.campaign_can_change(request.user, campaign)
        return paginator.get_paginated_response(
            HistoryEntrySerializer(page, many=True, context={"redact": redact}).data
        )

    @extend_schema(methods=["GET"], responses=AttachmentSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: AttachmentSerializer},
    )
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser])
    def attachments(self, request: Request, pk: str) -> Response:
        if request.method == "GET":
            campaign = selectors.access_campaign(request.user, pk, VIEW)
            return Response(AttachmentSerializer(selectors.campaign_attachments(campaign=campaign), many=True).data)
        selectors.access_campaign(request.user, pk, CHANGE)
        serializer = AttachmentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        attachment = services.attachment_add(
            user=request.user,
            campaign_id=int(pk),
            upload=data["file"],
            description=data["description"],
            comment=data["comment"],
        )
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(
        detail=True,
        methods=["get", "delete"],
        url_path=r"attachments/(?P<attachment_id>[0-9]{1,19})",
        url_name="attachment-download",
    )
    def attachment(self, request: Request, pk: str, attachment_id: str):
        if request.method == "DELETE":
            services.attachment_delete(user=request.user, campaign_id=int(pk), attachment_id=int(attachment_id))
            return Response(status=status.HTTP_204_NO_CONTENT)
        attachment = selectors.attachment_for_download(
            user=request.user, campaign_id=int(pk), attachment_id=int(attachment_id)
        )
        return attachment_response(attachment)

    @extend_schema(request=StatusSerializer, responses=CampaignDetailSerializer)
    @action(detail=True, methods=["post"])
    def status(self, request: Request, pk: str) -> Response:
        selectors.access_campaign(request.user, pk, CHANGE)
        serializer = StatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_set_status(user=request.user, campaign_id=int(pk), **serializer.validated_data)
        return _detail(request, campaign)

    @extend_schema(request=ShareSerializer, responses=CampaignDetailSerializer)
    @action(detail=True, methods=["post"])
    def share(self, request: Request, pk: str) -> Response:
        selectors.access_campaign(request.user, pk, CHANGE)
        serializer = ShareSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = services.campaign_share(
            user=request.user,
            campaign_id=int(pk),
            username=data["username"] or None,
            group=data["group"] or None,
            permission=data["permission"],
            grant=data["grant"],
        )
        return _detail(request, campaign)

    @extend_schema(
        request=None,
        responses=inline_serializer("RestoreResponse", {"archived": serializers.BooleanField()}),
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        campaign = services.campaign_archive(user=request.user, campaign_id=int(pk), archived=False)
        return Response({"archived": campaign.archived})

    # --- execution -------------------------------------------------------------------------------

    def _run_action(self, request: Request, pk: str, service) -> Response:
        from .execution import CommentSerializer

        selectors.access_campaign(request.user, pk, CHANGE)
        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = service(user=request.user, campaign_id=int(pk), comment=serializer.validated_data["comment"])
        return _detail(request, campaign, status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=inline_serializer("LaunchRequest", {"comment": serializers.CharField(required=False)}),
        responses={202: CampaignDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str) -> Response:
        """Plan the groups of every step and start the steps that depend on nothing."""
        from ..execution.services import campaign_launch

        return self._run_action(request, pk, campaign_launch)

    @extend_schema(
        request=inline_serializer("PauseRequest", {"comment": serializers.CharField(required=False)}),
        responses={202: CampaignDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        """No new submissions; running groups go on."""
        from ..execution.services import campaign_pause

        return self._run_action(request, pk, campaign_pause)

    @extend_schema(
        request=inline_serializer("ResumeRequest", {"comment": serializers.CharField(required=False)}),
        responses={202: CampaignDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        from ..execution.services import campaign_resume

        return self._run_action(request, pk, campaign_resume)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def plan(self, request: Request, pk: str) -> Response:
        """The plan: before launch, what launch would do (each step's groups, their data selection, estimated
        quanta, the check of its split); once launched, each group's frozen where and data-ID tables with its
        own estimate and the quanta that ran. Writes nothing."""
        from ..execution.plan import campaign_plan

        return Response(campaign_plan(user=request.user, campaign_id=int(pk)).to_dict())

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="run-status")
    def run_status(self, request: Request, pk: str) -> Response:
        """Steps with their groups and quanta counts, the campaign's progress and its failures by rule and task."""
        from .execution import StepStatusSerializer

        campaign = selectors.access_campaign(request.user, pk, VIEW)
        steps = (
            campaign.steps.prefetch_related("depends_on", "groups").select_related("approved_by").order_by("position")
        )
        return Response(
            {
                "campaign": campaign.name,
                "status": campaign.status,
                "version": campaign.version,
                "progress": selectors.campaign_progress(campaign=campaign),
                "steps": StepStatusSerializer(steps, many=True).data,
                "failures": selectors.campaign_failures(campaign=campaign),
            }
        )


def attachment_response(attachment) -> FileResponse:
    """Always a download with a neutral type: an attachment is never rendered or executed by the browser."""
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.original_name,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
