"""Models of the tagging app. Butler repos live here because every selection is made against one."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .fields import ArrayColumn

label_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "Use letters, digits, '-', '_' and '.', starting with a letter or digit."
)


class ButlerRepo(models.Model):
    """A configured LSST Butler data repository, known to users by its label (e.g. ``demo``)."""

    label = models.CharField(max_length=64, unique=True, validators=[label_validator])
    config_uri = models.CharField(max_length=1024, help_text="Path or URI of the repository root or its butler.yaml.")
    description = models.TextField(blank=True)
    default_instrument = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    mirror_synced = models.DateTimeField(
        null=True, blank=True, help_text="last copy of exposures/detectors from the registry"
    )

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class Detector(models.Model):
    """A detector of an instrument in a Butler repo (mirror of the registry's ``detector`` records)."""

    repo = models.ForeignKey(ButlerRepo, on_delete=models.CASCADE, related_name="detectors")
    instrument = models.CharField(max_length=64)
    detector_id = models.IntegerField()
    full_name = models.CharField(max_length=64)
    raft = models.CharField(max_length=32, blank=True)
    purpose = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["repo", "instrument", "detector_id"]
        constraints = [
            models.UniqueConstraint(fields=["repo", "instrument", "detector_id"], name="detector_unique_id"),
            models.UniqueConstraint(fields=["repo", "instrument", "full_name"], name="detector_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} {self.detector_id} ({self.full_name})"


class Exposure(models.Model):
    """An exposure in a Butler repo: a mirror of the registry's ``exposure`` records.

    The registry stays the truth; the mirror makes browsing, validating
    millions of data IDs and joining tags, flags and metrics plain indexed SQL.
    """

    repo = models.ForeignKey(ButlerRepo, on_delete=models.CASCADE, related_name="exposures")
    instrument = models.CharField(max_length=64)
    exposure_id = models.BigIntegerField()
    obs_id = models.CharField(max_length=64)
    day_obs = models.IntegerField()
    seq_num = models.IntegerField()
    physical_filter = models.CharField(max_length=64)
    band = models.CharField(max_length=16, blank=True)
    observation_type = models.CharField(max_length=32, blank=True)
    observation_reason = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=128, blank=True)
    science_program = models.CharField(max_length=128, blank=True)
    exposure_time = models.FloatField(null=True, blank=True)
    ra = models.FloatField(null=True, blank=True, help_text="tracking RA, degrees")
    dec = models.FloatField(null=True, blank=True, help_text="tracking Dec, degrees")
    zenith_angle = models.FloatField(null=True, blank=True)
    azimuth = models.FloatField(null=True, blank=True)
    begin = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    visit_id = models.BigIntegerField(null=True, blank=True, help_text="the one-to-one visit, if defined")
    synced = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["repo", "instrument", "exposure_id"]
        constraints = [
            models.UniqueConstraint(fields=["repo", "instrument", "exposure_id"], name="exposure_unique_id"),
        ]
        indexes = [
            models.Index(fields=["repo", "instrument", "obs_id"]),
            models.Index(fields=["repo", "instrument", "day_obs", "seq_num"]),
            models.Index(fields=["repo", "band"]),
            models.Index(fields=["repo", "observation_type"]),
            models.Index(fields=["repo", "instrument", "visit_id"]),
        ]

    def __str__(self) -> str:
        return self.obs_id


class SetVisibility(models.TextChoices):
    PRIVATE = "private", "Private (owner and those it is shared with)"
    PUBLIC = "public", "Public (every logged-in user)"


class DataIdSetQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> DataIdSetQuerySet:
        """The one permission gate for DataID sets: what ``user`` may ``view`` or ``change``."""
        from django.db.models import Q

        from core.roles import is_staff_member
        from core.sharing import shared_with_q

        if action not in ("view", "change"):
            raise ValueError(f"Unknown action {action!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        if action == "change" and not is_staff_member(user):
            return self.none()
        mine = Q(owner=user) | shared_with_q(
            user, f"{action}_dataidset", DataIdSetUserObjectPermission, DataIdSetGroupObjectPermission
        )
        if action == "change":
            return self.filter(mine)
        return self.filter(mine | Q(visibility=SetVisibility.PUBLIC))


class DataIdSet(models.Model):
    """A named, persistent, sharable set of data IDs of one dimension group in one Butler repo.

    Its content lives in immutable versions: changing a set makes version n+1 and keeps n.
    """

    name = models.CharField(max_length=100, validators=[label_validator])
    repo = models.ForeignKey(ButlerRepo, on_delete=models.PROTECT, related_name="dataid_sets")
    owner = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="dataid_sets")
    description = models.TextField(blank=True)
    reason = models.TextField(help_text="Why this set exists.")
    visibility = models.CharField(max_length=10, choices=SetVisibility.choices, default=SetVisibility.PRIVATE)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = DataIdSetQuerySet.as_manager()

    class Meta:
        ordering = ["-updated", "name"]
        constraints = [models.UniqueConstraint(fields=["repo", "name"], name="dataidset_unique_name_per_repo")]

    def __str__(self) -> str:
        return f"{self.repo_id}:{self.name}"


class DataIdSetUserObjectPermission(UserObjectPermissionBase):
    """Per-user sharing of one DataID set (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(DataIdSet, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.user} {self.permission.codename} {self.content_object_id}"


class DataIdSetGroupObjectPermission(GroupObjectPermissionBase):
    """Per-group sharing of one DataID set (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(DataIdSet, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.group} {self.permission.codename} {self.content_object_id}"


class SourceKind(models.TextChoices):
    FILE = "file", "Uploaded file"
    RECORDS = "records", "Records sent by a client"
    QUERY = "query", "Butler query"
    ALGEBRA = "algebra", "Set algebra"


class TagStatus(models.TextChoices):
    NONE = "none", "Not resolved"
    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DataIdSetVersion(models.Model):
    """One immutable version of a DataID set: its dimensions, count, provenance and rows."""

    dataid_set = models.ForeignKey(DataIdSet, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    dimensions = models.JSONField(help_text="required dimension names, e.g. ['instrument', 'exposure', 'detector']")
    count = models.PositiveBigIntegerField(default=0)
    duplicates_removed = models.PositiveBigIntegerField(default=0)
    dropped_count = models.PositiveBigIntegerField(default=0)
    dropped_report = models.JSONField(default=list, blank=True, help_text="first dropped data IDs with the reason")
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source = models.JSONField(default=dict, help_text="file name and sha256, query text, or parent sets")
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    # Resolution into a TAGGED collection (a Celery task fills these in).
    tag_status = models.CharField(max_length=10, choices=TagStatus.choices, default=TagStatus.NONE)
    tag_collection = models.CharField(max_length=512, blank=True)
    tag_dataset_type = models.CharField(max_length=200, blank=True)
    tag_input_collections = models.JSONField(default=list, blank=True)
    tag_found = models.PositiveBigIntegerField(null=True, blank=True)
    tag_missing_count = models.PositiveBigIntegerField(null=True, blank=True)
    tag_missing = models.JSONField(default=list, blank=True, help_text="first data IDs with no dataset")
    tag_error = models.TextField(blank=True)
    tag_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataid_set", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataid_set", "number"], name="dataidset_version_unique")]

    def __str__(self) -> str:
        return f"{self.dataid_set} v{self.number}"


# Columns a stored data ID can use: the primary keys of the dimensions selections are made of.
DATA_ID_COLUMNS = (
    "instrument",
    "exposure",
    "visit",
    "detector",
    "day_obs",
    "band",
    "physical_filter",
    "skymap",
    "tract",
    "patch",
)


class DataIdChunk(models.Model):
    """A block of up to a few thousand data IDs of one set version, stored as one typed array per dimension.

    A version's data IDs are the concatenation of its chunks in ``seq`` order. A chunk holds one
    instrument (a plain column); every other dimension of the version is an array of ``size`` values
    (NULL for the dimensions the version does not have). Storing arrays, not one indexed row per data
    ID, is what lets a million-ID upload cost about as much as a plain ``COPY`` of the rows. The
    ``*_min``/``*_max`` columns (a zone map) find the chunks that may hold an exposure or a visit.
    SQL sees one row per data ID through the ``tagging_dataidrow`` view (:class:`DataIdRow`)."""

    version = models.ForeignKey(DataIdSetVersion, on_delete=models.CASCADE, related_name="chunks", db_index=False)
    seq = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    instrument = models.CharField(max_length=64, null=True, blank=True)
    exposure = ArrayColumn(base="bigint", null=True, blank=True)
    visit = ArrayColumn(base="bigint", null=True, blank=True)
    detector = ArrayColumn(base="integer", null=True, blank=True)
    day_obs = ArrayColumn(base="integer", null=True, blank=True)
    band = ArrayColumn(base="text", null=True, blank=True)
    physical_filter = ArrayColumn(base="text", null=True, blank=True)
    skymap = ArrayColumn(base="text", null=True, blank=True)
    tract = ArrayColumn(base="integer", null=True, blank=True)
    patch = ArrayColumn(base="integer", null=True, blank=True)
    exposure_min = models.BigIntegerField(null=True, blank=True)
    exposure_max = models.BigIntegerField(null=True, blank=True)
    visit_min = models.BigIntegerField(null=True, blank=True)
    visit_max = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["version", "seq"]
        constraints = [models.UniqueConstraint(fields=["version", "seq"], name="dataidchunk_unique_seq")]
        indexes = [
            models.Index(fields=["instrument", "exposure_min", "exposure_max"], name="dataidchunk_exposure_zone"),
            models.Index(fields=["instrument", "visit_min", "visit_max"], name="dataidchunk_visit_zone"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}#{self.seq} ({self.size} data IDs)"


class DataIdRow(models.Model):
    """One data ID of one set version, primary keys only: a read-only view over :class:`DataIdChunk`
    (PostgreSQL ``unnest`` of the chunk arrays, SQLite ``json_each``), so that SQL can join a set's data
    IDs with other tables and the ORM can filter them. ``id`` orders a version's data IDs as stored.
    Writes go to the chunks (``tagging.dataids.storage``); readers of whole versions use it too."""

    id = models.BigIntegerField(primary_key=True)
    version = models.ForeignKey(
        DataIdSetVersion, on_delete=models.DO_NOTHING, related_name="rows", db_constraint=False, db_index=False
    )
    instrument = models.CharField(max_length=64, null=True, blank=True)
    exposure = models.BigIntegerField(null=True, blank=True)
    visit = models.BigIntegerField(null=True, blank=True)
    detector = models.IntegerField(null=True, blank=True)
    day_obs = models.IntegerField(null=True, blank=True)
    band = models.CharField(max_length=16, null=True, blank=True)
    physical_filter = models.CharField(max_length=64, null=True, blank=True)
    skymap = models.CharField(max_length=64, null=True, blank=True)
    tract = models.IntegerField(null=True, blank=True)
    patch = models.IntegerField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "tagging_dataidrow"
        ordering = ["version", "pk"]

    def __str__(self) -> str:
        return ", ".join(f"{c}={getattr(self, c)}" for c in DATA_ID_COLUMNS if getattr(self, c) is not None)
