"""Serializers only check shapes and render output; rules live in campaigns.definition and services."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from core import api
from core.parsers import JSONField

from ..choices import CampaignStatus, CampaignType, Visibility
from ..definition import BPS_FIELDS, NOTIFY_FIELDS, redact_changes, redact_notify
from ..history_text import describe
from ..models import Attachment, Campaign, Group, HistoryEntry, Step
from ..selectors_attention import campaign_attention


class LinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.CharField()


class BpsSerializer(serializers.Serializer):
    compute_site = serializers.CharField(required=False, allow_blank=True)
    wms = serializers.CharField(required=False, allow_blank=True, help_text="parsl, htcondor or panda")
    request_memory = api.IntegerField(required=False, help_text="MB")
    request_cpus = api.IntegerField(required=False)
    extra = serializers.DictField(required=False, help_text="Other BPS submit-file options.")


class NotifySerializer(serializers.Serializer):
    emails = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    webhook = serializers.CharField(required=False, allow_blank=True, help_text="Slack-compatible web hook URL")
    events = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="group_failed, step_awaiting_approval, campaign_finished (default: all)",
    )


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    pipeline_subset = serializers.CharField(required=False, allow_blank=True, default="")
    depends_on = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    requires_approval = serializers.BooleanField(required=False, default=False)
    where = serializers.CharField(
        required=False, allow_blank=True, help_text="A Butler 'where' ANDed to the campaign's data query for this step."
    )
    split = JSONField(
        required=False,
        help_text='How the step is cut into groups, e.g. {"by": "night"}, {"by": "visit", "max_size": 20}, '
        '{"by": "tract", "skymap": "hsc_rings_v1"}, {"by": "list", "groups": [{"name": "a", "where": "..."}]}, '
        '{"by": "dataid_set", "dataid_set": "NAME", "max_size": 1000} (default: by night).',
    )
    quality_gates = serializers.ListField(child=JSONField(), required=False, help_text='e.g. ["psf_fwhm median < 1.1"]')
    metric_input = JSONField(
        required=False, help_text='e.g. {"step": "step1", "metric": "psf_fwhm", "op": "<", "threshold": 1.2}'
    )


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name", "position", "status", "data_query", "created", "updated"]


class StepDetailSerializer(serializers.ModelSerializer):
    depends_on = serializers.SerializerMethodField()
    groups = GroupSerializer(many=True, read_only=True)

    class Meta:
        model = Step
        fields = [
            "id", "name", "position", "pipeline_subset", "depends_on", "requires_approval", "where", "split",
            "quality_gates", "metric_input", "groups",
        ]  # fmt: skip

    def get_depends_on(self, step: Step) -> list[str]:
        return [d.name for d in step.depends_on.all()]


class CampaignWriteSerializer(serializers.Serializer):
    """The fields a client may send. ``version`` is required on update (optimistic concurrency)."""

    name = serializers.CharField(required=False)
    campaign_type = serializers.ChoiceField(choices=CampaignType.choices, required=False)
    reason = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    owner = serializers.CharField(required=False, help_text="username")
    collaborators = serializers.ListField(child=serializers.CharField(), required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    butler_repo = serializers.CharField(required=False, help_text="label of a configured Butler repo")
    pipeline = serializers.CharField(required=False)
    input_collections = serializers.ListField(child=serializers.CharField(), required=False)
    data_query = serializers.CharField(required=False, allow_blank=True)
    input_selection = JSONField(
        required=False, help_text='a frozen selection the inputs are limited to: {"dataid_set": NAME, "version": N}'
    )
    include_sets = JSONField(
        required=False,
        help_text='DataID sets the inputs must all be in: [{"dataid_set": NAME, "version": N}, ...] or ["NAME@vN"]',
    )
    exclude_sets = JSONField(
        required=False, help_text='DataID sets whose data IDs are left out: [{"dataid_set": NAME, "version": N}, ...]'
    )
    output_collection = serializers.CharField(required=False, allow_blank=True)
    bps = BpsSerializer(required=False)
    scope = serializers.CharField(required=False, allow_blank=True)
    links = LinkSerializer(many=True, required=False)
    notify = NotifySerializer(required=False)
    steps = StepSerializer(many=True, required=False)
    version = api.IntegerField(required=False, help_text="Required for updates: the version you edited.")
    comment = serializers.CharField(required=False, allow_blank=True, help_text="Recorded in the history.")

    def to_internal_value(self, data):
        # Unknown keys are an error, not silently dropped: a typo must not lose an edit.
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: [f"Unknown field {key!r}."] for key in unknown})
            # Nested serializers drop unknown keys too: name them with the definition's paths instead.
            nested = {}
            if isinstance(data.get("bps"), dict):
                nested.update({f"bps.{k}": "bps" for k in data["bps"] if k not in BPS_FIELDS})
            if isinstance(data.get("notify"), dict):
                nested.update({f"notify.{k}": "notify" for k in data["notify"] if k not in NOTIFY_FIELDS})
            for list_key, child in (("links", LinkSerializer), ("steps", StepSerializer)):
                if isinstance(data.get(list_key), list):
                    allowed = set(child().fields)
                    for i, item in enumerate(data[list_key]):
                        if isinstance(item, dict):
                            nested.update({f"{list_key}[{i}].{k}": list_key for k in item if k not in allowed})
            if nested:
                raise serializers.ValidationError({path: ["Unknown key."] for path in nested})
        value = super().to_internal_value(data)
        # Only what the client sent; bps keeps only sent keys (no invented defaults).
        if "bps" in value and hasattr(data, "get") and isinstance(data.get("bps"), dict):
            value["bps"] = {k: v for k, v in value["bps"].items() if k in data["bps"] or k not in BPS_FIELDS}
        return value


class CampaignListSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    butler_repo = serializers.CharField(source="butler_repo_id")
    url = serializers.SerializerMethodField()
    group_count = serializers.IntegerField(read_only=True)
    groups_done = serializers.IntegerField(read_only=True)
    needs_action = serializers.SerializerMethodField(
        help_text="What waits for a person, counted by kind (approval, quality_gate, failed_group, review, "
        "paused); empty when nothing does. The same counts as the inbox (GET /api/v1/inbox/)."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "campaign_type",
            "status",
            "visibility",
            "owner",
            "butler_repo",
            "reason",
            "created",
            "updated",
            "archived",
            "version",
            "group_count",
            "groups_done",
            "needs_action",
            "url",
        ]

    def get_needs_action(self, campaign: Campaign) -> dict[str, int]:
        return campaign_attention(campaign).counts  # counted by campaign_list's own query

    def get_url(self, campaign: Campaign) -> str:
        return reverse("api:campaign-detail", args=[campaign.pk])


class CampaignDetailSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    definer = serializers.CharField(source="definer.username")
    collaborators = serializers.SerializerMethodField()
    notify = serializers.SerializerMethodField()
    butler_repo = serializers.CharField(source="butler_repo_id")
    steps = StepDetailSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()
    can_edit = serializers.SerializerMethodField()
    attachment_count = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "campaign_type",
            "reason",
            "description",
            "definer",
            "owner",
            "collaborators",
            "visibility",
            "status",
            "butler_repo",
            "pipeline",
            "input_collections",
            "data_query",
            "input_selection",
            "include_sets",
            "exclude_sets",
            "output_collection",
            "bps",
            "scope",
            "links",
            "notify",
            "created",
            "updated",
            "archived",
            "version",
            "steps",
            "progress",
            "can_edit",
            "attachment_count",
        ]

    def get_notify(self, campaign: Campaign) -> dict:
        from ..selectors import campaign_can_change

        if campaign_can_change(self.context["request"].user, campaign):
            return campaign.notify
        return redact_notify(campaign.notify)

    def get_collaborators(self, campaign: Campaign) -> list[str]:
        return sorted(u.username for u in campaign.collaborators.all())

    def get_progress(self, campaign: Campaign) -> dict:
        from ..selectors import campaign_progress

        return campaign_progress(campaign=campaign)

    def get_can_edit(self, campaign: Campaign) -> bool:
        from ..selectors import campaign_can_change

        return campaign_can_change(self.context["request"].user, campaign)

    def get_attachment_count(self, campaign: Campaign) -> int:
        return campaign.attachments.count()


class HistoryEntrySerializer(serializers.ModelSerializer):
    """``context["redact"]``: hide web hook addresses (for people who may only view the campaign)."""

    actor = serializers.SerializerMethodField()
    changes = serializers.SerializerMethodField()
    lines = serializers.SerializerMethodField(
        help_text='The changes in words, one line each ("Step step2: waiting → awaiting approval"), as the page '
        "shows them."
    )

    class Meta:
        model = HistoryEntry
        fields = ["id", "at", "actor", "action", "version", "changes", "lines", "comment"]

    def get_changes(self, entry: HistoryEntry) -> dict:
        return redact_changes(entry.changes) if self.context.get("redact") else entry.changes

    def get_lines(self, entry: HistoryEntry) -> list[str]:
        return [
            f"{line.label}: {line.new}" if entry.action == "create" else f"{line.label}: {line.old} → {line.new}"
            for line in describe(self.get_changes(entry))
        ]

    def get_actor(self, entry: HistoryEntry) -> str | None:
        return entry.actor.username if entry.actor else None


class AttachmentSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.CharField(source="uploaded_by.username")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "id",
            "original_name",
            "size",
            "sha256",
            "content_type",
            "description",
            "uploaded_by",
            "uploaded",
            "download_url",
        ]

    def get_download_url(self, attachment: Attachment) -> str:
        return reverse("api:campaign-attachment-download", args=[attachment.campaign_id, attachment.pk])


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    description = serializers.CharField(required=False, allow_blank=True, default="")
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class CloneSerializer(serializers.Serializer):
    name = serializers.CharField()
    output_collection = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="the copy's output collection (default: derived from its name, never the source's)",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CampaignStatus.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    version = api.IntegerField(required=False)


class ShareSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=True, default="")
    group = serializers.CharField(required=False, allow_blank=True, default="")
    permission = serializers.ChoiceField(choices=[("view", "view"), ("change", "change")], default="view")
    grant = serializers.BooleanField(default=True)


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(required=False)
    yaml = serializers.CharField(required=False)
