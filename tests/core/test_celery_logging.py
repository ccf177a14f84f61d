"""The worker's console drops Parsl's chatter but keeps its warnings and everything else."""

from __future__ import annotations

import logging

from config.celery import _QuietLibraries


def _record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "message", None, None)


def test_parsl_debug_and_info_lines_are_dropped_but_its_warnings_and_other_loggers_are_kept():
    quiet = _QuietLibraries()
    assert not quiet.filter(_record("parsl.dataflow.dflow", logging.DEBUG))
    assert not quiet.filter(_record("parsl", logging.INFO))
    assert quiet.filter(_record("parsl.executors", logging.WARNING))
    assert quiet.filter(_record("campaigns.execution.runner", logging.DEBUG))
    assert quiet.filter(_record("lsst.ctrl.bps", logging.INFO))
