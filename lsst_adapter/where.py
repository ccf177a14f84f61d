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


def where_tree(expression: str) -> tuple | None:
    """A Butler ``where`` expression as a tree of plain tuples (``None`` when empty), for translators that
    answer simple expressions without a Butler (e.g. in SQL over a mirror of the registry):

    ``("and"|"or", a, b)``, ``("not", a)``, ``("cmp", op, a, b)``, ``("in", a, [values], not_in)``,
    ``("id", "exposure.day_obs")``, ``("num", "12")``, ``("str", "r")``, ``("range", start, stop, stride)``,
    ``("other", text)`` for anything else (bind names, times, regions, functions, arithmetic).
    Raises ``ValueError`` with the parser's message when the expression does not parse."""
    if not expression.strip():
        return None
    from lsst.daf.butler.queries.expressions.parser import exprTree as t
    from lsst.daf.butler.queries.expressions.parser.parserYacc import ParseError, ParserYaccError

    with _parser_lock:
        try:
            tree = _where_parser().parse(expression)
        except ParseError as exc:
            raise ValueError(f"Syntax error near {exc.token!r} at character {exc.pos + 1}.") from exc
        except ParserYaccError as exc:
            raise ValueError(str(exc)) from exc

    def plain(node) -> tuple:
        if isinstance(node, t.Parens):
            return plain(node.expr)
        if isinstance(node, t.BinaryOp):
            op = node.op.upper()
            if op in ("AND", "OR"):
                return (op.lower(), plain(node.lhs), plain(node.rhs))
            if op in ("=", "!=", "<", "<=", ">", ">="):
                return ("cmp", op, plain(node.lhs), plain(node.rhs))
            return ("other", str(node))
        if isinstance(node, t.UnaryOp) and node.op.upper() == "NOT":
            return ("not", plain(node.operand))
        if isinstance(node, t.IsIn):
            return ("in", plain(node.lhs), [plain(v) for v in node.values], bool(node.not_in))
        if isinstance(node, t.Identifier):
            return ("id", node.name)
        if isinstance(node, t.NumericLiteral):
            return ("num", node.value)
        if isinstance(node, t.StringLiteral):
            return ("str", node.value)
        if isinstance(node, t.RangeLiteral):
            return ("range", node.start, node.stop, node.stride)
        return ("other", str(node))

    return plain(tree)
