"""Where Butler repos may be: the one check every registration of a repo location goes through.

An administrator lists the allowed roots in ``CM_BUTLER_REPO_ROOTS`` (settings), each with its scheme:
a local directory (``/data/butler`` or ``file:///data/butler``), ``s3://bucket/prefix``,
``gs://bucket/prefix``, ``https://host[:port]/prefix`` (or ``http://`` if an administrator writes it).
A location is allowed only if it is under one of them, compared segment by segment: same scheme, same
bucket or host, and a path that starts with the root's path. The check looks at the text first and
refuses what is not under a root without touching anything (so ``/etc``, ``/proc`` or an arbitrary
web server are never read); for a local path that passes, symbolic links are then resolved and the real
path must still be under the root's real path. Every refusal says the same thing whether or not the
location exists, so the answer cannot be used to probe the file system.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

#: Schemes a root may have. ``file`` covers plain absolute paths too.
ROOT_SCHEMES = ("file", "s3", "gs", "https", "http")
_BUCKET_SCHEMES = ("s3", "gs")


@dataclass(frozen=True)
class RepoRoot:
    """One allowed root: its scheme, bucket or host (empty for files) and path."""

    scheme: str
    netloc: str
    path: PurePosixPath
    real: PurePosixPath  # a local root with its symbolic links resolved (the same path otherwise)
    text: str

    def __str__(self) -> str:
        return self.text


def _clean_path(raw: str, *, url: bool) -> PurePosixPath | None:
    """The path as segments, or None if it could escape (``..``, control characters, not absolute).

    The path of a URL is percent-decoded first (as lsst.resources does), so ``%2e%2e`` is ``..``.
    """
    if any(ch in raw for ch in "\x00\r\n\t"):
        return None
    decoded = unquote(raw) if url else raw
    if decoded != raw and ("%" in decoded or "\\" in decoded):  # double encoding or Windows separators
        return None
    if not decoded.startswith("/"):
        return None
    parts = [p for p in decoded.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return PurePosixPath("/", *parts)


def _split(text: str) -> tuple[str, str, PurePosixPath] | None:
    """(scheme, netloc, path) of a location or root, or None if it is not a form we accept."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("/"):  # a plain local path
        path = _clean_path(text, url=False)
        return ("file", "", path) if path is not None else None
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ROOT_SCHEMES or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    netloc = parts.netloc.lower()
    if scheme == "file":
        if netloc not in ("", "localhost"):
            return None
        netloc = ""
    elif not netloc:
        return None
    path = _clean_path(parts.path or "/", url=True)
    if path is None:
        return None
    return scheme, netloc, path


def parse_roots(values: Iterable[str]) -> list[RepoRoot]:
    """The configured roots; a root that is not a form we accept stops the start-up with a clear error."""
    roots: list[RepoRoot] = []
    for value in values:
        split = _split(value)
        if split is None:
            raise ImproperlyConfigured(
                f"CM_BUTLER_REPO_ROOTS: {value!r} is not an allowed root. Use an absolute path or file:///path, "
                "s3://bucket/prefix, gs://bucket/prefix or https://host/prefix."
            )
        scheme, netloc, path = split
        if scheme == "file" and path == PurePosixPath("/"):
            raise ImproperlyConfigured("CM_BUTLER_REPO_ROOTS: '/' would allow every file; name the repos' directory.")
        real = PurePosixPath(os.path.realpath(path)) if scheme == "file" else path
        roots.append(RepoRoot(scheme=scheme, netloc=netloc, path=path, real=real, text=value.strip()))
    return roots


def configured_roots() -> list[RepoRoot]:
    return parse_roots(settings.CM_BUTLER_REPO_ROOTS)


def _refusal(location: str, roots: list[RepoRoot], field: str | None) -> ValidationError:
    # One message for every refusal (missing, forbidden, escaping by link or by ".."): it never says
    # whether the location exists.
    if not roots:
        allowed = "no root is configured (an administrator sets CM_BUTLER_REPO_ROOTS)"
    else:
        allowed = "allowed: " + ", ".join(str(r) for r in roots)
    error = ValidationError(
        f"{location[:200]!r} is not under an allowed Butler repo root ({allowed}).", code="repo_location"
    )
    return ValidationError({field: error}) if field else error


def check_repo_location(location: str, roots: list[RepoRoot] | None = None, *, field: str | None = None) -> str:
    """Return ``location`` (stripped) if it is under a configured root, else raise ``ValidationError``
    (about ``field`` if given).

    Nothing is read unless the text is under a root; then only the symbolic links of a local path are
    followed, to refuse a link leading out of its root.
    """
    roots = configured_roots() if roots is None else roots
    text = (location or "").strip()
    split = _split(text)
    if split is None:
        raise _refusal(text, roots, field)
    scheme, netloc, path = split
    for root in roots:
        if root.scheme != scheme or root.netloc != netloc:
            continue
        if not (path.is_relative_to(root.path) or path.is_relative_to(root.real)):
            continue
        if scheme == "file" and not PurePosixPath(os.path.realpath(path)).is_relative_to(root.real):
            continue  # a symbolic link on the way leads out of the root
        return text
    raise _refusal(text, roots, field)


__all__ = [
    "ROOT_SCHEMES",
    "RepoRoot",
    "check_repo_location",
    "configured_roots",
    "parse_roots",
]
