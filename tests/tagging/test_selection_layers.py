"""The selection code stays below the metrics app: tagging never imports metrics (not even inside a function);
the metric term and metric strata reach it only through the registry (``tagging.selection.terms``)."""

from __future__ import annotations

import ast
from pathlib import Path

import tagging
from tagging.selection.terms import stratifier, term_kind

ROOT = Path(tagging.__file__).resolve().parent


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_module_of_tagging_imports_the_metrics_app():
    offending = [
        f"{path.relative_to(ROOT.parent)}:{line} imports {name}"
        for path in sorted(ROOT.rglob("*.py"))
        if "migrations" not in path.parts
        for line, name in _imports(path)
        if name == "metrics" or name.startswith("metrics.")
    ]
    assert offending == []


def test_the_metrics_app_registers_its_term_and_strata_in_the_registry():
    kind = term_kind("metric")
    assert kind is not None and kind.compile.__module__ == "metrics.selection"
    provide = stratifier("metric")
    assert provide is not None and provide.__module__ == "metrics.selection"
    assert term_kind("where") is not None and term_kind("where").compile.__module__ == "tagging.selection.kinds"
