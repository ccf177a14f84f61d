"""A YAML SafeLoader for user input: no aliases, no duplicate keys, and the limits of ``core.limits``.

- Aliases (``*name``) are refused: a few hundred bytes of aliases of aliases ("billion laughs") describe
  gigabytes once anything walks the result. Anchors alone are harmless and accepted; a ``<<`` merge of an
  inline mapping is too (a merge of an anchor needs an alias).
- A key given twice in one mapping is an error naming both lines (PyYAML silently keeps the last one).
- Nesting depth, node count, scalar length and the size of the composed document (the sum of its scalars,
  which without aliases is what the document expands to) are checked while composing, before anything is
  constructed; integers must fit 64 bits.

Pure Python (the C loader composes in C, where none of this can be checked); documents are small (1 MB).
"""

from __future__ import annotations

import yaml
from yaml.events import AliasEvent
from yaml.nodes import ScalarNode

from .limits import INT64_MAX, INT64_MIN, LimitExceeded, Limits


def _at(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"


class LimitedSafeLoader(yaml.SafeLoader):
    def __init__(self, stream, limits: Limits):
        super().__init__(stream)
        self._limits = limits
        self._depth = 0
        self._nodes = 0
        self._expanded = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise LimitExceeded(
                "alias",
                f"an alias (*{event.anchor}) is not accepted: write the value out (aliases can expand a small "
                "document without bound)",
                where=_at(event.start_mark),
            )
        event = self.peek_event()
        lim = self._limits
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > lim.max_depth:
                raise LimitExceeded(
                    "depth",
                    f"nested deeper than {lim.max_depth} levels",
                    where=_at(event.start_mark),
                    limit=lim.max_depth,
                )
            if self._nodes > lim.max_elements:
                raise LimitExceeded(
                    "elements",
                    f"more than {lim.max_elements:,} elements (values and keys)",
                    where=_at(event.start_mark),
                    limit=lim.max_elements,
                )
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, ScalarNode):
            size = len(node.value)
            if size > lim.max_string:
                raise LimitExceeded(
                    "string",
                    f"a value longer than {lim.max_string:,} characters",
                    where=_at(node.start_mark),
                    limit=lim.max_string,
                )
            self._expanded += size
            if self._expanded > lim.max_bytes:
                raise LimitExceeded(
                    "bytes",
                    f"the document expands to more than {lim.max_bytes:,} bytes",
                    where=_at(node.start_mark),
                    limit=lim.max_bytes,
                    setting=lim.bytes_setting,
                )
        return node

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise LimitExceeded(
                    "duplicate_key",
                    f"duplicate key {key_node.value!r} (first given at line {seen[key]})",
                    where=f"line {line}",
                )
            seen[key] = line
        return node

    def construct_yaml_int(self, node):
        text = str(node.value).replace("_", "").lstrip("+-")
        if len(text) > 25:  # no 64-bit integer is written with more digits, in any base YAML knows
            raise LimitExceeded(
                "integer", f"{node.value[:30]}... is out of range (a 64-bit integer)", where=_at(node.start_mark)
            )
        value = super().construct_yaml_int(node)
        if not INT64_MIN <= value <= INT64_MAX:
            raise LimitExceeded(
                "integer", f"{node.value} is out of range (a 64-bit integer)", where=_at(node.start_mark)
            )
        return value


LimitedSafeLoader.add_constructor("tag:yaml.org,2002:int", LimitedSafeLoader.construct_yaml_int)
