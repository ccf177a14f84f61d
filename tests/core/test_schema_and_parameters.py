"""The schema generates cleanly, and it is the list of what each operation accepts: a query parameter an
operation does not document is a 400 naming it (core.permissions.KnownQueryParameters), never ignored."""

from __future__ import annotations

import pytest
from django.core.management import call_command


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--file", str(tmp_path / "schema.yaml"), "--fail-on-warn", "--validate")


@pytest.mark.parametrize(
    ("url", "typo"),
    [
        ("/api/v1/campaigns/?stauts=running", "stauts"),  # would answer every campaign if ignored
        ("/api/v1/flags/?exclude_tag=dome", "exclude_tag"),
        ("/api/v1/metrics/values/?campaing=w48", "campaing"),
        ("/api/v1/error-rules/?enabled=true", "enabled"),  # a list without filters
        ("/api/v1/campaigns/{pk}/?expand=steps", "expand"),  # an object, not a list
        ("/api/v1/campaigns/{pk}/steps/?page=2", "page"),  # not paginated, so no page
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(owner, campaign, api, url, typo):
    response = api(owner).get(url.format(pk=campaign.pk))
    assert response.status_code == 400, response.content
    message = response.json()[typo][0]
    assert "Unknown query parameter" in message and "it takes:" in message


def test_documented_parameters_pagination_and_format_are_accepted(owner, campaign, api):
    client = api(owner)
    assert client.get("/api/v1/campaigns/", {"status": "draft", "page": 1, "page_size": 5}).status_code == 200
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/", {"format": "json"}).status_code == 200
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/history/", {"page": 1}).status_code == 200


def test_an_anonymous_caller_is_refused_before_any_complaint_about_parameters(api):
    response = api(None).get("/api/v1/campaigns/", {"stauts": "x"})
    assert response.status_code in (401, 403)  # 403 without a WWW-Authenticate scheme (session auth first)
    assert "stauts" not in response.json() and "credentials" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": "-3"}, "page_size"),
        ({"page_size": "NaN"}, "page_size"),
    ],
)
def test_a_page_or_page_size_that_is_not_a_whole_number_of_at_least_one_is_a_400(owner, api, params, name):
    response = api(owner).get("/api/v1/campaigns/", params)
    assert response.status_code == 400 and name in response.json()


def test_the_schema_says_which_lists_are_pages():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    def body(path):
        return paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    assert body("/api/v1/campaigns/")["$ref"].endswith("PaginatedCampaignListList")
    assert body("/api/v1/campaigns/{id}/steps/")["type"] == "array"
    assert body("/api/v1/error-rules/")["type"] == "array"
    assert "page" not in {p["name"] for p in paths["/api/v1/error-rules/"]["get"].get("parameters", [])}
    assert {"limit", "offset", "exclude_tags", "min_seq_num"} <= {
        p["name"] for p in paths["/api/v1/flags/"]["get"]["parameters"]
    }
    assert paths["/api/v1/campaigns/{id}/"]["get"]["parameters"][0]["schema"]["type"] == "integer"
    assert {"400", "401", "403", "404"} <= set(paths["/api/v1/campaigns/{id}/"]["get"]["responses"])
