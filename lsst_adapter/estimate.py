"""Estimating the quanta of a workflow before building its QuantumGraph (the launch plan).

For each task of a pipeline (or subset), the estimate is the number of data IDs of the task's
dimensions that the group's ``where`` (and its data-ID tables, as ``pipetask --data-id-table`` would
join them) selects in the registry. The query joins what the QuantumGraph builder joins: the task's
inputs that already exist in the input collections (e.g. ``raw``) as datasets, so that data IDs without
inputs do not count, and the dimensions of inputs an earlier step will make (e.g. the ``visit`` of a
per-visit summary read by a per-patch task), so that the registry relates them as the builder does (the
spatial join of visits and patches) instead of counting every tract x patch x band. Tasks whose inputs are
made by an earlier step are still an upper bound: a failed upstream quantum removes some.

The same query, returning data IDs instead of a count, is what checks that the groups of a split cover a
step's data exactly once (:func:`task_data_ids`). One registry query per task and group; no ``pipetask``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .registry import RepoError, open_butler

__all__ = [
    "DataIdTable",
    "PipelineShape",
    "TooManyDataIds",
    "count_quanta",
    "pipeline_labels",
    "pipeline_shape",
    "read_data_id_table",
    "task_data_ids",
    "task_outputs",
]


@dataclass
class PipelineShape:
    """The tasks of a pipeline subset: label -> required dimensions, and the inputs that exist."""

    tasks: dict[str, list[str]]
    overall_inputs: list[str] = field(default_factory=list)  # dataset types found in the input collections
    # label -> every dimension of its data IDs, implied ones included (an exposure's band, day_obs, ...)
    names: dict[str, list[str]] = field(default_factory=dict)
    # label -> its (non-prerequisite) inputs: dataset type -> required dimensions
    inputs: dict[str, dict[str, list[str]]] = field(default_factory=dict)


@dataclass
class DataIdTable:
    """Data IDs as ``pipetask --data-id-table`` reads them: columns named by dimensions, one tuple per row."""

    dimensions: list[str]
    rows: list[tuple]
    label: str = ""  # what it is, for messages (a file name, "DataID sets")


class TooManyDataIds(Exception):
    """A data-ID query selected more rows than the caller allows holding in memory."""


def pipeline_labels(pipeline_uri: str) -> list[str]:
    """The task labels of a pipeline (``path#labels``), read without importing its tasks."""
    from lsst.pipe.base import Pipeline

    try:
        return list(Pipeline.from_uri(pipeline_uri).task_labels)
    except Exception as exc:  # pipe_base raises many kinds (bad YAML, unknown subset, ...)
        raise RepoError(f"Cannot read the pipeline {pipeline_uri}: {exc}") from exc


def pipeline_shape(pipeline_uri: str, butler_config: str, input_collections: Sequence[str]) -> PipelineShape:
    """Read the pipeline (``path#labels``), resolve its graph against the repo's dimensions.

    Each task's ``inputs`` are its own, and when none of them is per observation (has a ``visit`` or an
    ``exposure``) those of the tasks that feed it in the full pipeline (the file without its ``#labels``),
    level by level until one is: a per-tract task fed by per-patch coadds of per-visit summaries joins the
    visits, so that the estimate counts the tracts the step's observations reach, not every tract."""
    from lsst.daf.butler import MissingDatasetTypeError
    from lsst.pipe.base import Pipeline

    butler = open_butler(butler_config)
    try:
        graph = Pipeline.from_uri(pipeline_uri).to_graph(registry=butler.registry)
        full_uri = pipeline_uri.partition("#")[0]
        full = graph if full_uri == pipeline_uri else Pipeline.from_uri(full_uri).to_graph(registry=butler.registry)
    except Exception as exc:  # pipe_base raises many kinds (bad YAML, import errors, ...)
        raise RepoError(f"Cannot read the pipeline {pipeline_uri}: {exc}") from exc
    tasks = {label: list(node.dimensions.required) for label, node in graph.tasks.items()}
    names = {label: list(node.dimensions.names) for label, node in graph.tasks.items()}
    task_inputs: dict[str, dict[str, list[str]]] = {}
    sources: set[str] = set()  # inputs no task of the full pipeline makes
    for label in graph.tasks:
        found: dict[str, list[str]] = {}
        seen, level = {label}, [label]
        while level:
            upstream: list[str] = []
            for current in level:
                source_graph = full if current in full.tasks else graph
                for name, node in source_graph.inputs_of(current).items():
                    if node is None or node.is_prerequisite or not node.dimensions:
                        continue
                    found[name] = list(node.dimensions.required)
                    producer = source_graph.producer_of(name)
                    if producer is None:
                        sources.add(name)
                    elif producer.label not in seen:
                        seen.add(producer.label)
                        upstream.append(producer.label)
            if any(d in ("visit", "exposure") for dims in found.values() for d in dims):
                break  # the inputs reach observations: the registry can relate them to the step's where
            level = upstream
        task_inputs[label] = found
    inputs = []
    for name in sorted(sources):
        try:
            butler.get_dataset_type(name)
        except MissingDatasetTypeError:
            continue
        if input_collections and butler.query_datasets(
            name, collections=list(input_collections), limit=1, explain=False
        ):
            inputs.append(name)
    return PipelineShape(tasks=tasks, overall_inputs=inputs, names=names, inputs=task_inputs)


def _astropy(table: DataIdTable):
    from .dataids import data_id_table

    return data_id_table(table.dimensions, table.rows)


def _task_results(
    butler,
    query,
    shape: PipelineShape,
    label: str,
    where: str,
    *,
    tables: Sequence[DataIdTable],
    input_collections: Sequence[str],
    default_instrument: str | None,
):
    dimensions = shape.tasks[label]
    task_dims = set(dimensions)
    upstream = shape.inputs.get(label, {})
    for table in tables:
        query = query.join_data_coordinate_table(_astropy(table))
    # The inputs that exist (raw) are joined as datasets; those an earlier task or step makes by their
    # dimensions, as the graph builder does (visits and patches related through their regions, exposures and
    # visits through visit_definition).
    for dataset_type in shape.overall_inputs:
        if dataset_type in upstream or not upstream:
            query = query.join_dataset_search(dataset_type, list(input_collections))
    extra = {d for dims in upstream.values() for d in dims}
    if extra - task_dims:
        query = query.join_dimensions(sorted(extra | task_dims))
    results = query.data_ids(dimensions)
    if default_instrument and not re.search(r"\binstrument\b", where):
        results = results.where(instrument=default_instrument)
    if where.strip():
        results = results.where(where)
    return results


def count_quanta(
    butler_config: str,
    shape: PipelineShape,
    where: str,
    *,
    input_collections: Sequence[str] = (),
    default_instrument: str | None = None,
    tables: Sequence[DataIdTable] = (),
) -> dict[str, int]:
    """Estimated quanta per task label for one ``where`` clause (and the group's data-ID tables)."""
    from lsst.daf.butler import InvalidQueryError

    butler = open_butler(butler_config)
    counts: dict[str, int] = {}
    if any(not t.rows for t in tables):
        return dict.fromkeys(shape.tasks, 0)  # an empty table selects nothing (the group fails its preflight)
    try:
        for label in shape.tasks:
            with butler.query() as query:
                results = _task_results(
                    butler,
                    query,
                    shape,
                    label,
                    where,
                    tables=tables,
                    input_collections=input_collections,
                    default_instrument=default_instrument,
                )
                counts[label] = results.count(exact=True, discard=True)
    except InvalidQueryError as exc:
        raise RepoError(f"The Butler refused the query: {exc}") from exc
    return counts


def task_data_ids(
    butler_config: str,
    shape: PipelineShape,
    label: str,
    where: str,
    *,
    input_collections: Sequence[str] = (),
    default_instrument: str | None = None,
    tables: Sequence[DataIdTable] = (),
    limit: int,
) -> set[tuple]:
    """The data IDs (tuples in ``shape.tasks[label]`` order) one task would run for one ``where`` and its
    tables. Raises :class:`TooManyDataIds` past ``limit`` rows (read at most ``limit + 1``)."""
    from lsst.daf.butler import InvalidQueryError

    if any(not t.rows for t in tables):
        return set()
    butler = open_butler(butler_config)
    dimensions = shape.tasks[label]
    out: set[tuple] = set()
    try:
        with butler.query() as query:
            results = _task_results(
                butler,
                query,
                shape,
                label,
                where,
                tables=tables,
                input_collections=input_collections,
                default_instrument=default_instrument,
            )
            for data_id in results.limit(limit + 1):
                out.add(tuple(data_id[d] for d in dimensions))
    except InvalidQueryError as exc:
        raise RepoError(f"The Butler refused the query: {exc}") from exc
    if len(out) > limit:
        raise TooManyDataIds(f"more than {limit:,} data IDs")
    return out


def read_data_id_table(path: str, *, max_rows: int) -> DataIdTable | None:
    """A data-ID table file (ECSV) as plain rows; ``None`` when it has more than ``max_rows`` rows (the
    caller then does without it). Raises ``RepoError`` for a missing or unreadable file."""
    from pathlib import Path

    from astropy.table import Table

    if not Path(path).is_file():
        raise RepoError(f"The data-ID table {path} is missing.")
    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as exc:  # astropy raises many kinds for a damaged file
        raise RepoError(f"The data-ID table {path} cannot be read: {exc}") from exc
    if len(table) > max_rows:
        return None
    columns = list(table.colnames)
    rows: list[tuple[Any, ...]] = [tuple(v.item() if hasattr(v, "item") else v for v in row) for row in table]
    return DataIdTable(dimensions=columns, rows=rows, label=Path(path).name)


def task_outputs(butler_config: str, collection: str, labels: Sequence[str]) -> dict[str, int]:
    """Quanta of each task that ran to the end in ``collection`` (a group's chain of RUN collections): every
    successful quantum writes its ``<label>_metadata`` dataset. An unknown collection counts nothing."""
    from lsst.daf.butler import MissingCollectionError, MissingDatasetTypeError

    butler = open_butler(butler_config)
    out: dict[str, int] = {}
    for label in labels:
        try:
            refs = butler.query_datasets(
                f"{label}_metadata", collections=[collection], find_first=True, explain=False, limit=None
            )
        except (MissingCollectionError, MissingDatasetTypeError):
            refs = []
        out[label] = len(refs)
    return out
