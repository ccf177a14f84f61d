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

from .choices import (
    CampaignStatus,
    CampaignType,
    CoverageState,
    ErrorAction,
    GroupStatus,
    HistoryAction,
    NotificationChannel,
    NotificationEvent,
    NotificationState,
    StepHold,
    StepStatus,
    SubmissionKind,
    SubmissionState,
    Visibility,
)

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
    input_selection = models.JSONField(
        default=dict,
        blank=True,
        help_text="a frozen selection (DataID set) the inputs are limited to: {'dataid_set': name, 'version': n}",
    )
    include_sets = models.JSONField(
        default=list,
        blank=True,
        help_text="DataID sets the inputs must be in (all of them): [{'dataid_set': name, 'version': n}, ...]",
    )
    exclude_sets = models.JSONField(
        default=list,
        blank=True,
        help_text="DataID sets whose data IDs are left out: [{'dataid_set': name, 'version': n}, ...]",
    )
    output_collection = models.CharField(max_length=512, blank=True)
    bps = models.JSONField(default=dict, blank=True)
    scope = models.TextField(blank=True, help_text="Tracts, nights, exposure ranges, in words.")
    links = models.JSONField(default=list, blank=True)
    notify = models.JSONField(
        default=dict,
        blank=True,
        help_text='Who hears about what: {"emails": [...], "webhook": "https://...", "events": [...]}; empty: nobody.',
    )
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


def default_split() -> dict:
    return {"by": "night"}


class Step(models.Model):
    """A stage of a campaign (a pipeline subset); steps are global synchronization points."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100, validators=[slug_safe])
    position = models.PositiveIntegerField()
    pipeline_subset = models.CharField(max_length=200, blank=True)
    depends_on = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="dependents")
    requires_approval = models.BooleanField(default=False)
    # The loop back (metrics): checked by campaigns.definition, evaluated by metrics.gates when steps finish.
    quality_gates = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"metric": "psf_fwhm", "statistic": "median", "op": "<", "threshold": 1.1}]',
    )
    metric_input = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"step": "step1", "metric": "psf_fwhm", "op": "<", "threshold": 1.2, "per": "visit"}: '
        "only the data IDs whose upstream metric passes.",
    )
    # Part of the definition (checked by campaigns.splits): how the step is cut into groups, and its own where.
    split = models.JSONField(
        default=default_split,
        blank=True,
        help_text='How the step is cut into groups (campaigns.splits): {"by": "night"}, '
        '{"by": "exposure"|"visit"|"detector", "max_size": N}, {"by": "band"}, '
        '{"by": "tract", "skymap": NAME}, {"by": "list", "groups": [{"name": ..., "where": ...}]} or '
        '{"by": "dataid_set", "dataid_set": NAME, "version": N, "max_size": M}.',
    )
    where = models.TextField(
        blank=True, help_text="A Butler 'where' ANDed to the campaign's data query for this step's groups."
    )
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.WAITING)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_comment = models.TextField(blank=True)
    # Why it awaits approval, and since when (the inbox): set when it starts waiting, cleared by the approval.
    hold_kind = models.CharField(max_length=20, choices=StepHold.choices, blank=True, default=StepHold.NONE)
    hold_reason = models.TextField(blank=True)
    hold_since = models.DateTimeField(null=True, blank=True)
    output_collection = models.CharField(
        max_length=512, blank=True, help_text="CHAINED collection over the RUN collections of the step's groups."
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="step_unique_name_per_campaign"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign.name}/{self.name}"

    @property
    def split_text(self) -> str:
        """How the step is cut into groups, in words (``by tract of hsc_rings_v1``)."""
        from .splits import describe

        return describe(self.split)


class Group(models.Model):
    """A slice of a step's data, submitted as one BPS workflow: the blast radius of a failure."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100, validators=[slug_safe])
    position = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=GroupStatus.choices, default=GroupStatus.WAITING)
    data_query = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # Execution (issue "Execution"): written only by campaigns.execution services.
    where = models.TextField(blank=True, help_text="Frozen selection: the campaign's data query AND this slice.")
    data_id_table = models.CharField(max_length=1024, blank=True, help_text="ECSV of data IDs (--data-id-table).")
    output_collection = models.CharField(max_length=512, blank=True, help_text="The group's CHAINED collection.")
    run_collection = models.CharField(max_length=512, blank=True, help_text="RUN collection of the current attempt.")
    attempts = models.PositiveIntegerField(default=0)
    quanta_total = models.PositiveIntegerField(default=0)
    quanta_succeeded = models.PositiveIntegerField(default=0)
    quanta_failed = models.PositiveIntegerField(default=0)
    quanta_running = models.PositiveIntegerField(default=0)
    quanta_pending = models.PositiveIntegerField(default=0)
    last_progress = models.DateTimeField(null=True, blank=True)
    needs_review = models.BooleanField(default=False, help_text="An error rule asked a person to look at a failure.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["step", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["step", "name"], name="group_unique_name_per_step")]

    def __str__(self) -> str:
        return f"{self.step}/{self.name}"


class GroupCoverage(models.Model):
    """Whether the exposures a group covers are recorded (``GroupExposure``), and for which selection.

    The selection is the group's ``where`` and ``data_id_table`` when it was evaluated against the exposure
    mirror: a group whose selection has changed since (a new launch, a frozen metric input) is to be
    evaluated again, its rows are not trusted. ``unknown``: the mirror cannot answer (``reason`` says why)
    and nothing is recorded. Written only by ``campaigns.coverage``."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, primary_key=True, related_name="coverage")
    where = models.TextField(blank=True)
    data_id_table = models.CharField(max_length=1024, blank=True)
    state = models.CharField(max_length=10, choices=CoverageState.choices)
    reason = models.TextField(blank=True)
    exposures = models.PositiveIntegerField(default=0)
    recorded = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group"]

    def __str__(self) -> str:
        return f"{self.group_id}: {self.state} ({self.exposures} exposures)"


class GroupExposure(models.Model):
    """One exposure a group covers (its ``where`` and data-ID tables select it in the mirror): what the
    exposure page reads to list every campaign that processed an exposure, metric values or not."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    instrument = models.CharField(max_length=64)
    exposure = models.BigIntegerField()

    class Meta:
        ordering = ["group", "instrument", "exposure"]
        constraints = [
            models.UniqueConstraint(fields=["group", "instrument", "exposure"], name="groupexposure_unique"),
        ]
        indexes = [models.Index(fields=["instrument", "exposure"], name="groupexposure_exposure")]

    def __str__(self) -> str:
        return f"{self.group_id}: {self.instrument} {self.exposure}"


class Submission(models.Model):
    """One attempt of one group through BPS: what was asked, where it ran, how it ended."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="submissions")
    number = models.PositiveIntegerField(help_text="Attempt number within the group, from 1.")
    kind = models.CharField(max_length=10, choices=SubmissionKind.choices, default=SubmissionKind.SUBMIT)
    state = models.CharField(max_length=12, choices=SubmissionState.choices, default=SubmissionState.QUEUED)
    output_collection = models.CharField(max_length=512, blank=True)
    run_collection = models.CharField(max_length=512)
    skip_existing_in = models.JSONField(default=list, blank=True)
    submit_dir = models.CharField(max_length=1024, blank=True)
    submit_yaml = models.CharField(max_length=1024, blank=True)
    wms = models.CharField(max_length=20, blank=True)
    compute_site = models.CharField(max_length=100, blank=True)
    wms_run_id = models.CharField(max_length=255, blank=True)
    bps_run_name = models.CharField(max_length=255, blank=True)
    quanta_total = models.PositiveIntegerField(default=0)
    quanta_succeeded = models.PositiveIntegerField(default=0)
    quanta_failed = models.PositiveIntegerField(default=0)
    quanta_running = models.PositiveIntegerField(default=0)
    quanta_pending = models.PositiveIntegerField(default=0)
    quanta_blocked = models.PositiveIntegerField(default=0)
    by_task = models.JSONField(
        default=dict,
        blank=True,
        help_text="The BPS report per task (or job label): {label: {total, succeeded, failed, running, pending, "
        "blocked}}; quanta from the Butler (Parsl), jobs from the WMS (HTCondor, PanDA).",
    )
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    worker_name = models.CharField(max_length=255, blank=True, help_text="Celery hostname of the worker.")
    worker_host = models.CharField(max_length=255, blank=True, help_text="socket.gethostname() of the worker.")
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    worker_pid_started = models.FloatField(null=True, blank=True, help_text="Process start time (guards pid reuse).")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requeued = models.PositiveIntegerField(default=0, help_text="Times reconciliation put it back in the queue.")
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    submitted = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    last_progress = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group", "number"]
        constraints = [models.UniqueConstraint(fields=["group", "number"], name="submission_unique_number")]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.group} attempt {self.number} ({self.state})"


class ErrorRule(models.Model):
    """Maps a known failure (task label and message pattern) to what the executor does about it."""

    task_label = models.CharField(max_length=200, blank=True, help_text="Blank: any task.")
    message_regex = models.CharField(
        max_length=1000,
        help_text="Regular expression (RE2 syntax: linear time, no back-references or look-around) searched in the message.",
    )
    action = models.CharField(max_length=12, choices=ErrorAction.choices)
    max_retries = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"{self.task_label or '*'} /{self.message_regex}/ -> {self.action}"


class QuantumError(models.Model):
    """One failed quantum (or job) of a submission, and what the error rules decided."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="quantum_errors")
    task_label = models.CharField(max_length=200)
    data_id = models.JSONField(default=dict, blank=True)
    exception_type = models.CharField(max_length=300, blank=True)
    message = models.TextField(blank=True)
    log_location = models.CharField(max_length=1024, blank=True)
    log_dataset = models.CharField(max_length=1024, blank=True, help_text="URI of the quantum's <task>_log dataset.")
    rule = models.ForeignKey(ErrorRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="matches")
    action = models.CharField(max_length=12, choices=ErrorAction.choices, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["submission", "pk"]

    def __str__(self) -> str:
        return f"{self.task_label} {self.data_id} {self.exception_type}"


class GroupTransition(models.Model):
    """One change of a group's status: from, to, who (null: the executor) and why."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=GroupStatus.choices)
    to_status = models.CharField(max_length=20, choices=GroupStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    submission = models.ForeignKey(Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.group_id}: {self.from_status} -> {self.to_status}"


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


class Notification(models.Model):
    """One message about one event of a campaign to one target (an e-mail address or a web hook).

    Rows are written by ``notification_send`` and delivered by the ``notify`` task, which claims a
    row with a conditional update: running the task twice sends once.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=30, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=10, choices=NotificationChannel.choices)
    target = models.CharField(max_length=1000, help_text="E-mail address or web hook URL.")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    link = models.CharField(max_length=1000, blank=True)
    state = models.CharField(max_length=10, choices=NotificationState.choices, default=NotificationState.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    claimed = models.DateTimeField(null=True, blank=True, help_text="When the current attempt started.")
    sent = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["state"]), models.Index(fields=["campaign", "-created"])]

    def __str__(self) -> str:
        return f"{self.event} -> {self.channel}:{self.target} ({self.state})"


class RecurringCampaign(models.Model):
    """A cron schedule that clones a template campaign with a fresh selection and launches the copy.

    Beat runs it through a django-celery-beat ``PeriodicTask`` kept in step by the recurring services.
    """

    template = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="schedules")
    name_prefix = models.CharField(
        max_length=80,
        unique=True,
        validators=[slug_safe],
        help_text="Each run is named <prefix>-<YYYYMMDD-HHMM> (UTC).",
    )
    cron = models.CharField(max_length=100, help_text="Five fields, UTC: minute hour day-of-month month day-of-week.")
    last_nights = models.PositiveIntegerField(
        default=14, help_text="Select the last N nights that have exposures (exposure.day_obs)."
    )
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    last_run = models.DateTimeField(null=True, blank=True)
    last_campaign = models.ForeignKey(Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_error = models.TextField(blank=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name_prefix"]

    def __str__(self) -> str:
        return f"{self.name_prefix} ({self.cron})"
