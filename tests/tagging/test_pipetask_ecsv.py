"""The ECSV a DataID set downloads constrains a real ``pipetask qgraph`` (``--data-id-table``)."""

from __future__ import annotations

import io

import pytest

from tests.demo_pipeline.test_pipeline import PIPELINE, RAW, SCIENCE, pipetask

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_downloaded_ecsv_constrains_a_real_pipetask_quantum_graph(api, owner, butler_repo, butler_root, tmp_path):
    from lsst.pipe.base.pipeline_graph import TaskImportMode
    from lsst.pipe.base.quantum_graph import PredictedQuantumGraph

    csv_text = (
        "obs_id,detector\n"
        "DC_O_20251121_000150,R22_S11\n"  # detector 4
        "DC_O_20251122_000152,R22_S00\n"  # detector 0
        "DC_O_20251122_000152,R22_S22\n"  # detector 8
    )
    upload = io.BytesIO(csv_text.encode())
    upload.name = "ids.csv"
    client = api(owner)
    created = client.post(
        "/api/v1/dataid-sets/",
        {"name": "for-pipetask", "repo": "demo", "reason": "qgraph test", "file": upload},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    set_id = client.get("/api/v1/dataid-sets/?name=for-pipetask").json()["results"][0]["id"]
    download = client.get(f"/api/v1/dataid-sets/{set_id}/download/?format=ecsv")
    assert download.status_code == 200
    table_path = tmp_path / "ids.ecsv"
    table_path.write_bytes(download.content)

    graph_path = tmp_path / "step1.qg"
    pipetask(
        "qgraph", "-b", butler_root, "-i", RAW, "-o", "u/test/ecsv-qgraph", "-p", f"{PIPELINE}#step1",
        "-d", SCIENCE, "--data-id-table", str(table_path), "--save-qgraph", str(graph_path),
    )  # fmt: skip
    with PredictedQuantumGraph.open(graph_path, import_mode=TaskImportMode.DO_NOT_IMPORT) as reader:
        reader.read_thin_graph()
        graph = reader.finish()
    got = {(d["exposure"], d["detector"]) for d in graph.quanta_by_task["step1"]}
    assert got == {(2025112100150, 4), (2025112200152, 0), (2025112200152, 8)}
