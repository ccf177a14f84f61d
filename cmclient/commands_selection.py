"""`cm select count|freeze RECIPE.json` and `cm select rerun SET`: the selection builder from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .client import ApiError, Client


def _recipe(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ApiError(f"cannot read {path}: {exc.strerror}") from None
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    return recipe


def _client(args: argparse.Namespace) -> Client:
    return Client(url=args.url, token=args.token)


def _ids(row: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items())


def cmd_count(args: argparse.Namespace) -> int:
    result = _client(args).selection_count(_recipe(args.recipe))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['count']:,} data IDs ({', '.join(result['dimensions'])}) of {result.get('start', 0):,}")
    for term in result["terms"]:
        note = " [answered by the Butler]" if term["engine"] == "butler" else ""
        print(f"  {term['index'] + 1:>2}. {term['after']:>12,}  {term['label']}{note}")
    if result.get("sample"):
        print(f"  then: {result['sample']}")
    for row in result.get("preview", [])[:10]:
        print(f"    {_ids(row)}")
    return 0


def cmd_freeze(args: argparse.Namespace) -> int:
    result = _client(args).selection_freeze(
        _recipe(args.recipe), name=args.name, reason=args.reason, visibility=args.visibility
    )
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"Stored {result['count']:,} data IDs as {result['name']} v{result['version']}: {result['url']}")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    result = _client(args).selection_rerun(args.set, version=args.version, repo=args.repo)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    head = f"{result['dataid_set']} v{result['version']}: frozen {result['frozen_count']:,}, now {result['current_count']:,}"
    if result["unchanged"]:
        print(f"{head}; unchanged.")
        return 0
    print(f"{head}; {result['added']:,} added, {result['removed']:,} removed.")
    for row in result["added_examples"]:
        print(f"  + {_ids(row)}")
    for row in result["removed_examples"]:
        print(f"  - {_ids(row)}")
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``cm select ...`` to the ``cm`` parser."""
    select = commands.add_parser("select", help="count, freeze and re-run selections (recipes in JSON)")
    actions = select.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(select))

    def add(name: str, func, text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
        p.set_defaults(func=func)
        return p

    p = add("count", cmd_count, "count what a recipe selects, after each term, with the first data IDs")
    p.add_argument("recipe", metavar="RECIPE.json", help="the recipe file ('-' for standard input)")
    p = add("freeze", cmd_freeze, "store what a recipe selects as a DataID set that records the recipe (staff)")
    p.add_argument("recipe", metavar="RECIPE.json", help="the recipe file ('-' for standard input)")
    p.add_argument("--name", required=True, help="name of the set (a new version if you already have one)")
    p.add_argument("--reason", required=True, help="why this selection")
    p.add_argument("--visibility", choices=["private", "public"])
    p = add("rerun", cmd_rerun, "run a frozen selection again and show what was added and removed since")
    p.add_argument("set", metavar="SET", help="name or id of the DataID set")
    p.add_argument("--version", type=int, metavar="N", help="version (default: the latest)")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo, if the name is used in several")
