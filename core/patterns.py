"""Regular expressions written by users (error rules) are compiled and matched only here, with RE2.

Python's ``re`` backtracks: a pattern such as ``(x+x+)+y`` takes hours on a message of a few thousand
``x``, and a worker matching it is lost for that long. RE2 (``google-re2``) matches in time linear in the
text and bounded memory, and refuses what it cannot do that way (back-references, look-around,
possessive and atomic groups); such a pattern is refused when it is saved, with a message saying why.
"""

from __future__ import annotations

from typing import Any

import re2

#: Memory RE2 may use to compile one pattern (a pattern needing more is refused as too large).
MAX_PATTERN_MEMORY = 4 * 1024 * 1024

_HINT = (
    "Patterns run with RE2, which matches in linear time: back-references (\\1, (?P=name)), "
    "look-ahead and look-behind ((?=…), (?!…), (?<=…), (?<!…)), atomic groups and possessive repeats are not "
    "supported, repeats are at most {1000}, and \\Z is written \\z."
)


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message says why and what RE2 does not support."""


def _options(*, case_sensitive: bool = True) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.max_mem = MAX_PATTERN_MEMORY
    options.case_sensitive = case_sensitive
    return options


def compile_pattern(pattern: str, *, multiline: bool = True) -> Any:
    """The compiled pattern (``search``/``match`` like ``re``); ``multiline``: ``^``/``$`` at every line.

    Raises ``PatternError`` for a pattern RE2 cannot run.
    """
    text = f"(?m){pattern}" if multiline else pattern
    try:
        return re2.compile(text, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not a valid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(f"Not a valid regular expression: {reason}. {_HINT}") from None


def pattern_search(pattern: str, text: str, *, multiline: bool = True) -> bool:
    """Whether ``pattern`` occurs in ``text`` (RE2: linear in ``len(text)``)."""
    return compile_pattern(pattern, multiline=multiline).search(text) is not None


__all__ = ["MAX_PATTERN_MEMORY", "PatternError", "compile_pattern", "pattern_search"]
