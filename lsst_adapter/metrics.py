"""Metric datasets of a RUN collection: found by storage class or name, read as plain JSON-shaped dicts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .registry import RepoError

# analysis_tools writes MetricMeasurementBundle datasets; the demo pipeline writes the same JSON shape as a
# StructuredDataDict named "<something>_metrics".
BUNDLE_STORAGE_CLASSES = {"MetricMeasurementBundle"}
NAME_SUFFIX = "_metrics"


@dataclass(frozen=True)
class MetricDataset:
    dataset_type: str
    dataset_id: str
    run: str
    data_id: dict[str, Any]
    bundle: dict[str, Any]


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "json"):  # a MetricMeasurementBundle: its JSON is the shape we ingest
        import json

        return json.loads(obj.json())
    raise TypeError(f"cannot read a metric bundle from {type(obj).__name__}")


def metric_datasets(butler_config: str, run: str) -> Iterator[MetricDataset]:
    """Every metric-bundle dataset of the RUN collection ``run``, one at a time."""
    from lsst.daf.butler import Butler, MissingCollectionError

    try:
        butler = Butler.from_config(butler_config)
    except Exception as exc:
        raise RepoError(f"Cannot open the Butler repo at {butler_config}: {exc}") from exc
    try:
        try:
            butler.collections.get_info(run)
        except MissingCollectionError as exc:
            raise RepoError(f"There is no collection {run!r} in the repo.") from exc
        types = [
            t
            for t in butler.registry.queryDatasetTypes(...)
            if t.storageClass_name in BUNDLE_STORAGE_CLASSES or t.name.endswith(NAME_SUFFIX)
        ]
        for dataset_type in sorted(types, key=lambda t: t.name):
            refs = butler.query_datasets(dataset_type, collections=[run], find_first=True, explain=False, limit=None)
            for ref in refs:
                yield MetricDataset(
                    dataset_type=dataset_type.name,
                    dataset_id=str(ref.id),
                    run=ref.run,
                    data_id=dict(ref.dataId.required),
                    bundle=_as_dict(butler.get(ref)),
                )
    finally:
        butler.close()
