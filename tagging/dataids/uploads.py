"""Turn an uploaded file (web form or API) into an ``UploadSource`` the service can stream."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from django.core.files.uploadedfile import UploadedFile

from ..services.dataids import UploadSource
from .readers import ReadError, guess_format


@contextlib.contextmanager
def upload_source(
    upload: UploadedFile, *, fmt: str = "", dimensions: list[str] | None = None
) -> Iterator[UploadSource]:
    """Yields a source for ``upload``; columnar formats get a file on disk for astropy, removed afterwards."""
    name = upload.name or "upload"
    try:
        kind = guess_format(name, fmt or None)
    except ReadError:
        kind = None  # the service reports it with the file name
    if kind in (None, "json", "csv"):
        upload.seek(0)
        yield UploadSource(
            kind="file", filename=name, format=fmt or None, stream=upload, size=upload.size, dimensions=dimensions
        )
        return
    if hasattr(upload, "temporary_file_path"):
        yield UploadSource(
            kind="file",
            filename=name,
            format=fmt or None,
            path=upload.temporary_file_path(),
            size=upload.size,
            dimensions=dimensions,
        )
        return
    handle, path = tempfile.mkstemp(suffix="." + kind)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield UploadSource(
            kind="file", filename=name, format=fmt or None, path=path, size=upload.size, dimensions=dimensions
        )
    finally:
        os.unlink(path)
