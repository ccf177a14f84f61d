"""A real failure through BPS + Parsl (the demo pipeline's fault injection), then the pages that explain it: the
group page (attempt times, submit directory, BPS report per task, the attempt's log, failed quanta), the failed
quantum's <task>_log read from the Butler, the campaign's error summary and "make an error rule from this".

One group of 4 quanta (one night, 2 detectors, 2 exposures), one of which fails: about 30 s.
"""

from __future__ import annotations

import logging
import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest

from campaigns.execution import campaign_launch
from campaigns.execution.runner import match_rule
from campaigns.models import ErrorRule, QuantumError, Submission
from campaigns.services import step_groups_define
from tests.execution.conftest import CLUSTER_BY_EXPOSURE, run_ready_groups

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

FAIL = "exposure:2025112100151,detector:1"


@pytest.fixture
def failed_group(make_exec_campaign, owner, caplog):
    campaign = make_exec_campaign(
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
        bps={
            "compute_site": "local_threads",
            "wms": "parsl",
            "extra": {**CLUSTER_BY_EXPOSURE, "config_overrides": {"step1": {"failDataIds": [FAIL]}}},
        },
    )
    step = campaign.steps.get()
    one_night = [{"name": "n21", "data_query": "exposure.day_obs = 20251121"}]
    step_groups_define(user=owner, campaign_id=campaign.pk, step_name=step.name, groups=one_night)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    with caplog.at_level(logging.INFO):
        assert run_ready_groups(campaign) == ["failed"]
    group = step.groups.get()
    return campaign, group, caplog.records


def _console_and_attempt_log(campaign, group, records) -> None:
    moves = [r.getMessage() for r in records if r.name == "campaigns.groups"]
    assert moves == [
        f"{campaign.name} step1/n21: waiting → ready (step step1 is ready)",
        f"{campaign.name} step1/n21: ready → preflight (attempt 1 (submit) claimed by a worker)",
        f"{campaign.name} step1/n21: preflight → running (preflight passed: 4 quanta; submitting "
        f"{Submission.objects.get(group=group).bps_run_name})",
        moves[3],
    ]
    assert moves[3].startswith(f"{campaign.name} step1/n21: running → failed (step1 ")
    # pipetask's VERBOSE lines (relayed by BPS) and Parsl's did not reach the console...
    assert not [r for r in records if r.name.startswith(("lsst.ctrl.bps", "parsl"))]
    # ...they are in the attempt's log file, in its submit directory.
    submission = Submission.objects.get(group=group)
    log = (submission.submit_dir and open(f"{submission.submit_dir}/cm_attempt.log").read()) or ""
    assert "lsst.ctrl.bps: Preparing" in log and "pipetask" in log and "VERBOSE" in log
    assert "Submitting" in log


def test_a_failed_quantum_is_explained_on_the_group_page_in_its_log_and_in_one_console_line(
    failed_group, owner, science_user, client
):
    campaign, group, records = failed_group
    _console_and_attempt_log(campaign, group, records)
    submission = Submission.objects.get(group=group)
    error = QuantumError.objects.get(submission=submission)
    assert submission.by_task == {
        "step1": {"total": 4, "succeeded": 3, "failed": 1, "running": 0, "pending": 0, "blocked": 0}
    }
    assert error.log_dataset.startswith("file://") and error.log_dataset.endswith(".json")
    client.force_login(owner)
    html = client.get(f"/campaigns/{campaign.pk}/groups/{group.pk}/").content.decode()
    assert f'<code id="submit-dir">{submission.submit_dir}</code>' in html
    attempt = html.split('id="attempt-1"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r"\d+ (s|min \d\d s)", attempt), attempt  # the duration of the attempt
    assert submission.started.strftime("%Y-%m-%d %H:%M") in attempt
    report = html.split('id="report-1"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r'<td class="num[^"]*">(\d+)</td>', report)
    assert cells == ["4", "3", "1", "0", "0", "0"]
    log = unescape(html.split('id="attempt-log-1">', 1)[1].split("</pre>", 1)[0])
    assert "Preparing" in log and "pipetask" in log
    quanta = html.split('id="failed-quanta"', 1)[1].split("</table>", 1)[0]
    assert "exposure</span> 2025112100151" in quanta and "detector</span> 1" in quanta
    assert "InjectedFailure" in quanta and "failDataIds" in quanta
    log_url = f"/campaigns/{campaign.pk}/groups/{group.pk}/quanta/{error.pk}/log/"
    assert f'href="{log_url}"' in quanta
    # What each action does, in words, next to its button.
    assert "the 3 quanta that succeeded are reused" in html
    assert f"{group.output_collection}/attempt2" in html
    assert "runs every quantum again (all 4)" in html
    assert "3 of 4 quanta" in html and "outputs of the 1 failed quantum" in html

    page = client.get(log_url).content.decode()
    records = page.split('id="log-records"', 1)[1].split("</table>", 1)[0]
    assert records.count("<tr class=") == 4
    assert '<span class="loglevel loglevel-error">ERROR</span>' in records
    assert "Exception InjectedFailure: Injected failure in step1" in unescape(records)
    assert "&#x27;step1&#x27;" in records  # escaped, not raw markup

    client.force_login(science_user)
    html = client.get(f"/campaigns/{campaign.pk}/groups/{group.pk}/").content.decode()
    assert 'id="failed-quanta"' in html and 'id="report-1"' in html
    assert 'id="rescue-group"' not in html and 'id="accept-group"' not in html
    assert "its owner, collaborators" in html
    assert b"InjectedFailure" in client.get(log_url).content


def test_the_error_summary_groups_the_failure_and_makes_an_error_rule_from_it(failed_group, owner, client):
    campaign, group, _ = failed_group
    error = QuantumError.objects.get(submission__group=group)
    client.force_login(owner)
    html = client.get(f"/campaigns/{campaign.pk}/errors/").content.decode()
    assert "1 failed quantum in the latest attempt of each group" in html
    pattern = html.split('id="pattern-table"', 1)[1].split("</ol>", 1)[0]
    assert "Injected failure in step# for data ID {detector=#,exposure=#,instrument=DemoCam}" in unescape(pattern)
    assert "No rule matched." in pattern and "detector 1, exposure 2025112100151" in pattern
    link = unescape(re.search(r'href="([^"]*error-rules/\?[^"]*)"', pattern).group(1))
    query = parse_qs(urlparse(link).query)
    assert query["task_label"] == ["step1"] and query["campaign"] == [str(campaign.pk)]
    regex = query["message_regex"][0]

    form = client.get(link).content.decode()
    assert 'id="prefilled-from"' in form and f"error summary of {campaign.name}" in form
    assert 'value="step1"' in form and unescape(form).count(regex) >= 1
    response = client.post(
        "/campaigns/error-rules/",
        {"task_label": "step1", "message_regex": regex, "action": "review", "max_retries": 1, "comment": "known"},
    )
    assert response.status_code == 302
    rule = ErrorRule.objects.get(message_regex=regex)
    # The rule it made matches the failure it was made from (and would match it on another data ID).
    assert match_rule([rule], task_label="step1", exception_type=error.exception_type, message=error.message) == rule
    other = error.message.replace("2025112100151", "2025112200150").replace("detector=1", "detector=0")
    assert match_rule([rule], task_label="step1", exception_type=error.exception_type, message=other) == rule
    by_task = html.split('id="task-table"', 1)[1].split("</table>", 1)[0]
    assert "<code>step1</code>" in by_task and error.exception_type in by_task
