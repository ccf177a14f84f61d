"""Butler ``where`` expressions, checked with the Butler's own parser (imported lazily)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

_parser_lock = threading.Lock()


@dataclass(frozen=True)
class WhereError:
    message: str
    position: int | None = None


@functools.lru_cache(maxsize=1)
def _where_parser():
    from lsst.daf.butler.queries.expressions.parser import ParserYacc

    return ParserYacc()


def check_where_syntax(expression: str) -> WhereError | None:
    """Check a Butler ``where`` expression with the Butler's own parser; ``None`` when it parses."""
    if not expression.strip():
        return None
    from lsst.daf.butler.queries.expressions.parser.parserYacc import ParseError, ParserYaccError

    with _parser_lock:  # the PLY parser keeps state between calls
        try:
            _where_parser().parse(expression)
        except ParseError as exc:
            return WhereError(f"Syntax error near {exc.token!r} at character {exc.pos + 1}.", exc.pos)
        except ParserYaccError as exc:
            return WhereError(str(exc))
    return None
