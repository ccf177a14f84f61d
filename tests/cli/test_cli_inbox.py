"""`cm inbox` against a live server: the same items as the inbox page and GET /api/v1/inbox/.

No BPS runs: the executor's recording functions write what a worker would (tests/execution/attention.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from core.roles import set_role
from tests.conftest import PASSWORD
from tests.execution import conftest as execution_fixtures
from tests.execution.attention import waiting_campaign

pytestmark = pytest.mark.django_db(transaction=True)

CM = Path(sys.executable).parent / "cm"
make_exec_campaign = execution_fixtures.make_exec_campaign  # the executor tests' campaign factory (a fixture)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch, settings, tmp_path):
    from campaigns.tasks import group_run

    settings.CM_SUBMIT_ROOT = tmp_path / "submit"
    monkeypatch.setattr(group_run, "delay", lambda group_id: None)


@pytest.fixture
def cm(live_server, tmp_path):
    def run(*args: str, as_user) -> subprocess.CompletedProcess:
        child = {k: v for k, v in os.environ.items() if not k.startswith("CM_") and not k.lower().endswith("_proxy")}
        child.update(
            HOME=str(tmp_path / "home"),
            CM_CONFIG=str(tmp_path / "cm-config.json"),
            CM_URL=live_server.url,
            CM_TOKEN=Token.objects.get_or_create(user=as_user)[0].key,
        )
        return subprocess.run([str(CM), *args], env=child, capture_output=True, text=True, timeout=60, check=False)

    return run


@pytest.fixture
def waiting(make_exec_campaign, owner):
    erin = get_user_model().objects.create_user("erin", "erin@example.org", PASSWORD)
    set_role(erin, "staff")
    return waiting_campaign(make_exec_campaign, owner, collaborators=["erin"])


def test_cm_inbox_lists_what_waits_and_how_to_act_on_it(cm, waiting, owner, other_staff, science_user):
    name = waiting.campaign.name
    done = cm("inbox", as_user=owner)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("2 items wait for a person:") and "Yours to act on:" in out
    assert "Step awaits approval" in out and "step step2" in out
    assert "Failed group" in out and "extra/night-20251121" in out
    assert f"→ cm step approve {name} step2 --comment ..." in out
    assert f"→ cm group retry|rescue|accept|cancel {name} extra night-20251121" in out

    erin = get_user_model().objects.get(username="erin")
    assert "Yours to act on:" in cm("inbox", as_user=erin).stdout

    theirs = cm("inbox", as_user=other_staff).stdout
    assert "In campaigns you may see but not change" in theirs and "→" not in theirs
    assert cm("inbox", "--mine", as_user=other_staff).stdout.strip() == "Nothing waits for you."

    machine = json.loads(cm("inbox", "--json", "--kind", "failed_group", as_user=owner).stdout)
    assert [i["group"] for i in machine["items"]] == ["night-20251121"] and machine["total"] == 2

    science = cm("inbox", as_user=science_user)
    assert science.returncode == 0 and science.stdout.strip() == "Nothing waits for you."
    refused = cm("inbox", "--kind", "nonsense", as_user=owner)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
