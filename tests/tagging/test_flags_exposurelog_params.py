"""Every query parameter of Rubin's exposure log (``GET /messages``, lsst-ts/exposurelog
``routers/find_messages.py``) answers here what it means there.

Built like the exposure log's own ``tests/test_find_messages.py``: a seeded set of messages (edited and deleted
ones among them) imported as an exposure-log export, then, for each parameter, the answer is compared with a
predicate written from the log's documentation and code: the answer holds every message that satisfies it and
no other. Runs on PostgreSQL with the suite and on SQLite through tests/core/test_documented_filters_sqlite.py.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tagging.services.flags import flag_import

API = "/api/v1/flags/"
INSTRUMENTS = ("LSSTCam", "LATISS")
DAYS = (20251121, 20251122, 20251123)
TAGS = ("dome", "sky", "trail", "psf", "focus")
URLS = ("https://jira.example.org/browse/OBS-1", "https://rubin.example.org/log?night=1,2", "https://x.example/3")
USERS = ("alice", "bob", "carol")
AGENTS = ("LOVE", "script", "web")
FLAGS = ("none", "junk", "questionable")
WORDS = ("Dome", "light", "clouds", "Trail", "focus", "gradient", "PSF", "bad", "wind", "stray")


def _messages(n: int = 16, edited: int = 6, seed: int = 820) -> list[dict[str, Any]]:
    """``n`` exposure-log messages; ``edited`` of them are replaced by an edit (parent invalid), two deleted."""
    rng = random.Random(seed)
    start = datetime(2025, 11, 22, 3, 0, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for i in range(n):
        instrument, day = rng.choice(INSTRUMENTS), rng.choice(DAYS)
        seq = rng.randint(1, 40)
        out.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "site_id": "summit",
                "obs_id": f"{'MC' if instrument == 'LSSTCam' else 'AT'}_O_{day}_{seq:06d}",
                "instrument": instrument,
                "day_obs": day,
                "seq_num": seq,
                "message_text": " ".join(rng.sample(WORDS, 3)),
                "level": rng.choice((10, 20, 30, 40)),
                # The log stores tags in lower case; one capitalised tag shows the matching ignores case.
                "tags": [t.capitalize() if t == "focus" and i % 2 else t for t in rng.sample(TAGS, rng.randint(0, 3))],
                "urls": rng.sample(URLS, rng.randint(0, 2)),
                "user_id": rng.choice(USERS),
                "user_agent": rng.choice(AGENTS),
                "is_human": rng.random() < 0.7,
                "is_valid": True,
                "exposure_flag": rng.choice(FLAGS),
                "date_added": (start + timedelta(minutes=7 * i + rng.randint(0, 5))).isoformat(),
                "date_invalidated": None,
                "parent_id": None,
            }
        )
    for k, old in enumerate(out[:edited]):
        when = datetime.fromisoformat(old["date_added"]) + timedelta(hours=3, minutes=k)
        old["is_valid"], old["date_invalidated"] = False, when.isoformat()
        out.append(
            old
            | {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "message_text": old["message_text"] + " (edited)",
                "level": rng.choice((20, 30, 40)),
                "is_valid": True,
                "date_added": when.isoformat(),
                "date_invalidated": None,
                "parent_id": old["id"],
            }
        )
    for deleted in out[edited : edited + 2]:  # two more: deleted, not edited
        deleted["is_valid"] = False
        deleted["date_invalidated"] = (datetime.fromisoformat(deleted["date_added"]) + timedelta(hours=5)).isoformat()
    return out


def _parse(value: Any) -> Any:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and "T" in value else value


@pytest.fixture
def messages(owner, demo_repo) -> list[dict[str, Any]]:
    made = _messages()
    counts = flag_import(user=owner, repo_label="demo", data=made)
    assert counts["created"] == len(made)
    return made


def _found(client, params: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(API, {**params, "limit": 500})
    assert response.status_code == 200, (params, response.content[:400])
    return response.json()["results"]


def _check(client, messages, params: dict[str, Any], predicate: Callable[[dict], bool]) -> None:
    """The answer is exactly the messages satisfying ``predicate`` (and valid ones unless is_valid is given)."""
    if "is_valid" not in params:
        base = predicate

        def predicate(m: dict) -> bool:
            return base(m) and m["is_valid"]

    expected = {m["id"] for m in messages if predicate(m)}
    got = {m["id"] for m in _found(client, params)}
    assert got == expected, (
        f"{params}: {len(got)} found, {len(expected)} expected; extra {got - expected}, missing {expected - got}"
    )


def _cases(messages: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Callable[[dict], bool]]]:
    cases: list[tuple[dict[str, Any], Callable[[dict], bool]]] = []
    # min_<field> (inclusive) and max_<field> (exclusive); a null never matches.
    for field in ("level", "day_obs", "seq_num", "date_added", "date_invalidated"):
        values = sorted({_parse(m[field]) for m in messages if m[field] is not None})
        low, high = values[1], values[-1]
        wire = (lambda v: v.isoformat()) if isinstance(low, datetime) else (lambda v: v)
        cases.append(({f"min_{field}": wire(low)}, lambda m, f=field, v=low: m[f] is not None and _parse(m[f]) >= v))
        cases.append(({f"max_{field}": wire(high)}, lambda m, f=field, v=high: m[f] is not None and _parse(m[f]) < v))
        cases.append(({f"min_{field}": wire(low), f"max_{field}": wire(low)}, lambda m: False))  # an empty range
    # tags and urls: at least one of the values; exclude_tags: none of them. Tags compare in lower case.
    cases.append(({"tags": ["sky"]}, lambda m: "sky" in {t.lower() for t in m["tags"]}))
    cases.append(({"tags": ["FOCUS", "trail"]}, lambda m: bool({"focus", "trail"} & {t.lower() for t in m["tags"]})))
    cases.append(({"exclude_tags": ["dome"]}, lambda m: "dome" not in {t.lower() for t in m["tags"]}))
    cases.append(
        ({"exclude_tags": ["dome", "Focus"]}, lambda m: not ({"dome", "focus"} & {t.lower() for t in m["tags"]}))
    )
    cases.append(({"urls": [URLS[1]]}, lambda m: URLS[1] in m["urls"]))  # a URL with a comma stays whole
    cases.append(({"urls": [URLS[0], URLS[2]]}, lambda m: bool({URLS[0], URLS[2]} & set(m["urls"]))))
    # <field>s: the field is one of the values.
    for field, values in (
        ("instrument", ["LATISS"]),
        ("user_id", ["alice", "carol"]),
        ("user_agent", ["LOVE", "web"]),
        ("exposure_flag", ["junk", "questionable"]),
    ):
        cases.append(({f"{field}s": values}, lambda m, f=field, v=tuple(values): m[f] in v))
    # obs_id and message_text: contains, case-sensitive (SQL LIKE in the log).
    sample = messages[2]
    for field, text in (("obs_id", sample["obs_id"][3:9]), ("message_text", sample["message_text"].split()[1])):
        cases.append(({field: text}, lambda m, f=field, t=text: t in m[f]))
    cases.append(({"message_text": sample["message_text"].split()[1].upper() + "x"}, lambda m: False))
    # has_<field>: set or null.
    for field in ("date_invalidated", "parent_id"):
        cases.append(({f"has_{field}": "true"}, lambda m, f=field: m[f] is not None))
        cases.append(({f"has_{field}": "false"}, lambda m, f=field: m[f] is None))
    # three-state booleans; is_valid defaults to true (the _check wrapper adds it when absent).
    for field in ("is_human", "is_valid"):
        cases.append(({field: "true"}, lambda m, f=field: m[f] is True))
        cases.append(({field: "false"}, lambda m, f=field: m[f] is False))
        cases.append(({field: "either"}, lambda m: True))
    cases.append(({}, lambda m: True))  # no parameter: every valid message
    return cases


def test_every_exposure_log_parameter_alone_answers_what_the_log_answers(api, science_user, messages):
    client = api(science_user)
    for params, predicate in _cases(messages):
        _check(client, messages, params, predicate)


def test_exposure_log_parameters_combine_with_and(api, science_user, messages):
    client = api(science_user)
    cases = _cases(messages)
    rng = random.Random(5)
    pairs = [(a, b) for a in cases for b in cases if not set(a[0]) & set(b[0])]
    for (p1, f1), (p2, f2) in rng.sample(pairs, 60):
        _check(client, messages, {**p1, **p2}, lambda m, f1=f1, f2=f2: f1(m) and f2(m))


ORDERABLE = ("id", "level", "day_obs", "seq_num", "is_human", "is_valid", "date_added", "date_invalidated")


@pytest.mark.parametrize("key", [*ORDERABLE, *(f"-{k}" for k in ORDERABLE)])
def test_order_by_sorts_like_the_log_and_limit_offset_page_through_every_message_once(api, science_user, messages, key):
    client = api(science_user)
    params = {"order_by": key, "is_valid": "either"}
    everything = _found(client, params)
    assert len(everything) == len(messages)
    field, descending = key.lstrip("-"), key.startswith("-")
    # Nulls sort last ascending and first descending, as on PostgreSQL (the log's database), on SQLite too.
    keys = [(m[field] is None, _parse(m[field])) for m in everything]
    keys = [(null, None if null else value) for null, value in keys]
    present = [v for null, v in keys if not null]
    assert present == sorted(present, reverse=descending), key
    nulls = [null for null, _ in keys]
    assert nulls == sorted(nulls, reverse=descending), f"{key}: nulls out of place"
    paged: list[str] = []
    for offset in range(0, len(messages), 5):
        response = client.get(API, {**params, "limit": 5, "offset": offset})
        assert response.status_code == 200
        paged += [m["id"] for m in response.json()["results"]]
    assert paged == [m["id"] for m in everything]  # the order is repeatable (id is appended)


def test_the_default_order_is_by_id_as_in_the_log(api, science_user, messages):
    found = _found(api(science_user), {})
    assert [m["id"] for m in found] == sorted(m["id"] for m in found)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"order_by": "colour"}, "order_by"),
        ({"order_by": "site_id"}, "order_by"),  # the log's site_id is not kept here (one site)
        ({"tags": "not a tag"}, "tags"),
        ({"exclude_tags": "bad!"}, "exclude_tags"),
        ({"exposure_flags": "awful"}, "exposure_flags"),
        ({"is_valid": "maybe"}, "is_valid"),
        ({"has_parent_id": "perhaps"}, "has_parent_id"),
        ({"min_level": "NaN"}, "min_level"),
        ({"min_seq_num": "1.5"}, "min_seq_num"),
        ({"max_day_obs": "99999999999999999999999"}, "max_day_obs"),
        ({"min_date_added": "yesterday"}, "min_date_added"),
        ({"site_ids": "summit"}, "site_ids"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_or_unknown_parameter_is_a_400_naming_it(api, science_user, messages, params, name):
    response = api(science_user).get(API, params)
    assert response.status_code == 400, response.content
    assert name in response.json()


def test_limit_above_the_largest_page_answers_the_largest_page(api, science_user, messages):
    body = api(science_user).get(API, {"limit": 100000, "is_valid": "either"}).json()
    assert body["count"] == len(messages) and len(body["results"]) == len(messages)
