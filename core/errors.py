"""Errors raised by services and understood by both the web views and the API."""

from __future__ import annotations


class ConflictError(Exception):
    """An edit was based on a stale version of an object."""

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.extra = extra
