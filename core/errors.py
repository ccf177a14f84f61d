"""Errors raised by services and understood by both the web views and the API."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ConflictError(Exception):
    """An edit was based on a stale version of an object."""

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.extra = extra


class InputError(Exception):
    """Bad input described item by item: a message, the first problems (where, key, message) and their total."""

    def __init__(self, message: str, problems: list[dict] | None = None, total: int | None = None, field: str = ""):
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.total = total if total is not None else len(self.problems)
        self.field = field

    def as_payload(self) -> dict:
        payload: dict = {"detail": self.message, "error_total": self.total, "errors": self.problems}
        if self.field:
            payload[self.field] = [self.message]
        return payload


def validation_error_text(error: ValidationError) -> str:
    """A ValidationError as one line for a page: ``field: messages; ...`` (form-wide messages without a name)."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in error.message_dict.items()
        )
    return " ".join(error.messages)
