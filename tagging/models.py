"""Models of the tagging app. Butler repos live here because every selection is made against one."""

from __future__ import annotations

import uuid

from django.core.validators import RegexValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .fields import ArrayColumn
from .repo_locations import check_repo_location

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

    def clean(self) -> None:
        # The one check of a repo location (admin form, API, services and commands all call full_clean):
        # under a root an administrator allowed (CM_BUTLER_REPO_ROOTS), refused before anything is read.
        self.config_uri = check_repo_location(self.config_uri, field="config_uri")


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
        from core.sharing import restrict_shared

        return restrict_shared(
            self,
            user,
            action,
            user_perm_model=DataIdSetUserObjectPermission,
            group_perm_model=DataIdSetGroupObjectPermission,
        )


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
    SELECTION = "selection", "Frozen selection"


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


class DataIdColumns(models.Model):
    """A data ID's primary keys in typed columns (``DATA_ID_COLUMNS``), so that SQL joins and filters them:
    set rows, tag rows, bad-data records and metric values all hold their data ID this way."""

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
        abstract = True


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


class DataIdRow(DataIdColumns):
    """One data ID of one set version, primary keys only: a read-only view over :class:`DataIdChunk`
    (PostgreSQL ``unnest`` of the chunk arrays, SQLite ``json_each``), so that SQL can join a set's data
    IDs with other tables and the ORM can filter them. ``id`` orders a version's data IDs as stored.
    Writes go to the chunks (``tagging.dataids.storage``); readers of whole versions use it too."""

    id = models.BigIntegerField(primary_key=True)
    version = models.ForeignKey(
        DataIdSetVersion, on_delete=models.DO_NOTHING, related_name="rows", db_constraint=False, db_index=False
    )

    class Meta:
        managed = False
        db_table = "tagging_dataidrow"
        ordering = ["version", "pk"]

    def __str__(self) -> str:
        return ", ".join(f"{c}={getattr(self, c)}" for c in DATA_ID_COLUMNS if getattr(self, c) is not None)


# ---------------------------------------------------------------------------------------------------------------
# Tag tables: user tables with a declared, migration-free schema whose rows are keyed by data IDs.
# ---------------------------------------------------------------------------------------------------------------


class Polarity(models.TextChoices):
    SELECT = "select", "Select (use these)"
    REJECT = "reject", "Reject (do not use these)"
    NEUTRAL = "neutral", "Neutral (information only)"


class ColumnType(models.TextChoices):
    INT = "int", "Integer"
    FLOAT = "float", "Float"
    STRING = "string", "String"
    BOOL = "bool", "Boolean"
    ENUM = "enum", "Enumeration"
    DATETIME = "datetime", "Date and time"


class TagTableQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> TagTableQuerySet:
        """The one permission gate for tag tables: what ``user`` may ``view`` or ``change``."""
        from core.sharing import restrict_shared

        return restrict_shared(
            self,
            user,
            action,
            user_perm_model=TagTableUserObjectPermission,
            group_perm_model=TagTableGroupObjectPermission,
        )


class TagTable(models.Model):
    """A user table keyed by data IDs, with a declared schema (see TagColumn) and a polarity.

    The schema lives in rows, not in the database schema: adding, renaming or retiring a column
    needs no migration. Row values are stored by the column's stable ``key``, so a rename rewrites nothing.
    """

    name = models.CharField(max_length=100, validators=[label_validator])
    repo = models.ForeignKey(ButlerRepo, on_delete=models.PROTECT, related_name="tag_tables")
    owner = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="tag_tables")
    description = models.TextField(blank=True)
    purpose = models.TextField(blank=True, help_text="What the rows are for, e.g. 'wonky for PSF work'.")
    polarity = models.CharField(max_length=10, choices=Polarity.choices, default=Polarity.NEUTRAL)
    key_dimensions = models.JSONField(
        help_text="required dimension names of the row keys, e.g. ['instrument', 'exposure'] or "
        "['instrument', 'visit', 'detector'] or ['skymap', 'tract', 'patch']"
    )
    visibility = models.CharField(max_length=10, choices=SetVisibility.choices, default=SetVisibility.PRIVATE)
    row_count = models.PositiveBigIntegerField(default=0)
    next_column_key = models.PositiveIntegerField(default=1, help_text="source of stable column keys c1, c2, ...")
    version = models.PositiveIntegerField(default=1, help_text="optimistic concurrency for schema and metadata edits")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TagTableQuerySet.as_manager()

    class Meta:
        ordering = ["-updated", "name"]
        constraints = [models.UniqueConstraint(fields=["repo", "name"], name="tagtable_unique_name_per_repo")]

    def __str__(self) -> str:
        return f"{self.repo_id}:{self.name}"


class TagTableUserObjectPermission(UserObjectPermissionBase):
    """Per-user sharing of one tag table (view or change; django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(TagTable, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.user} {self.permission.codename} {self.content_object_id}"


class TagTableGroupObjectPermission(GroupObjectPermissionBase):
    """Per-group sharing of one tag table (view or change; django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(TagTable, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.group} {self.permission.codename} {self.content_object_id}"


class TagColumn(models.Model):
    """One declared column of a tag table. ``key`` never changes; ``name`` may be renamed; retired columns keep values."""

    table = models.ForeignKey(TagTable, on_delete=models.CASCADE, related_name="columns")
    key = models.CharField(max_length=16, help_text="stable storage key in TagRow.values, e.g. 'c3'")
    name = models.CharField(
        max_length=64,
        validators=[
            RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "Use letters, digits and '_', not starting with a digit.")
        ],
    )
    type = models.CharField(max_length=10, choices=ColumnType.choices)
    enum_values = models.JSONField(default=list, blank=True, help_text="allowed values of an enum column")
    unit = models.CharField(max_length=32, blank=True)
    description = models.TextField(blank=True)
    required = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    retired = models.DateTimeField(null=True, blank=True, help_text="when it was retired; its values are kept")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["table", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["table", "key"], name="tagcolumn_unique_key"),
            models.UniqueConstraint(fields=["table", "name"], name="tagcolumn_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.table_id}.{self.name} ({self.type})"


class TagRow(DataIdColumns):
    """One row of a tag table: a data ID (primary keys in typed, indexed columns) and its values by column key."""

    table = models.ForeignKey(TagTable, on_delete=models.CASCADE, related_name="rows", db_index=False)
    key = models.CharField(
        max_length=200, help_text="canonical data ID, e.g. 'instrument=DemoCam,exposure=2025112100156'"
    )
    values = models.JSONField(default=dict, help_text="values by TagColumn.key")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["table", "key"]
        constraints = [models.UniqueConstraint(fields=["table", "key"], name="tagrow_unique_key")]
        indexes = [
            models.Index(fields=["table", "exposure", "detector"], name="tagrow_exp_det"),
            models.Index(fields=["table", "visit", "detector"], name="tagrow_visit_det"),
            models.Index(fields=["table", "tract", "patch"], name="tagrow_tract_patch"),
            models.Index(fields=["exposure"], name="tagrow_exposure"),
        ]

    def __str__(self) -> str:
        return f"{self.table_id}:{self.key}"


class RowAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"


class TagRowChange(models.Model):
    """Every change of a tag row: who, when, old and new values (by column key), and why. Survives the row."""

    table = models.ForeignKey(TagTable, on_delete=models.CASCADE, related_name="row_changes")
    row_key = models.CharField(max_length=200)
    action = models.CharField(max_length=10, choices=RowAction.choices)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    user = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-pk"]
        indexes = [models.Index(fields=["table", "row_key", "-timestamp"], name="tagrowchange_row")]

    def __str__(self) -> str:
        return f"{self.table_id}:{self.row_key} {self.action} by {self.user_id}"


class TagTableEvent(models.Model):
    """A change of a tag table itself: schema (add, rename, retire a column, unit, description), metadata, sharing."""

    table = models.ForeignKey(TagTable, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32, help_text="e.g. created, column_added, column_renamed, column_retired")
    column = models.ForeignKey(TagColumn, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    detail = models.JSONField(default=dict, blank=True, help_text="old and new values")
    reason = models.TextField(blank=True)
    user = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-pk"]

    def __str__(self) -> str:
        return f"{self.table_id} {self.action} by {self.user_id}"


# ---------------------------------------------------------------------------------------------------------------
# Exposure flags: append-only human notes on one exposure, in the shape of Rubin's exposure log.
# ---------------------------------------------------------------------------------------------------------------


class ExposureFlagValue(models.TextChoices):
    NONE = "none", "None"
    JUNK = "junk", "Junk"
    QUESTIONABLE = "questionable", "Questionable"


class SharedRecordQuerySet(models.QuerySet):
    """Permission gate of shared, non-private records (flags, bad data): every logged-in user views, staff change."""

    def restrict(self, user, action: str = "view"):
        from core.roles import is_staff_member

        if action not in ("view", "change"):
            raise ValueError(f"Unknown action {action!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if action == "change" and not is_staff_member(user):
            return self.none()
        return self


class ExposureFlag(models.Model):
    """One exposure-log message. Editing makes a new message whose parent is the old one (which is invalidated);
    deleting only sets ``is_valid`` false. Field names follow Rubin's exposure log."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repo = models.ForeignKey(
        ButlerRepo,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flags",
        help_text="repo it was made in",
    )
    instrument = models.CharField(max_length=64)
    obs_id = models.CharField(max_length=64)
    day_obs = models.IntegerField()
    seq_num = models.IntegerField()
    exposure = models.BigIntegerField(null=True, blank=True, help_text="exposure id (day_obs * 100000 + seq_num)")
    message_text = models.TextField()
    level = models.IntegerField(default=20, help_text="Python logging level: 10 debug ... 40 error")
    tags = models.JSONField(default=list, blank=True)
    urls = models.JSONField(default=list, blank=True)
    user_id = models.CharField(max_length=150, help_text="who wrote it (user name, as in the exposure log)")
    user_agent = models.CharField(max_length=150, blank=True)
    author = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="local user, if any"
    )
    is_human = models.BooleanField(default=True)
    is_valid = models.BooleanField(default=True)
    exposure_flag = models.CharField(max_length=16, choices=ExposureFlagValue.choices, default=ExposureFlagValue.NONE)
    date_added = models.DateTimeField()
    date_invalidated = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")

    objects = SharedRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-date_added", "id"]
        indexes = [
            models.Index(fields=["instrument", "obs_id"], name="flag_obs_id"),
            models.Index(fields=["instrument", "day_obs", "seq_num"], name="flag_day_seq"),
            models.Index(fields=["exposure", "is_valid"], name="flag_exposure_valid"),
            models.Index(fields=["exposure_flag", "is_valid"], name="flag_value_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.obs_id} {self.exposure_flag}: {self.message_text[:40]}"


# ---------------------------------------------------------------------------------------------------------------
# Bad-data register: datasets or data IDs found bad during processing, followed until explained or fixed.
# ---------------------------------------------------------------------------------------------------------------


class BadDataStatus(models.TextChoices):
    OPEN = "open", "Open"
    EXPLAINED = "explained", "Explained"
    FIXED = "fixed", "Fixed"


class BadDataSource(models.TextChoices):
    MANUAL = "manual", "Recorded by hand"
    FAILURE = "failure", "From a failed quantum"


class BadDataRecord(DataIdColumns):
    """A data ID and/or a dataset found bad, its status (open, explained, fixed), explanation and links.

    The data ID sits in typed columns (as in DataIdRow) plus its canonical ``key``, so a selection can
    exclude it with plain SQL. A record made from a failed quantum keeps a copy of that error.
    """

    repo = models.ForeignKey(ButlerRepo, on_delete=models.PROTECT, related_name="bad_data")
    summary = models.CharField(max_length=200, help_text="What is wrong, in one line.")
    key = models.CharField(
        max_length=200, blank=True, help_text="canonical data ID, e.g. 'instrument=DemoCam,exposure=2025112100156'"
    )
    dimensions = models.JSONField(default=list, blank=True, help_text="required dimensions of the data ID")
    dataset_type = models.CharField(max_length=200, blank=True)
    dataset_id = models.UUIDField(null=True, blank=True)
    collection = models.CharField(max_length=512, blank=True)
    status = models.CharField(max_length=10, choices=BadDataStatus.choices, default=BadDataStatus.OPEN)
    explanation = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True, help_text="URLs: tickets, notebooks, plots")
    source = models.CharField(max_length=10, choices=BadDataSource.choices, default=BadDataSource.MANUAL)
    quantum_error = models.ForeignKey(
        "campaigns.QuantumError", on_delete=models.SET_NULL, null=True, blank=True, related_name="bad_data"
    )
    source_detail = models.JSONField(
        default=dict, blank=True, help_text="copy of the failure: campaign, group, attempt, task, exception, message"
    )
    created_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = SharedRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-updated", "-pk"]
        indexes = [
            models.Index(fields=["repo", "status"], name="baddata_repo_status"),
            models.Index(fields=["repo", "exposure", "detector"], name="baddata_exp_det"),
            models.Index(fields=["repo", "visit", "detector"], name="baddata_visit_det"),
        ]

    def __str__(self) -> str:
        return f"{self.key or self.dataset_id or self.pk} ({self.status})"


class BadDataEvent(models.Model):
    """One change of a bad-data record: created, status change or edit; who, when, what and why."""

    record = models.ForeignKey(BadDataRecord, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, help_text="created, status or edited")
    from_status = models.CharField(max_length=10, choices=BadDataStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=BadDataStatus.choices, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [old, new]}")
    comment = models.TextField(blank=True)
    user = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.record_id} {self.action} by {self.user_id}"
