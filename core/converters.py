"""URL path converters shared by every app's pages.

``<id:pk>`` is ``<int:pk>`` bounded to what a database id can be (a signed 64-bit integer): a longer number is
no match, so the page answers 404 instead of reaching the database with a number it cannot hold.
"""

from __future__ import annotations

from django.urls import register_converter

ID_MAX = 2**63 - 1
ID_REGEX = r"[0-9]{1,19}"  # the digits of an id; values above ID_MAX are refused by IdConverter.to_python


class IdConverter:
    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > ID_MAX:
            raise ValueError("beyond 64 bits")  # no match: the resolver goes on and answers 404
        return number

    def to_url(self, value: int | str) -> str:
        return str(int(value))


def register() -> None:
    register_converter(IdConverter, "id")
