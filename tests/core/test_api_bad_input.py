"""Bad input found by the schemathesis run, each answered with a 4xx that says what is wrong (never a 500)."""

from __future__ import annotations

from campaigns.execution.services import error_rule_create
from campaigns.models import ErrorRule
from tagging.services import butler_repo_upsert


def test_an_error_rule_appended_after_one_at_the_highest_position_is_a_400_not_a_500(owner, api):
    error_rule_create(user=owner, message_regex="Timeout", action="auto-retry", position=2**31 - 1)
    response = api(owner).post("/api/v1/error-rules/", {"message_regex": "OOM", "action": "fail"}, format="json")
    assert response.status_code == 400
    assert "position" in response.json()
    assert ErrorRule.objects.count() == 1


def test_error_rule_numbers_beyond_their_column_are_a_400(owner, api):
    for field in ("max_retries", "position"):
        body = {"message_regex": "OOM", "action": "fail", field: 2**31}
        response = api(owner).post("/api/v1/error-rules/", body, format="json")
        assert response.status_code == 400 and field in response.json(), response.content
    assert not ErrorRule.objects.exists()


def test_syncing_a_repo_that_cannot_be_opened_is_a_409_that_names_no_path(owner, api, db, tmp_path):
    butler_repo_upsert(label="gone", config_uri=str(tmp_path / "no-such-repo"), default_instrument="DemoCam")
    response = api(owner).post("/api/v1/butler-repos/gone/sync/")
    assert response.status_code == 409
    assert "gone" in response.json()["detail"] and str(tmp_path) not in response.content.decode()
