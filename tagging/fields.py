"""A typed array column: a PostgreSQL array (``bigint[]``, ``integer[]``, ``text[]``), JSON text elsewhere."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

ARRAY_BASES = ("bigint", "integer", "text")


class ArrayColumn(models.Field):
    """One dimension's values for a block of data IDs.

    On PostgreSQL a native typed array, so SQL can ``unnest`` it and psycopg reads it as a list; on
    other databases (SQLite, for ``make run``) the same list as JSON text."""

    description = "A typed array (PostgreSQL) or a JSON list (other databases)"

    def __init__(self, *args: Any, base: str = "bigint", **kwargs: Any):
        if base not in ARRAY_BASES:
            raise ValueError(f"base must be one of {ARRAY_BASES}")
        self.base = base
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["base"] = self.base
        return name, path, args, kwargs

    def db_type(self, connection) -> str:
        return f"{self.base}[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value, expression, connection):
        if value is None or connection.vendor == "postgresql":
            return value
        return json.loads(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        values = value.tolist() if hasattr(value, "tolist") else list(value)
        return values if connection.vendor == "postgresql" else json.dumps(values)
