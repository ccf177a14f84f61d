"""Gunicorn, as the production web server runs it: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Every value comes from the environment (defaults in brackets):
``CM_WEB_BIND`` [0.0.0.0:8000], ``CM_WEB_WORKERS`` [2 x cores + 1], ``CM_WEB_THREADS`` [2],
``CM_WEB_TIMEOUT`` [60 s], ``CM_WEB_MAX_REQUESTS`` [2000; a worker is replaced after that many requests, with
jitter, which bounds slow memory growth], ``PROMETHEUS_MULTIPROC_DIR`` [a fresh temporary directory].
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("CM_WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CM_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("CM_WEB_THREADS", "2"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("CM_WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("CM_WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# Django writes the logs (config.settings LOGGING): gunicorn's go through the same handlers.
accesslog = None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus: each worker writes its counters into this directory; /metrics merges them (core.monitoring).
# It must exist and be empty before the first worker starts, and be set before prometheus_client is imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cm-prometheus-")


def on_starting(server) -> None:
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
