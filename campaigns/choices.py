"""Enumerations of the campaigns app."""

from __future__ import annotations

from django.db import models


class CampaignType(models.TextChoices):
    DRP = "drp", "Data release processing"
    MINI_DRP = "mini-drp", "Mini-DRP"
    CALIBRATION = "calibration", "Calibration"
    TEMPLATE = "template", "Template generation"
    BIWEEKLY = "biweekly", "Bi-weekly"
    DEVELOPER = "developer", "Developer"
    COMMISSIONING = "commissioning", "Commissioning"
    ADHOC = "adhoc", "Ad hoc"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public (every logged-in user)"
    STAFF = "staff", "Staff only"
    PRIVATE = "private", "Private (owner, collaborators, shared)"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Which status a person may move a campaign to from each status. The executor
# (issue "Execution") moves campaigns through the same table.
STATUS_TRANSITIONS: dict[str, set[str]] = {
    CampaignStatus.DRAFT: {CampaignStatus.READY, CampaignStatus.CANCELLED},
    CampaignStatus.READY: {CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.CANCELLED},
    CampaignStatus.RUNNING: {
        CampaignStatus.PAUSED,
        CampaignStatus.SUCCEEDED,
        CampaignStatus.FAILED,
        CampaignStatus.CANCELLED,
    },
    CampaignStatus.PAUSED: {CampaignStatus.RUNNING, CampaignStatus.CANCELLED},
    CampaignStatus.FAILED: {CampaignStatus.RUNNING, CampaignStatus.CANCELLED},
    CampaignStatus.SUCCEEDED: set(),
    CampaignStatus.CANCELLED: {CampaignStatus.DRAFT},
}


class GroupStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    READY = "ready", "Ready"
    PREFLIGHT = "preflight", "Preflight"
    SUBMITTING = "submitting", "Submitting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ACCEPTED = "accepted", "Accepted"
    CANCELLED = "cancelled", "Cancelled"


GROUP_DONE_STATES = {GroupStatus.SUCCEEDED, GroupStatus.ACCEPTED}
# A group in one of these states has a worker (or a WMS) busy with it.
GROUP_ACTIVE_STATES = {GroupStatus.PREFLIGHT, GroupStatus.SUBMITTING, GroupStatus.RUNNING}
# Nothing more happens to a group in one of these states unless a person acts.
GROUP_STOPPED_STATES = {GroupStatus.SUCCEEDED, GroupStatus.ACCEPTED, GroupStatus.FAILED, GroupStatus.CANCELLED}


class CoverageState(models.TextChoices):
    """What the exposure mirror could say about the exposures a group covers (campaigns.coverage)."""

    RECORDED = "recorded", "Recorded from the mirror"
    UNKNOWN = "unknown", "Not answerable from the mirror"


class StepStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SubmissionKind(models.TextChoices):
    SUBMIT = "submit", "Submit"
    RETRY = "retry", "Retry (everything again, fresh run)"
    RESCUE = "rescue", "Rescue (skip what the previous run produced)"


class SubmissionState(models.TextChoices):
    QUEUED = "queued", "Queued"
    PREFLIGHT = "preflight", "Preflight"
    SUBMITTING = "submitting", "Submitting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    LOST = "lost", "Worker lost"
    CANCELLED = "cancelled", "Cancelled"


SUBMISSION_OPEN_STATES = {
    SubmissionState.QUEUED,
    SubmissionState.PREFLIGHT,
    SubmissionState.SUBMITTING,
    SubmissionState.RUNNING,
}


class ErrorAction(models.TextChoices):
    AUTO_RETRY = "auto-retry", "Retry automatically"
    REVIEW = "review", "Stop for a person to review"
    FAIL = "fail", "Fail the group"
    PAUSE = "pause", "Fail the group and pause the campaign"


class StepHold(models.TextChoices):
    """Why a step awaits approval (``Step.hold_kind``): what a person is asked to decide."""

    NONE = "", "Not held"
    APPROVAL = "approval", "The step requires approval"
    QUALITY_GATE = "quality_gate", "A quality gate of a step it depends on failed"


class Attention(models.TextChoices):
    """What needs a person (campaigns.selectors_attention): one kind per item of the inbox."""

    APPROVAL = "approval", "Step awaits approval"
    QUALITY_GATE = "quality_gate", "Quality gate failed"
    FAILED_GROUP = "failed_group", "Failed group"
    REVIEW = "review", "Failed group to review"
    PAUSED = "paused", "Paused by the executor"


class SplitBy(models.TextChoices):
    NIGHT = "night", "One group per night (day_obs)"
    EXPOSURE = "exposure", "Groups of at most max_size exposures"
    VISIT = "visit", "Groups of at most max_size visits"
    DETECTOR = "detector", "Groups of at most max_size detectors"
    BAND = "band", "One group per band"
    TRACT = "tract", "One group per tract of a skymap (optionally cut into groups of max_size patches)"
    LIST = "list", "Named groups, each with its own where clause"
    DATAID_SET = "dataid_set", "Groups of at most max_size data IDs of a DataID set"


class HistoryAction(models.TextChoices):
    CREATE = "create", "Created"
    EDIT = "edit", "Edited"
    STATUS = "status", "Status changed"
    ATTACHMENT = "attachment", "Attachment added"
    ATTACHMENT_DELETE = "attachment-delete", "Attachment removed"
    ARCHIVE = "archive", "Archived"
    UNARCHIVE = "unarchive", "Restored"
    SHARE = "share", "Sharing changed"
    LAUNCH = "launch", "Launched"
    APPROVE = "approve", "Step approved"
    EXECUTION = "execution", "Execution"
    SCHEDULE = "schedule", "Schedule"


class WmsPlugin(models.TextChoices):
    PARSL = "parsl", "Parsl (local)"
    HTCONDOR = "htcondor", "HTCondor"
    PANDA = "panda", "PanDA"


class NotificationEvent(models.TextChoices):
    GROUP_FAILED = "group_failed", "A group failed"
    STEP_AWAITING_APPROVAL = "step_awaiting_approval", "A step awaits approval"
    CAMPAIGN_FINISHED = "campaign_finished", "The campaign finished (succeeded, or stopped failed)"
    QUALITY_GATE_FAILED = "quality_gate_failed", "A quality gate failed (the steps after it await approval)"
    CAMPAIGN_PAUSED = "campaign_paused", "The executor paused the campaign (an error rule asked for it)"


class NotificationChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Web hook"


class NotificationState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
