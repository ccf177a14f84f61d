"""FilterSets of exposure flags and bad-data records, shared by the pages, the API and the selectors.

Flag filters take the query parameters of Rubin's exposure log (``GET /messages`` of lsst-ts/exposurelog,
``routers/find_messages.py``) with the same meaning, so a client of the exposure log gets the same answers:

- ``instruments``, ``user_ids``, ``user_agents``, ``exposure_flags``: the field is one of the values;
- ``obs_id``, ``message_text``: the field contains the text (case-sensitive, as SQL ``LIKE`` in the log);
- ``min_<f>`` (inclusive) and ``max_<f>`` (exclusive) for ``day_obs``, ``seq_num``, ``level``, ``date_added``
  and ``date_invalidated`` (a row whose field is null matches neither);
- ``tags``: at least one of them; ``exclude_tags``: none of them (tags are compared in lower case, as the log
  lower-cases them); ``urls``: at least one of them (whole URLs);
- ``is_human``, ``is_valid``: ``true``, ``false`` or ``either``; ``is_valid`` defaults to ``true``;
- ``has_date_invalidated``, ``has_parent_id``: ``true`` or ``false``;
- ``order_by``: fields of a message, ``-`` for descending; ``id`` is appended when absent (a repeatable
  order for ``limit``/``offset``); the default is ``id``, as in the log;
- times without a time zone are read as UTC (the log's are TAI, 37 s apart; imports keep them as given).

List parameters are repeated (``?tags=a&tags=b``); a comma separates values too (except in ``urls``). Our own
additions: ``repo``, ``instrument``, ``exposure``, ``day_obs`` and ``seq_num`` (exact). ``site_ids`` is not
taken (one site), and is refused like any unknown parameter.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import StrIndex

from core.filters import IntegerFilter, IsNullFilter, TriStateFilter, ValuesField, ValuesFilter, document_as_list
from core.jsonarrays import json_array_excludes, json_array_overlaps

from .models import BadDataRecord, BadDataStatus, ExposureFlag, ExposureFlagValue
from .services.flags import TAG_RE

# Every field of an exposure-log message we keep (the log's ``site_id`` excepted), and our ``exposure``.
FLAG_ORDER_FIELDS = (
    "id",
    "obs_id",
    "instrument",
    "day_obs",
    "seq_num",
    "message_text",
    "level",
    "tags",
    "urls",
    "user_id",
    "user_agent",
    "is_human",
    "is_valid",
    "exposure_flag",
    "date_added",
    "date_invalidated",
    "parent_id",
    "exposure",
)


class TagsField(ValuesField):
    """Tags as the exposure log takes them: each must be a valid tag (400 naming the bad ones); lower-cased."""

    def to_python(self, value):
        return [tag.lower() for tag in super().to_python(value)]

    def validate(self, value):
        super().validate(value)
        bad = sorted(tag for tag in value if not TAG_RE.match(tag))
        if bad:
            raise forms.ValidationError(
                f"Invalid tags: {bad}. A tag is letters, digits, '_', '-' and '.', starting with a letter or digit."
            )


class TagsFilter(django_filters.Filter):
    """``tags`` (``exclude=False``): at least one of the tags; ``exclude_tags``: none of them."""

    field_class = TagsField

    def __init__(self, *args, exclude: bool = False, **kwargs):
        self.exclude_tags = exclude
        super().__init__(*args, **kwargs)
        document_as_list(self, {"type": "string", "pattern": TAG_RE.pattern})

    def filter(self, qs, value):
        if not value:
            return qs
        check = json_array_excludes if self.exclude_tags else json_array_overlaps
        return qs.filter(check(self.field_name, value, casefold=True))


class UrlsFilter(django_filters.Filter):
    """At least one of the URLs (each compared whole, as the log's ``urls && value``)."""

    field_class = ValuesField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("split", False)  # a URL may hold a comma
        super().__init__(*args, **kwargs)
        document_as_list(self)

    def filter(self, qs, value):
        return qs.filter(json_array_overlaps(self.field_name, value)) if value else qs


class ContainsFilter(django_filters.CharFilter):
    """The field contains the text, case-sensitive on every database (SQLite's ``LIKE`` ignores case, so
    ``contains`` would not): ``strpos``/``instr`` > 0."""

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        return qs.alias(**{f"_{self.field_name}_at": StrIndex(self.field_name, Value(value))}).filter(
            **{f"_{self.field_name}_at__gt": 0}
        )


class FlagFilterSet(django_filters.FilterSet):
    repo = django_filters.CharFilter(field_name="repo__label", label="Butler repo")
    instruments = ValuesFilter(field_name="instrument", label="Instruments")
    instrument = django_filters.CharFilter(field_name="instrument")
    obs_id = ContainsFilter(label="obs_id contains")
    exposure = IntegerFilter(label="Exposure id")
    day_obs = IntegerFilter(label="Night (day_obs)")
    min_day_obs = IntegerFilter(field_name="day_obs", lookup_expr="gte", label="Night from (inclusive)")
    max_day_obs = IntegerFilter(field_name="day_obs", lookup_expr="lt", label="Night before (exclusive)")
    seq_num = IntegerFilter()
    min_seq_num = IntegerFilter(field_name="seq_num", lookup_expr="gte", label="Sequence number from (inclusive)")
    max_seq_num = IntegerFilter(field_name="seq_num", lookup_expr="lt", label="Sequence number before (exclusive)")
    message_text = ContainsFilter(label="Text contains (exact case)")
    min_level = IntegerFilter(field_name="level", lookup_expr="gte", label="Level from (inclusive)")
    max_level = IntegerFilter(field_name="level", lookup_expr="lt", label="Level below (exclusive)")
    tags = TagsFilter(field_name="tags", label="Tags (any of)")
    exclude_tags = TagsFilter(field_name="tags", exclude=True, label="Tags (none of)")
    urls = UrlsFilter(field_name="urls", label="URLs (any of)")
    user_ids = ValuesFilter(field_name="user_id", label="Users")
    user_agents = ValuesFilter(field_name="user_agent", label="User agents")
    exposure_flags = ValuesFilter(field_name="exposure_flag", allowed=tuple(ExposureFlagValue.values), label="Flags")
    is_human = TriStateFilter(field_name="is_human", label="Written by a person")
    is_valid = TriStateFilter(field_name="is_valid", label="Valid (default: true)")
    min_date_added = django_filters.IsoDateTimeFilter(field_name="date_added", lookup_expr="gte")
    max_date_added = django_filters.IsoDateTimeFilter(field_name="date_added", lookup_expr="lt")
    has_date_invalidated = IsNullFilter(field_name="date_invalidated", label="Has been invalidated")
    min_date_invalidated = django_filters.IsoDateTimeFilter(field_name="date_invalidated", lookup_expr="gte")
    max_date_invalidated = django_filters.IsoDateTimeFilter(field_name="date_invalidated", lookup_expr="lt")
    has_parent_id = IsNullFilter(field_name="parent", label="Is an edit")
    order_by = ValuesFilter(method="ordering", allowed=FLAG_ORDER_FIELDS, signed=True, label="Order by")

    class Meta:
        model = ExposureFlag
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        # The exposure log answers valid messages unless asked otherwise.
        if not self.form.cleaned_data.get("is_valid"):
            queryset = queryset.filter(is_valid=True)
        if not self.form.cleaned_data.get("order_by"):
            queryset = queryset.order_by("id")  # the log's default order
        return queryset

    def ordering(self, queryset, name, value):
        if not value:
            return queryset
        keys = list(value)
        if not any(k.lstrip("-") == "id" for k in keys):
            keys.append("id")  # a repeatable order, so limit and offset page through every message once
        # Nulls last ascending and first descending, as PostgreSQL (the log's database) does, on SQLite too.
        return queryset.order_by(
            *(
                F(k[1:].replace("parent_id", "parent")).desc(nulls_first=True)
                if k.startswith("-")
                else F(k.replace("parent_id", "parent")).asc(nulls_last=True)
                for k in keys
            )
        )


class BadDataFilterSet(django_filters.FilterSet):
    repo = django_filters.CharFilter(field_name="repo__label", label="Butler repo")
    status = django_filters.MultipleChoiceFilter(choices=BadDataStatus.choices)
    source = django_filters.CharFilter()
    exposure = IntegerFilter()
    detector = IntegerFilter()
    dataset_type = django_filters.CharFilter()
    q = django_filters.CharFilter(method="search", label="Text")

    class Meta:
        model = BadDataRecord
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(summary__icontains=value)
            | Q(explanation__icontains=value)
            | Q(key__icontains=value)
            | Q(dataset_type__icontains=value)
        )
