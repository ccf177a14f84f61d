"""Every API operation and every page that names an object in its URL answers 404 for an object that does
not exist, and for ids that are not numbers or do not fit in 64 bits, whatever the method: never 2xx
(a write on nothing is not a success), never a 500. The operations come from the OpenAPI schema and the
pages from the URL resolver, so a new endpoint or page is swept without being listed here."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

# Not a number, beyond 64 bits, one past the largest bigint, the largest bigint (a valid id nobody has), negative.
BAD_IDS = ["abc", "99999999999999999999999", "9223372036854775808", "9223372036854775807", "-1", "NaN"]


def _api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ops = []
    for path, item in schema["paths"].items():
        if "{" not in path:
            continue
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method, path))
    return ops


API_OPERATIONS = _api_operations()


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.mark.parametrize(("method", "path"), API_OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in API_OPERATIONS])
def test_an_api_operation_on_a_missing_or_malformed_id_answers_404_in_json(method, path, owner, demo_repo, api):
    client = api(owner)
    client.raise_request_exception = False
    for bad in BAD_IDS:
        url = _fill(path, bad)
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code} {response.content[:300]!r}"
        assert response["Content-Type"].startswith("application/json"), f"{method.upper()} {url}"


@pytest.mark.parametrize(
    ("method", "path"),
    [op for op in API_OPERATIONS if op[1].count("{") > 1],
    ids=[f"{m.upper()} {p}" for m, p in API_OPERATIONS if p.count("{") > 1],
)
def test_an_api_operation_on_a_missing_child_of_an_existing_object_answers_404(method, path, owner, campaign, api):
    """``/campaigns/<existing>/attachments/<missing>/``: the second id is the one that does not exist."""
    client = api(owner)
    client.raise_request_exception = False
    first, rest = path.split("}", 1)
    url = first.rsplit("{", 1)[0] + str(campaign.pk) + _fill(rest, "9223372036854775807")
    response = getattr(client, method)(url, {}, format="json")
    assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code} {response.content[:300]!r}"


def _page_patterns(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Routes of the pages (not the API, admin or static files) that take an argument."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith(("api/", "admin/")):
                continue
            found += _page_patterns(entry, route)
        elif isinstance(entry, URLPattern) and "<" in route:
            found.append(route)
    return found


PAGE_ROUTES = _page_patterns()


def _fill_page(route: str, value: str) -> str:
    has_id = bool(re.search(r"<(?:id|int|uuid):", route))

    def one(match: re.Match) -> str:
        converter = match.group(1) or "str"
        if converter == "uuid":
            return str(uuid.uuid4()) if value.isdigit() else value
        if converter == "str" and match.group(2) == "label":
            # an existing repo when an id follows (the id is what is missing), else a repo that does not exist
            return "demo" if has_id else f"no-such-repo-{value}"
        if converter == "str":
            return "approve"  # a verb
        return value

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", one, route)


@pytest.mark.parametrize("route", PAGE_ROUTES)
def test_a_page_for_a_missing_or_malformed_id_answers_the_sites_404_page(route, owner, demo_repo):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    for bad in BAD_IDS:
        url = _fill_page(route, bad)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code in (404, 405), f"{method.upper()} {url}: {response.status_code}"
            if response.status_code == 404:
                assert b"Page not found" in response.content, f"{method.upper()} {url}: not the site's 404 page"


def test_deleting_an_error_rule_twice_is_a_404_the_second_time(owner, api):
    from campaigns.execution.services import error_rule_create
    from campaigns.models import ErrorRule

    rule = error_rule_create(user=owner, message_regex="Timeout", action="auto-retry")
    client = api(owner)
    assert client.delete(f"/api/v1/error-rules/{rule.pk}/").status_code == 204
    assert client.delete(f"/api/v1/error-rules/{rule.pk}/").status_code == 404
    assert client.patch(f"/api/v1/error-rules/{rule.pk}/", {"enabled": False}, format="json").status_code == 404
    assert not ErrorRule.objects.exists()


def test_changing_a_column_a_tag_table_does_not_have_is_a_404_and_changes_nothing(owner, butler_repo, api):
    from tagging.services.tagtables import tagtable_create

    table = tagtable_create(
        user=owner,
        repo_label="demo",
        name="psf-wonky",
        key_dimensions=["exposure"],
        columns=[{"name": "seeing", "type": "float"}],
        polarity="reject",
    )
    client = api(owner)
    response = client.patch(
        f"/api/v1/tag-tables/{table.pk}/columns/nosuch/", {"description": "x", "version": table.version}, format="json"
    )
    assert response.status_code == 404
    assert "no column 'nosuch'" in response.json()["detail"]
    table.refresh_from_db()
    assert [c.name for c in table.columns.all()] == ["seeing"] and table.version == 1


def _filter_names() -> set[str]:
    from campaigns.filtersets import CampaignFilterSet
    from metrics.filtersets import MetricValueFilterSet
    from tagging.filtersets import ExposureFilterSet
    from tagging.filtersets_flags import BadDataFilterSet, FlagFilterSet

    sets = (CampaignFilterSet, MetricValueFilterSet, ExposureFilterSet, BadDataFilterSet, FlagFilterSet)
    return {name for fs in sets for name in fs.base_filters} | {"page", "version", "template", "format", "next"}


@pytest.mark.parametrize("value", ["NaN", "-inf", "99999999999999999999999", "1e400", "abc", "\x00"])
def test_pages_answer_hostile_query_values_without_a_server_error(owner, demo_repo, value):
    """Every page without a path argument (and the exposure list), with every filter name the app knows set to
    a hostile value: a page (with the filter problem said) or a 4xx, never a 500."""
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    query = {name: value for name in _filter_names()}
    # Not pages: the probes answer for the service (/readyz is 503 here, whose demo repo does not exist), not a filter.
    probes = {"/healthz", "/readyz", "/metrics"}
    routes = [f"/{r}" for r in _page_routes_without_arguments() if f"/{r}" not in probes]
    routes.append("/data/repos/demo/exposures/")
    failed = []
    for url in routes:
        response = client.get(url, query)
        if response.status_code >= 500:
            failed.append(f"{url}: {response.status_code}")
    assert not failed, failed


def _page_routes_without_arguments(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if not route.startswith(("api/", "admin/", "logout")):
                found += _page_routes_without_arguments(entry, route)
        elif isinstance(entry, URLPattern) and "<" not in route and not route.startswith(("api/", "admin/", "logout")):
            found.append(route)
    return found
