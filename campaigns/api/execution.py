"""REST API of the executor: launch, pause, resume, approve, retry, rescue, accept, cancel, error rules."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors
from ..execution import services as execution
from ..models import CHANGE, VIEW, ErrorRule, Group, GroupTransition, QuantumError, Step, Submission


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class RequiredCommentSerializer(serializers.Serializer):
    comment = serializers.CharField(help_text="Required: why (kept in the history).")


class SubmissionSerializer(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "number", "kind", "state", "run_collection", "output_collection", "skip_existing_in",
            "submit_dir", "wms", "compute_site", "wms_run_id", "bps_run_name", "quanta_total", "quanta_succeeded",
            "quanta_failed", "quanta_running", "quanta_pending", "quanta_blocked", "by_task", "error", "worker_name",
            "requested_by", "created", "started", "submitted", "finished", "last_progress",
        ]  # fmt: skip

    def get_requested_by(self, obj: Submission) -> str | None:
        return obj.requested_by.username if obj.requested_by else None


class QuantumErrorSerializer(serializers.ModelSerializer):
    attempt = serializers.IntegerField(source="submission.number")
    rule = serializers.SerializerMethodField()

    class Meta:
        model = QuantumError
        fields = [
            "id",
            "attempt",
            "task_label",
            "data_id",
            "exception_type",
            "message",
            "log_location",
            "log_dataset",
            "rule",
            "action",
        ]

    def get_rule(self, obj: QuantumError) -> str | None:
        return str(obj.rule) if obj.rule else None


class TransitionSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = GroupTransition
        fields = ["id", "from_status", "to_status", "actor", "reason", "at"]

    def get_actor(self, obj: GroupTransition) -> str | None:
        return obj.actor.username if obj.actor else None


class GroupDetailSerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="step.campaign.name")
    step = serializers.CharField(source="step.name")
    submissions = serializers.SerializerMethodField()
    errors = serializers.SerializerMethodField()
    transitions = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = [
            "id", "campaign", "step", "name", "position", "status", "where", "data_id_table", "output_collection",
            "run_collection", "attempts", "quanta_total", "quanta_succeeded", "quanta_failed", "quanta_running",
            "quanta_pending", "needs_review", "error", "last_progress", "submissions", "errors", "transitions",
        ]  # fmt: skip

    def get_submissions(self, obj: Group) -> list[dict]:
        return SubmissionSerializer(selectors.group_submissions(group=obj), many=True).data

    def get_errors(self, obj: Group) -> list[dict]:
        return QuantumErrorSerializer(selectors.group_errors(group=obj)[:200], many=True).data

    def get_transitions(self, obj: Group) -> list[dict]:
        return TransitionSerializer(selectors.group_transitions(group=obj), many=True).data


class StepStatusSerializer(serializers.ModelSerializer):
    depends_on = serializers.SerializerMethodField()
    approved_by = serializers.SerializerMethodField()
    groups = serializers.SerializerMethodField()

    class Meta:
        model = Step
        fields = [
            "id", "name", "position", "pipeline_subset", "depends_on", "requires_approval", "where", "split", "status",
            "approved_by", "approved_at", "approval_comment", "output_collection", "error", "groups",
        ]  # fmt: skip

    def get_depends_on(self, obj: Step) -> list[str]:
        return [d.name for d in obj.depends_on.all()]

    def get_approved_by(self, obj: Step) -> str | None:
        return obj.approved_by.username if obj.approved_by else None

    def get_groups(self, obj: Step) -> list[dict]:
        return [
            {
                "id": g.pk,
                "name": g.name,
                "status": g.status,
                "attempts": g.attempts,
                "run_collection": g.run_collection,
                "quanta_total": g.quanta_total,
                "quanta_succeeded": g.quanta_succeeded,
                "quanta_failed": g.quanta_failed,
                "quanta_running": g.quanta_running,
                "quanta_pending": g.quanta_pending,
                "needs_review": g.needs_review,
            }
            for g in obj.groups.all()
        ]


class ErrorRuleSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    match_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ErrorRule
        fields = [
            "id", "task_label", "message_regex", "action", "max_retries", "enabled", "position", "comment",
            "created_by", "created", "updated", "match_count",
        ]  # fmt: skip
        read_only_fields = ["created_by", "created", "updated", "match_count"]


class StepViewSet(viewsets.GenericViewSet):
    """Steps of campaigns: status, groups and approval."""

    queryset = Step.objects.none()
    serializer_class = StepStatusSerializer

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(StepStatusSerializer(selectors.access_step(request.user, pk, VIEW)).data)

    @extend_schema(request=RequiredCommentSerializer, responses=StepStatusSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Let a step that waits for approval start (a comment is required)."""
        selectors.access_step(request.user, pk, CHANGE)
        serializer = RequiredCommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        step = execution.step_approve(user=request.user, step_id=int(pk), comment=serializer.validated_data["comment"])
        return Response(StepStatusSerializer(Step.objects.get(pk=step.pk)).data)


class GroupViewSet(viewsets.GenericViewSet):
    """Groups: their submissions (attempts), failed quanta, transitions, and operator actions."""

    queryset = Group.objects.none()
    serializer_class = GroupDetailSerializer

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(GroupDetailSerializer(selectors.access_group(request.user, pk, VIEW)).data)

    def _act(self, request: Request, pk: str, service, *, comment_required: bool = False) -> Response:
        selectors.access_group(request.user, pk, CHANGE)
        serializer = (RequiredCommentSerializer if comment_required else CommentSerializer)(data=request.data)
        serializer.is_valid(raise_exception=True)
        service(user=request.user, group_id=int(pk), comment=serializer.validated_data["comment"])
        return Response(GroupDetailSerializer(Group.objects.get(pk=pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=CommentSerializer, responses={202: GroupDetailSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """A new attempt from scratch, in a fresh RUN collection."""
        return self._act(request, pk, execution.group_retry)

    @extend_schema(request=CommentSerializer, responses={202: GroupDetailSerializer})
    @action(detail=True, methods=["post"])
    def rescue(self, request: Request, pk: str) -> Response:
        """A new attempt that skips what the previous attempt already produced (--skip-existing-in)."""
        return self._act(request, pk, execution.group_rescue)

    @extend_schema(request=RequiredCommentSerializer, responses={202: GroupDetailSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        """Count a failed group as done (a comment is required)."""
        return self._act(request, pk, execution.group_accept, comment_required=True)

    @extend_schema(request=CommentSerializer, responses={202: GroupDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, execution.group_cancel)


class ErrorRuleViewSet(viewsets.GenericViewSet):
    """Error rules: a task label and a message pattern mapped to auto-retry, review or fail. Staff edit them."""

    queryset = ErrorRule.objects.none()
    serializer_class = ErrorRuleSerializer

    def list(self, request: Request) -> Response:
        return Response(ErrorRuleSerializer(selectors.error_rules(), many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ErrorRuleSerializer(selectors.access_error_rule(pk)).data)

    def create(self, request: Request) -> Response:
        serializer = ErrorRuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = execution.error_rule_create(user=request.user, **serializer.validated_data)
        return Response(
            ErrorRuleSerializer(selectors.error_rules().get(pk=rule.pk)).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request: Request, pk: str) -> Response:
        rule = selectors.access_error_rule(pk)  # a change to nothing is a 404, whatever the body says
        serializer = ErrorRuleSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = execution.error_rule_update(user=request.user, rule_id=rule.pk, **serializer.validated_data)
        return Response(ErrorRuleSerializer(selectors.error_rules().get(pk=rule.pk)).data)

    def destroy(self, request: Request, pk: str) -> Response:
        execution.error_rule_delete(user=request.user, rule_id=selectors.access_error_rule(pk).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
