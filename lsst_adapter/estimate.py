"""Estimating the quanta of a workflow before building its QuantumGraph (the launch plan).

For each task of a pipeline (or subset), the estimate is the number of data IDs of the task's
dimensions that the group's ``where`` selects in the registry. When the pipeline's overall
inputs (e.g. ``raw``) already exist in the input collections, the query is joined with them,
so that data IDs without inputs do not count. Tasks whose inputs are made by an earlier step
are counted from the registry alone: an upper bound (a failed upstream quantum removes some).
One registry query per task and group; no ``pipetask`` subprocess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .registry import RepoError, open_butler

__all__ = ["PipelineShape", "count_quanta", "pipeline_shape"]


@dataclass
class PipelineShape:
    """The tasks of a pipeline subset: label -> required dimensions, and the inputs that exist."""

    tasks: dict[str, list[str]]
    overall_inputs: list[str] = field(default_factory=list)  # dataset types found in the input collections


def pipeline_shape(pipeline_uri: str, butler_config: str, input_collections: Sequence[str]) -> PipelineShape:
    """Read the pipeline (``path#labels``), resolve its graph against the repo's dimensions."""
    from lsst.daf.butler import MissingDatasetTypeError
    from lsst.pipe.base import Pipeline

    butler = open_butler(butler_config)
    try:
        pipeline = Pipeline.from_uri(pipeline_uri)
        graph = pipeline.to_graph(registry=butler.registry)
    except Exception as exc:  # pipe_base raises many kinds (bad YAML, import errors, ...)
        raise RepoError(f"Cannot read the pipeline {pipeline_uri}: {exc}") from exc
    tasks = {label: list(node.dimensions.required) for label, node in graph.tasks.items()}
    inputs = []
    for name, node in graph.iter_overall_inputs():
        if node is None or node.is_prerequisite or not node.dimensions:
            continue
        try:
            butler.get_dataset_type(name)
        except MissingDatasetTypeError:
            continue
        if input_collections and butler.query_datasets(
            name, collections=list(input_collections), limit=1, explain=False
        ):
            inputs.append(name)
    return PipelineShape(tasks=tasks, overall_inputs=sorted(inputs))


def count_quanta(
    butler_config: str,
    shape: PipelineShape,
    where: str,
    *,
    input_collections: Sequence[str] = (),
    default_instrument: str | None = None,
) -> dict[str, int]:
    """Estimated quanta per task label for one ``where`` clause."""
    from lsst.daf.butler import InvalidQueryError

    butler = open_butler(butler_config)
    counts: dict[str, int] = {}
    try:
        for label, dimensions in shape.tasks.items():
            with butler.query() as query:
                for dataset_type in shape.overall_inputs:
                    dims = set(butler.get_dataset_type(dataset_type).dimensions.required)
                    if dims <= set(dimensions) or set(dimensions) <= dims:
                        query = query.join_dataset_search(dataset_type, list(input_collections))
                results = query.data_ids(dimensions)
                if default_instrument and not re.search(r"\binstrument\b", where):
                    results = results.where(instrument=default_instrument)
                if where.strip():
                    results = results.where(where)
                counts[label] = results.count(exact=True, discard=True)
    except InvalidQueryError as exc:
        raise RepoError(f"The Butler refused the query: {exc}") from exc
    return counts
