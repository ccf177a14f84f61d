"""Serves Plotly's JavaScript bundle from the installed ``plotly`` package as ``vendor/plotly.min.js``.

The pinned Python package ships the matching plotly.js (``plotly/package_data/plotly.min.js``), so there
is no copy in the repository and no CDN: ``runserver`` and the test live server find it through this
finder, and ``collectstatic`` copies it like any other static file.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_PATH = "vendor/plotly.min.js"


def plotly_bundle() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        from django.core.checks import Error

        if not plotly_bundle().is_file():
            return [Error(f"plotly.min.js is missing from the plotly package ({plotly_bundle()}).", id="metrics.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path == PLOTLY_PATH and plotly_bundle().is_file():
            found = str(plotly_bundle())
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=str(plotly_bundle().parent))
        storage.prefix = "vendor"  # type: ignore[attr-defined]  # collectstatic writes it as vendor/plotly.min.js
        yield "plotly.min.js", storage
