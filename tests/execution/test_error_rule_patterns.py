"""Error-rule patterns cannot hang a worker: they are compiled and matched by RE2 (linear time), and a
pattern RE2 cannot run is refused when it is saved, on the page, in the API and in the service."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from campaigns.execution.runner import match_rule
from campaigns.execution.services import error_rule_create, error_rule_update
from campaigns.models import ErrorRule
from core.patterns import PatternError, compile_pattern, pattern_search

pytestmark = pytest.mark.django_db

# With Python's re, (x+x+)+y backtracks through about 2**n ways of splitting n x's before it gives up:
# on the message below that is far longer than the age of the universe. RE2 answers at once, so the
# test finishing at all is the proof (no timing assertion).
CATASTROPHIC = r"(x+x+)+y"
HOSTILE_MESSAGE = "x" * 100_000


def test_a_catastrophic_backtracking_pattern_is_matched_in_linear_time(owner):
    rule = error_rule_create(user=owner, message_regex=CATASTROPHIC, action="fail")
    assert match_rule([rule], task_label="isr", exception_type="RuntimeError", message=HOSTILE_MESSAGE) is None
    assert match_rule([rule], task_label="isr", exception_type="", message=HOSTILE_MESSAGE + "y") == rule
    assert pattern_search(r"((a+)+)+$", "a" * 100_000 + "!") is False


def test_the_engine_is_re2_and_not_python_re():
    compiled = compile_pattern("Timeout")
    assert not isinstance(compiled, re.Pattern)
    assert type(compiled).__module__.startswith("re2")


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1", "invalid escape sequence"),
        (r"(?P<x>a)(?P=x)", "invalid perl operator"),
        (r"Timeout(?=s)", "invalid perl operator"),
        (r"(?<!no )memory", "invalid perl operator"),
        (r"(?>a+)b", "invalid perl operator"),
        (r"a*+", "bad repetition operator"),
        (r"x{5000}", "invalid repetition size"),
        (r"end\Z", "invalid escape sequence"),
        (r"(", "missing )"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_the_reason(owner, pattern, why):
    with pytest.raises(ValidationError) as caught:
        error_rule_create(user=owner, message_regex=pattern, action="fail")
    (message,) = caught.value.message_dict["message_regex"]
    assert message.startswith("Not a valid regular expression: ") and why in message
    assert "back-references" in message and "look-ahead" in message  # what RE2 does not do, said plainly
    assert not ErrorRule.objects.exists()


def test_a_pattern_too_large_for_re2_memory_is_refused(owner):
    with pytest.raises(PatternError, match="pattern too large"):
        compile_pattern(r"(\pL{500}|\w{500}){2}")  # within the repeat limit, beyond the memory one


def test_editing_a_rule_to_a_pattern_re2_cannot_run_is_refused(owner):
    rule = error_rule_create(user=owner, message_regex="Timeout", action="review")
    with pytest.raises(ValidationError):
        error_rule_update(user=owner, rule_id=rule.pk, message_regex=r"(T)\1")
    rule.refresh_from_db()
    assert rule.message_regex == "Timeout"


def test_patterns_keep_their_meaning_lines_and_flags(owner):
    rule = error_rule_create(user=owner, message_regex=r"^OutOfMemory", action="review")
    message = "Traceback (most recent call last):\nOutOfMemoryError: killed"
    assert match_rule([rule], task_label="isr", exception_type="", message=message) == rule  # ^ at each line
    insensitive = error_rule_create(user=owner, message_regex=r"(?i)timed out", action="auto-retry")
    assert match_rule([insensitive], task_label="isr", exception_type="", message="Job TIMED OUT") == insensitive


def test_a_stored_rule_re2_cannot_run_is_skipped_and_the_next_one_applies(owner, caplog):
    # A rule saved before patterns were checked with RE2 (written directly, as an old database has it).
    old = ErrorRule.objects.create(message_regex=r"(Timeout)\1", action="fail", position=0, created_by=owner)
    new = error_rule_create(user=owner, message_regex="Timeout", action="auto-retry")
    assert match_rule([old, new], task_label="isr", exception_type="", message="TimeoutTimeout") == new
    assert "cannot run with RE2" in caplog.text


def test_the_page_says_why_a_pattern_is_refused(client, owner):
    client.force_login(owner)
    response = client.post("/campaigns/error-rules/", {"message_regex": r"(a)\1", "action": "fail", "max_retries": 1})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Not a valid regular expression: invalid escape sequence" in page
    assert "back-references" in page
    assert not ErrorRule.objects.exists()


def test_the_api_answers_400_naming_the_field(api, owner):
    response = api(owner).post(
        "/api/v1/error-rules/", {"message_regex": "Timeout(?=s)", "action": "fail"}, format="json"
    )
    assert response.status_code == 400
    assert "invalid perl operator" in response.json()["message_regex"][0]
    ok = api(owner).post("/api/v1/error-rules/", {"message_regex": CATASTROPHIC, "action": "fail"}, format="json")
    assert ok.status_code == 201
