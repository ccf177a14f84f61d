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


def _unbounded_integers(schema: dict, where: str, components: dict, seen: set) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _unbounded_integers(components[name], name, components, seen)
    found = []
    if schema.get("type") == "integer" and not schema.get("readOnly"):
        if not (-(2**63) <= schema.get("minimum", -(2**64)) and schema.get("maximum", 2**64) <= 2**63 - 1):
            found.append(where)
    for key, sub in (schema.get("properties") or {}).items():
        found += _unbounded_integers(sub, f"{where}.{key}", components, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _unbounded_integers(schema[key], f"{where}[]", components, seen)
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            found += _unbounded_integers(sub, where, components, seen)
    return found


def test_every_integer_a_request_body_takes_is_bounded_to_64_bits():
    """A number beyond what a column holds is refused by the serializer (400 naming it), not by the database."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    unbounded = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                unbounded += _unbounded_integers(media["schema"], f"{method.upper()} {path}", components, set())
    assert not unbounded, unbounded


def test_a_huge_integer_or_a_nan_in_a_json_body_is_a_400_naming_the_field(owner, api, demo_repo):
    client = api(owner)
    for field in ("day_obs", "seq_num", "exposure", "level"):
        body = {"repo": "demo", "message_text": "x", "exposure": 1, field: 2**64}
        response = client.post("/api/v1/flags/", body, format="json")
        assert response.status_code == 400 and field in response.json(), response.content
    nan = client.post(
        "/api/v1/flags/", data='{"repo": "demo", "message_text": "x", "level": NaN}', content_type="application/json"
    )
    assert nan.status_code == 400


def test_a_nul_character_in_a_list_filter_is_a_400_naming_it(science_user, api):
    response = api(science_user).get("/api/v1/flags/", {"user_ids": "ali\x00ce"})
    assert response.status_code == 400 and "user_ids" in response.json()


def test_a_value_the_database_refuses_is_a_400_and_nothing_is_stored(owner, api, demo_repo, transactional_db):
    """The last line of defence (core.api.exception_handler): here a NUL character in a message's text, which
    PostgreSQL cannot store; SQLite can, and stores it."""
    from django.db import connection

    from tagging.models import ExposureFlag
    from tests.tagging.test_flags_exposurelog_params import _messages

    message = _messages(n=1, edited=0)[0] | {"message_text": "dome\x00light"}
    response = api(owner).post("/api/v1/flags/import/", {"repo": "demo", "messages": [message]}, format="json")
    if connection.vendor == "postgresql":
        assert response.status_code == 400, response.content
        assert "NUL" in response.json()["detail"] and "Traceback" not in response.content.decode()
        assert not ExposureFlag.objects.exists()
    else:
        assert response.status_code == 200
