"""Readiness of the Butler repositories (registered with ``core.health`` by ``TaggingConfig.ready``)."""

from __future__ import annotations

import dataclasses
import datetime
import time

from django.conf import settings
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from .models import ButlerRepo

# label -> (monotonic time of the check, problem or ""): opening a Butler costs about a second the first
# time, so a probe every few seconds reuses a recent answer.
_recent: dict[str, tuple[float, str]] = {}


def _problem(repo: ButlerRepo) -> str:
    from lsst_adapter.registry import RepoError, ping

    checked = _recent.get(repo.label)
    if checked is not None and time.monotonic() - checked[0] < settings.CM_READYZ_REPO_CACHE_SECONDS:
        return checked[1]
    try:
        ping(repo.config_uri)
        problem = ""
    except RepoError:
        problem = "not reachable"  # the location stays out of the answer: only staff may know it
    _recent[repo.label] = (time.monotonic(), problem)
    return problem


@dataclasses.dataclass
class ButlerRepos(HealthCheck):
    """Every registered Butler repository opens and its registry answers."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=20), repr=False)

    def run(self) -> None:
        repos = list(ButlerRepo.objects.all())
        failing = [f"{repo.label}: {p}" for repo in repos if (p := _problem(repo))]
        if failing:
            raise ServiceUnavailable("Butler repos " + "; ".join(failing))
