"""Logs shown in pages are bounded and escaped: a failed quantum's <task>_log (lsst_adapter.logs), an attempt's log
file (campaigns.attempt_files), and the attempt log the BPS adapter writes instead of the console."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from django.db import connection

from campaigns.attempt_files import tail
from campaigns.models import QuantumError
from core.sqlite_functions import regexp_replace
from lsst_adapter import bps
from lsst_adapter.logs import quantum_log
from tests.execution.attention import waiting_campaign

pytestmark = pytest.mark.django_db


def _record(message: str, level: str = "INFO", n: int = 0) -> dict:
    return {
        "name": "lsst.demo",
        "asctime": f"2026-01-01T00:00:{n % 60:02d}Z",
        "message": message,
        "levelno": 40 if level == "ERROR" else 20,
        "levelname": level,
        "filename": "x.py",
        "pathname": "/x.py",
        "lineno": 1,
        "funcName": "f",
        "process": 1,
        "processName": "MainProcess",
        "MDC": {},
    }


def _lines_file(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path.as_uri()


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    from campaigns.tasks import group_run

    monkeypatch.setattr(group_run, "delay", lambda group_id: None)


def test_a_quantum_log_is_shown_escaped(make_exec_campaign, owner, client, tmp_path):
    waiting = waiting_campaign(make_exec_campaign, owner)
    error = QuantumError.objects.get(submission__group=waiting.failed_group)
    uri = _lines_file(
        tmp_path / "step1_log.json",
        [_record("starting"), _record("<script>alert('x')</script> & <b>bold</b>", "ERROR", 1)],
    )
    QuantumError.objects.filter(pk=error.pk).update(log_dataset=uri)  # where the job wrote it (no real run here)
    client.force_login(owner)
    page = client.get(
        f"/campaigns/{waiting.campaign.pk}/groups/{waiting.failed_group.pk}/quanta/{error.pk}/log/"
    ).content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>bold" not in page
    assert "2 records" in page
    # Another campaign's group, or a quantum of another group: 404.
    other = waiting.campaign.steps.get(name="step1").groups.get()
    assert client.get(f"/campaigns/{waiting.campaign.pk}/groups/{other.pk}/quanta/{error.pk}/log/").status_code == 404


def test_a_large_log_of_one_record_per_line_is_read_from_its_end_only(butler_repo, tmp_path):
    records = [_record(f"line {i} " + "x" * 80, n=i) for i in range(40_000)]  # about 9 MB
    uri = _lines_file(tmp_path / "big.json", records)
    log = quantum_log(butler_repo.config_uri, run="no/such/run", task_label="step1", data_id={}, uri=uri)
    assert log.error == "" and log.skipped_bytes > 6_000_000 and log.truncated
    assert len(log.records) == 500 and log.records[-1]["message"].startswith("line 39999 ")
    assert log.records[0]["message"].startswith("line 39500 ")


def test_a_large_single_document_log_is_streamed_keeping_its_last_records(butler_repo, tmp_path):
    records = [_record(f"record {i} " + "y" * 120, n=i) for i in range(20_000)]  # about 5 MB
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"extended": True, "version": 2, "records": records}, separators=(",", ":")))
    log = quantum_log(butler_repo.config_uri, run="no/such/run", task_label="step1", data_id={}, uri=path.as_uri())
    assert log.error == "" and log.total == 20_000 and len(log.records) == 500 and log.truncated
    assert log.records[-1]["message"].startswith("record 19999 ")
    small = quantum_log(
        butler_repo.config_uri, run="r", task_label="step1", data_id={}, uri=path.as_uri(), max_records=3
    )
    assert [r["message"].split()[1] for r in small.records] == ["19997", "19998", "19999"]


def test_a_missing_log_is_said_not_raised(butler_repo, tmp_path):
    log = quantum_log(
        butler_repo.config_uri, run="r", task_label="step1", data_id={}, uri=(tmp_path / "gone.json").as_uri()
    )
    assert "does not exist" in log.error and log.records == []
    nothing = quantum_log(butler_repo.config_uri, run="r", task_label="step1", data_id={})
    assert nothing.error and nothing.records == []


def test_the_attempt_log_takes_the_middleware_records_off_the_console(tmp_path, caplog, monkeypatch):
    submit_dir = tmp_path / "attempt1-abc"  # BPS creates it during the run: it must not exist before
    with caplog.at_level(logging.INFO), bps._attempt_log(submit_dir):
        logging.getLogger("lsst.ctrl.bps.pre_transform").info("before the directory exists")
        submit_dir.mkdir()
        logging.getLogger("lsst.ctrl.bps.pre_transform").info("VERBOSE qgraph line")
        # (a child no Parsl run has configured: a run earlier in the process may set levels on Parsl's own loggers)
        logging.getLogger("parsl.cm_test").warning("parsl says hello")
        logging.getLogger("campaigns.groups").info("a state change")
    text = (submit_dir / bps.ATTEMPT_LOG_FILE).read_text()
    lines = text.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "before the directory exists",
        "VERBOSE qgraph line",
        "parsl says hello",
    ]
    assert [r.getMessage() for r in caplog.records] == ["a state change"]
    assert logging.getLogger("lsst").propagate and logging.getLogger("parsl").propagate  # restored

    monkeypatch.setattr(bps, "ATTEMPT_LOG_MAX_BYTES", 500)
    other = tmp_path / "attempt2-def"
    other.mkdir()
    with bps._attempt_log(other):
        for i in range(100):
            logging.getLogger("lsst.ctrl.bps").warning("line %d of a runaway log", i)
    text = (other / bps.ATTEMPT_LOG_FILE).read_text()
    assert len(text) < 700 and text.rstrip().endswith("the log stops here: it reached 500 bytes")


def test_a_log_tail_is_bounded_and_only_under_the_submit_root(settings, tmp_path):
    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    inside = tmp_path / "submit" / "c" / "attempt1" / "cm_attempt.log"
    inside.parent.mkdir(parents=True)
    inside.write_text("".join(f"line {i}\n" for i in range(100_000)))
    found = tail(inside, max_bytes=10_000, max_lines=50)
    assert found.exists and found.truncated and found.lines == [f"line {i}" for i in range(99_950, 100_000)]
    outside = tmp_path / "elsewhere.log"
    outside.write_text("secret\n")
    refused = tail(outside)
    assert refused.lines == [] and "not under the submit root" in refused.error
    sneaky = tail(tmp_path / "submit" / ".." / "elsewhere.log")
    assert sneaky.lines == [] and sneaky.error
    assert tail(tmp_path / "submit" / "none.log").exists is False


def test_sqlites_regexp_replace_matches_postgresql_for_the_summary_patterns():
    samples = ["Injected failure in step1 for data ID {detector=1,exposure=2025112100151}", "band 'g' of 'x'", ""]
    for text in samples:
        for pattern, replacement in (("[0-9]+", "#"), ("'[^']*'", "'…'")):
            ours = regexp_replace(text, pattern, replacement, "g")
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT regexp_replace(%s, %s, %s, 'g')", [text, pattern, replacement])
                    assert cursor.fetchone()[0] == ours
    assert regexp_replace("a1b22", "[0-9]+", "#", "g") == "a#b#" and regexp_replace("a1b2", "[0-9]", "#", "") == "a#b2"
