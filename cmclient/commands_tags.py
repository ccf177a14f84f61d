"""`cm tags ...`: list, show, create, upload, download and share tag tables.

cm tags list [--repo LABEL] [--polarity select|reject|neutral] [--owner U] [--search TEXT]
cm tags show NAME [--repo LABEL] [--rows N]
cm tags create --repo LABEL --name NAME --keys exposure[,detector] [--polarity P] --purpose TEXT
               [--column NAME:TYPE[:UNIT][:required]] ... [--description TEXT] [--public]
               (an enum column: quality:enum=good|wonky|junk)
cm tags add NAME KEY=VALUE ... [--reason TEXT] [--update] [--repo LABEL]
cm tags upload NAME FILE [--reason TEXT] [--drop-invalid] [--format csv|json] [--repo LABEL]
cm tags download NAME [--format csv|json] [-o FILE] [--repo LABEL]
cm tags share NAME --user U|--group G [--edit] [--revoke] [--repo LABEL]
"""

from __future__ import annotations

import argparse
from typing import Any

from .client import ApiError, upload_problems

TYPES = ("int", "float", "string", "bool", "enum", "datetime")


def parse_column(spec: str) -> dict[str, Any]:
    """``seeing:float:arcsec:required`` or ``quality:enum=good|wonky|junk`` as a column declaration."""
    from .cli import CliError

    parts = [p.strip() for p in spec.split(":")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise CliError(f"--column {spec!r}: write NAME:TYPE[:UNIT][:required], e.g. seeing:float:arcsec")
    column: dict[str, Any] = {"name": parts[0], "required": False}
    kind = parts[1]
    if kind.startswith("enum="):
        column["type"] = "enum"
        column["enum_values"] = [v.strip() for v in kind[5:].split("|") if v.strip()]
    elif kind in TYPES:
        column["type"] = kind
    else:
        raise CliError(f"--column {spec!r}: type {kind!r} is not one of {', '.join(TYPES)} (enum as enum=a|b|c)")
    for extra in parts[2:]:
        if extra.lower() == "required":
            column["required"] = True
        elif extra:
            column["unit"] = extra
    return column


def cmd_list(args: argparse.Namespace) -> int:
    from .cli import _client, _out, _print_json, _table, _when

    rows = _client(args).tag_tables(repo=args.repo, polarity=args.polarity, owner=args.owner, q=args.search)
    if args.json:
        _print_json(rows)
    elif not rows:
        _out("No tag tables.")
    else:
        _out(
            _table(
                ["NAME", "REPO", "POLARITY", "KEYS", "ROWS", "OWNER", "VISIBILITY", "UPDATED"],
                [
                    [
                        r["name"],
                        r["repo"],
                        r["polarity"],
                        ",".join(r["key_dimensions"]),
                        r["row_count"],
                        r["owner"],
                        r["visibility"],
                        _when(r.get("updated")),
                    ]
                    for r in rows
                ],
            )
        )
    return 0


def _column_text(c: dict[str, Any]) -> str:
    kind = f"enum({'|'.join(c.get('enum_values') or [])})" if c["type"] == "enum" else c["type"]
    notes = [n for n in (c.get("unit") and f"[{c['unit']}]", c.get("required") and "required") if n]
    if c.get("retired"):
        notes.append("retired")
    return f"{c['name']}: {kind}" + (f" {' '.join(notes)}" if notes else "")


def cmd_show(args: argparse.Namespace) -> int:
    from .cli import _client, _indent, _out, _print_json, _table, _when

    client = _client(args)
    table = client.tag_table(args.name, args.repo)
    rows = client.tag_rows(table["id"])[: args.rows] if args.rows else []
    if args.json:
        _print_json({**table, "rows": rows})
        return 0
    fields = [
        ("Name", f"{table['name']}  (id {table['id']})"),
        ("Repo", table["repo"]),
        ("Owner", table["owner"]),
        ("Polarity", table["polarity"]),
        ("Visibility", table["visibility"]),
        ("Keyed by", ", ".join(table["key_dimensions"])),
        ("Rows", f"{table['row_count']:,}"),
        ("Updated", f"{_when(table.get('updated'))} (version {table['version']})"),
    ]
    width = max(len(label) for label, _ in fields) + 1
    lines = [f"{(label + ':').ljust(width)}  {value}" for label, value in fields]
    lines += ["", "Purpose:", *_indent(table.get("purpose") or "-"), "", "Columns:"]
    lines += [f"  {_column_text(c)}" for c in table["columns"]] or ["  (none)"]
    if rows:
        names = [c["name"] for c in table["columns"] if not c.get("retired")]
        lines += ["", f"First {len(rows)} rows:"]
        body = _table(
            [*table["key_dimensions"], *names],
            [
                [*r["data_id"].values(), *("" if r["values"].get(n) is None else r["values"][n] for n in names)]
                for r in rows
            ],
        )
        lines += ["  " + line for line in body.splitlines()]
    _out("\n".join(lines))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from .cli import _client, _out, _print_json

    columns = [parse_column(spec) for spec in args.column or []]
    keys = [k.strip() for k in args.keys.split(",") if k.strip()]
    table = _client(args).create_tag_table(
        args.name,
        repo=args.repo,
        key_dimensions=keys,
        columns=columns,
        polarity=args.polarity,
        purpose=args.purpose,
        description=args.description or "",
        public=args.public,
    )
    if args.json:
        _print_json(table)
    else:
        _out(
            f"Created tag table {table['name']} in {table['repo']} (id {table['id']}), keyed by "
            f"{', '.join(table['key_dimensions'])}, {len(table['columns'])} column{'s' if len(table['columns']) != 1 else ''}."
        )
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """One row: its data ID and values as KEY=VALUE (the server tells data-ID keys from columns)."""
    from .cli import CliError, _client, _fail, _out, _print_json

    row: dict[str, Any] = {}
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{pair!r}: write KEY=VALUE, e.g. exposure=2025112100150 or seeing=1.2")
        row[key.strip()] = value.strip() if value.strip() != "" else None
    try:
        result = _client(args).add_tag_rows(
            args.name, [row], reason=args.reason or "", update=args.update, repo=args.repo
        )
    except ApiError as exc:
        payload = exc.payload if isinstance(exc.payload, dict) else {}
        if exc.status == 409 and payload.get("code") == "row_exists":
            _fail(f"{payload.get('detail')} Add --update to change it.")
            return 1
        raise
    if args.json:
        _print_json(result)
        return 0
    key = result["keys"][0] if result.get("keys") else "the row"
    done = "added" if result["created"] else "updated" if result["updated"] else "unchanged"
    _out(f"{args.name}: {key} {done}.")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    import sys

    from .cli import _client, _fail, _out, _print_json, _print_problems

    try:
        result = _client(args).upload_tag_rows(
            args.name,
            args.file,
            reason=args.reason or "",
            drop_invalid=args.drop_invalid,
            format=args.format,
            repo=args.repo,
        )
    except ApiError as exc:
        lines, total = upload_problems(exc.payload)
        detail = exc.payload.get("detail") if isinstance(exc.payload, dict) else None
        if not lines or not isinstance(detail, str):
            raise
        _fail(detail)
        _print_problems(lines, total, sys.stderr)
        sys.stderr.flush()
        return 1
    if args.json:
        _print_json(result)
        return 0
    _out(
        f"{args.name}: {result['created']:,} rows added, {result['updated']:,} changed, "
        f"{result['unchanged']:,} unchanged"
        + (f"; {result['dropped']:,} invalid dropped." if result["dropped"] else ".")
    )
    if result.get("dropped_report"):
        lines, total = upload_problems({"errors": result["dropped_report"], "error_total": result["dropped"]})
        _out("Dropped:")
        _print_problems(lines, total, sys.stdout)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .cli import _client, download_format, write_download

    fmt = download_format(args, ("csv", "json"))
    return write_download(args, _client(args).download_tag_table(args.name, format=fmt, repo=args.repo), fmt)


def cmd_share(args: argparse.Namespace) -> int:
    from .cli import _client, _out, _print_json

    table = _client(args).share_tag_table(
        args.name,
        user=args.user,
        group=args.group,
        permission="change" if args.edit else "view",
        grant=not args.revoke,
        repo=args.repo,
    )
    if args.json:
        _print_json(table)
        return 0
    who = f"user {args.user}" if args.user else f"group {args.group}"
    verb = "edit" if args.edit else "view"
    if args.revoke:
        _out(
            f"{who} may no longer {'edit or view' if args.edit else verb} {table['name']} (unless it is public or shared otherwise)."
        )
    else:
        _out(f"{who} may now {verb} {table['name']}.")
    return 0


def register(commands: Any) -> None:
    """Add `cm tags ...` to the `cm` parser's subcommands."""
    from .cli import _Parser

    common = _Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="server address (default: CM_URL, then `cm login`)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: CM_TOKEN, then `cm login`)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    tags = commands.add_parser("tags", help="list, show, create, upload, download and share tag tables")
    sub = tags.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

    def add(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
        p.set_defaults(func=func)
        return p

    def name_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", metavar="NAME", help="table name (or id)")
        p.add_argument("--repo", metavar="LABEL", help="Butler repo label, if several repos have a table of that name")

    p = add("list", cmd_list, "list the tag tables you may see")
    p.add_argument("--repo", metavar="LABEL")
    p.add_argument("--polarity", choices=["select", "reject", "neutral"])
    p.add_argument("--owner", metavar="U", help="owner's username")
    p.add_argument("--search", metavar="TEXT", help="text in the name, purpose or description")

    p = add("show", cmd_show, "show a tag table, its columns and its first rows")
    name_arg(p)
    p.add_argument("--rows", type=int, default=10, metavar="N", help="show the first N rows (default 10; 0: none)")

    p = add("create", cmd_create, "create a tag table (staff only)")
    p.add_argument("--repo", required=True, metavar="LABEL", help="Butler repo label")
    p.add_argument("--name", required=True)
    p.add_argument("--keys", required=True, metavar="DIMS", help="key dimensions, e.g. exposure or visit,detector")
    p.add_argument("--polarity", choices=["select", "reject", "neutral"], default="neutral")
    p.add_argument("--purpose", required=True, metavar="TEXT", help="what the rows are for")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--public", action="store_true", help="every logged-in user may see it (default: private)")
    p.add_argument(
        "--column",
        action="append",
        metavar="SPEC",
        help="NAME:TYPE[:UNIT][:required]; TYPE int, float, string, bool, datetime or enum=a|b|c (repeat)",
    )

    p = add("add", cmd_add, "add one row (refused if its data ID has a row, unless --update)")
    name_arg(p)
    p.add_argument(
        "pairs", nargs="+", metavar="KEY=VALUE", help="the data ID (exposure=..., obs_id=..., detector=...) and values"
    )
    p.add_argument("--reason", metavar="TEXT", help="kept in the row's history")
    p.add_argument("--update", action="store_true", help="if the data ID already has a row, change its values")

    p = add("upload", cmd_upload, "add or change rows from a CSV or JSON file (nothing stored if a row is bad)")
    name_arg(p)
    p.add_argument("file", metavar="FILE", help="CSV or JSON: data-ID columns and table columns by name")
    p.add_argument("--reason", metavar="TEXT", help="kept in every row's history")
    p.add_argument("--drop-invalid", action="store_true", help="store the valid rows and report the others")
    p.add_argument("--format", choices=["csv", "json"], help="if the file name does not tell")

    p = add("download", cmd_download, "write the rows of a tag table as CSV or JSON")
    name_arg(p)
    p.add_argument("--format", choices=["csv", "json"], help="default: from the -o file name, else csv")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    p = add("share", cmd_share, "let a user or a group see (or edit) a tag table")
    name_arg(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="U", help="username")
    who.add_argument("--group", metavar="G", help="group name")
    p.add_argument("--edit", action="store_true", help="may also change it (default: view only)")
    p.add_argument("--revoke", action="store_true", help="take the permission back")
