"""core.limits: the streaming JSON scan agrees with a real parser whatever the block boundaries, limits are
exact (the limit itself passes, one more fails), and the YAML loader's refusals."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from core.limits import JsonLimiter, LimitExceeded, json_loads, limits, yaml_load
from core.yaml_loader import LimitedSafeLoader

TRICKY = ["\\", '"', "[", "]", "{", "}", ",", ":", "\\\\", '\\"', "a", " ", "é", "\n"]


def _random_value(rng: random.Random, depth: int):
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice([1, -2.5, True, None, "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 12)))])
    if rng.random() < 0.5:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {
        "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 5))): _random_value(rng, depth - 1)
        for _ in range(rng.randint(0, 4))
    }


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _longest_string(value) -> int:
    if isinstance(value, list):
        return max((_longest_string(v) for v in value), default=0)
    if isinstance(value, dict):
        keys = [_longest_string(k) for k in value]
        return max([*(_longest_string(v) for v in value.values()), *keys], default=0)
    return len(json.dumps(value, ensure_ascii=False).encode()) - 2 if isinstance(value, str) else 0


def _scan(data: bytes, lim, rng: random.Random) -> None:
    limiter = JsonLimiter(lim)
    at = 0
    while at < len(data):
        size = rng.choice([1, 2, 3, 7, 64, 4096])
        limiter.feed(data[at : at + size])
        at += size
    assert limiter.depth == 0 and not limiter.in_string


def test_the_scan_finds_the_exact_depth_and_longest_string_whatever_the_blocks(settings):
    rng = random.Random(20251121)
    base = limits()
    for _ in range(300):
        value = _random_value(rng, 6)
        data = json.dumps(value, ensure_ascii=False).encode()
        depth, longest = _depth(value), _longest_string(value)
        _scan(data, replace(base, max_depth=depth, max_string=longest), rng)
        if depth:
            with pytest.raises(LimitExceeded) as caught:
                _scan(data, replace(base, max_depth=depth - 1, max_string=longest), rng)
            assert caught.value.kind == "depth"
        if longest:
            with pytest.raises(LimitExceeded) as caught:
                _scan(data, replace(base, max_depth=depth, max_string=longest - 1), rng)
            assert caught.value.kind == "string"


def test_a_string_of_exactly_the_limit_passes_and_one_more_byte_fails():
    lim = replace(limits(), max_string=10)
    assert json_loads(b'["0123456789"]', lim) == ["0123456789"]
    with pytest.raises(LimitExceeded) as caught:
        json_loads(b'["0123456789a"]', lim)
    assert caught.value.message == ("line 1, byte 13: a string longer than 10 bytes (CM_INPUT_MAX_STRING_BYTES = 10).")


def test_rows_are_counted_and_named_by_their_index():
    # Elements are counted as the scan sees them: each key, each value after the first of a list, and each
    # container: {"a": 1, "b": 2} is 4, [1, 2] is 2, {"a": [1, 2, 3]} is 5.
    lim = replace(limits(), max_row_elements=4)
    limiter = JsonLimiter(lim, rows_at=1)
    first, second = b'[{"a": 1, "b": 2}, [1, 2],\n', b'{"a": [1, 2, 3]}]'
    limiter.feed(first)
    with pytest.raises(LimitExceeded) as caught:
        limiter.feed(second)
    fifth = len(first) + second.index(b", 3") + 1  # 1-based byte of the fifth element's comma
    assert caught.value.where == f"index 2 (line 2, byte {fifth})"
    assert caught.value.setting == "CM_INPUT_MAX_ROW_ELEMENTS"


def test_json_loads_refuses_nan_infinity_and_integers_beyond_64_bits():
    for text, message in (
        ("[NaN]", "NaN is not a number JSON allows"),
        ("[-Infinity]", "-Infinity is not a number JSON allows"),
        ("[9223372036854775808]", "the integer 9223372036854775808 is out of range (a 64-bit integer)"),
        ("[1e400]", "the number 1e400 is beyond the range of a 64-bit float"),
    ):
        with pytest.raises(ValueError) as caught:
            json_loads(text)
        assert str(caught.value) == message
    assert json_loads("[9223372036854775807, -9223372036854775808]") == [2**63 - 1, -(2**63)]
    assert json_loads("[NaN]", allow_nan=True)[0] != json_loads("[NaN]", allow_nan=True)[0]


def test_yaml_counts_the_expanded_document_against_the_size_limit():
    lim = replace(limits(), max_bytes=100, bytes_setting="CM_YAML_MAX_BYTES")
    loader = LimitedSafeLoader("a: " + "x" * 60 + "\nb: " + "y" * 60 + "\n", lim)
    with pytest.raises(LimitExceeded) as caught:
        loader.get_single_data()
    assert caught.value.message == (
        "line 2, column 4: the document expands to more than 100 bytes (CM_YAML_MAX_BYTES = 100)."
    )


def test_yaml_accepts_anchors_without_aliases_and_inline_merges():
    assert yaml_load("a: &x 1\nb:\n  <<: {c: 2}\n  d: 3\n") == {"a": 1, "b": {"c": 2, "d": 3}}


def test_yaml_refuses_a_duplicate_key_in_a_nested_mapping_naming_both_lines():
    with pytest.raises(LimitExceeded) as caught:
        yaml_load("steps:\n  - name: a\n    pipeline_subset: x\n    name: b\n")
    assert caught.value.message == "line 4: duplicate key 'name' (first given at line 2)."
