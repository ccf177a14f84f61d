"""The campaign database.

Nothing outside ``campaigns/services.py`` calls ``save()`` on these models;
reads that apply permissions go through ``Campaign.objects.restrict()``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group as AuthGroup
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from core.roles import is_staff_member

from .choices import CampaignStatus, CampaignType, GroupStatus, HistoryAction, Visibility

slug_safe = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    "Use only letters, digits, '-', '_' and '.', starting with a letter or digit (no spaces or slashes).",
)

VIEW, CHANGE = "view", "change"


class CampaignQuerySet(models.QuerySet):
    def restrict(self, user, action: str = VIEW) -> CampaignQuerySet:
        """The one permission gate: only the campaigns ``user`` may ``view`` or ``change``."""
        if action not in (VIEW, CHANGE):
            raise ValueError(f"Unknown action {action!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        if action == CHANGE and not is_staff_member(user):
            return self.none()
        codename = f"{action}_campaign"
        group_ids = AuthGroup.objects.filter(user=user).values("pk")
        personal = (
            Q(owner=user)
            | Q(pk__in=Campaign.collaborators.through.objects.filter(user=user).values("campaign_id"))
            | Q(
                pk__in=CampaignUserObjectPermission.objects.filter(user=user, permission__codename=codename).values(
                    "content_object_id"
                )
            )
            | Q(
                pk__in=CampaignGroupObjectPermission.objects.filter(
                    group__in=group_ids, permission__codename=codename
                ).values("content_object_id")
            )
        )
        if action == CHANGE:
            return self.filter(personal)
        visible = Q(visibility=Visibility.PUBLIC) | personal
        if is_staff_member(user):
            visible |= Q(visibility=Visibility.STAFF)
        return self.filter(visible)


class Campaign(models.Model):
    """A pipeline applied to a selection of data, for a reason, by someone."""

    name = models.CharField(max_length=100, unique=True, validators=[slug_safe])
    campaign_type = models.CharField(max_length=20, choices=CampaignType.choices)
    reason = models.TextField(help_text="Why this campaign exists.")
    description = models.TextField(blank=True, help_text="Markdown.")
    definer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="defined_campaigns")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_campaigns")
    collaborators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="collaborating_campaigns")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    status = models.CharField(max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    butler_repo = models.ForeignKey(
        "tagging.ButlerRepo", to_field="label", on_delete=models.PROTECT, related_name="campaigns"
    )
    pipeline = models.CharField(max_length=1024, help_text="URI of a pipeline YAML, optionally '#subset'.")
    input_collections = models.JSONField(default=list, blank=True)
    data_query = models.TextField(blank=True, help_text="A Butler 'where' expression.")
    output_collection = models.CharField(max_length=512, blank=True)
    bps = models.JSONField(default=dict, blank=True)
    scope = models.TextField(blank=True, help_text="Tracts, nights, exposure ranges, in words.")
    links = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    archived = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-updated", "name"]
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["campaign_type"]),
            models.Index(fields=["-updated"]),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignUserObjectPermission(UserObjectPermissionBase):
    """Per-user sharing of one campaign (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Campaign, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.user} {self.permission.codename} {self.content_object_id}"


class CampaignGroupObjectPermission(GroupObjectPermissionBase):
    """Per-group sharing of one campaign (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Campaign, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.group} {self.permission.codename} {self.content_object_id}"


class Step(models.Model):
    """A stage of a campaign (a pipeline subset); steps are global synchronization points."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100, validators=[slug_safe])
    position = models.PositiveIntegerField()
    pipeline_subset = models.CharField(max_length=200, blank=True)
    depends_on = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="dependents")
    requires_approval = models.BooleanField(default=False)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="step_unique_name_per_campaign"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign.name}/{self.name}"


class Group(models.Model):
    """A slice of a step's data, submitted as one BPS workflow: the blast radius of a failure."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100, validators=[slug_safe])
    position = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=GroupStatus.choices, default=GroupStatus.WAITING)
    data_query = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["step", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["step", "name"], name="group_unique_name_per_step")]

    def __str__(self) -> str:
        return f"{self.step}/{self.name}"


def attachment_upload_to(instance: Attachment, filename: str) -> str:
    # The stored name never comes from the user: it cannot be guessed or abused as a path.
    return f"attachments/{instance.campaign_id}/{instance.sha256[:16]}-{instance.uuid_hex}"


class Attachment(models.Model):
    """A file attached to a campaign. Only ever served as a download, never inline."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_upload_to, max_length=300)
    original_name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uuid_hex = models.CharField(max_length=32, unique=True)
    content_type = models.CharField(max_length=100, blank=True)
    description = models.CharField(max_length=300, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded"]

    def __str__(self) -> str:
        return self.original_name


class HistoryEntry(models.Model):
    """One recorded change of a campaign: who, when, which fields from what to what, and why."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="history")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=20, choices=HistoryAction.choices)
    version = models.PositiveIntegerField(help_text="Campaign version after this change.")
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [old, new]}")
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "history entries"
        indexes = [models.Index(fields=["campaign", "-at"])]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.action} v{self.version}"


class WorkerHeartbeat(models.Model):
    """Last time a Celery worker ran the heartbeat task; shown on the status page."""

    hostname = models.CharField(max_length=255, unique=True)
    seen = models.DateTimeField()
    tasks_seen = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-seen"]

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.seen:%Y-%m-%d %H:%M:%S}"
