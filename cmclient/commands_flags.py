"""`cm flags ...` (exposure flags, as in Rubin's exposure log) and `cm baddata ...` (the bad-data register)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

USAGE = """\
cm flags list [--repo LABEL] [--instrument I] [--obs-id TEXT] [--min-day-obs N] [--max-day-obs N] [--flag F ...]
              [--tag T ...] [--user U ...] [--text TEXT] [--all | --invalid] [--order-by F ...] [--limit N]
cm flags add --repo LABEL (--exposure ID | --obs-id OBS_ID | --day-obs N --seq-num N) --message TEXT
             [--flag none|junk|questionable] [--level N] [--tag T ...] [--link URL ...]
cm flags edit ID [--message TEXT] [--flag F] [--level N] [--tag T ...] [--link URL ...]
cm flags invalidate ID
cm flags history ID
cm flags import FILE --repo LABEL
cm baddata list [--repo LABEL] [--status S ...] [--search TEXT]
cm baddata add --repo LABEL --summary TEXT [--data-id k=v,k=v] [--dataset-type T] [--dataset-id UUID]
               [--collection C] [--explanation TEXT] [--link URL ...]
cm baddata set-status ID open|explained|fixed [--explanation TEXT] [--comment TEXT]"""


def _cli():
    from . import cli

    return cli


def cmd_flags_list(args: argparse.Namespace) -> int:
    cli = _cli()
    if args.limit < 1:
        raise cli.CliError("--limit must be at least 1")
    rows = cli._client(args).flags(
        limit=args.limit,
        repo=args.repo,
        instruments=args.instrument,
        obs_id=args.obs_id,
        min_day_obs=args.min_day_obs,
        max_day_obs=args.max_day_obs,
        exposure_flags=args.flag,
        tags=args.tag,
        user_ids=args.user,
        message_text=args.text,
        is_valid="any" if args.all else ("false" if args.invalid else None),
        order_by=args.order_by,
    )
    if args.json:
        cli._print_json(rows)
    elif not rows:
        cli._out("No flags.")
    else:
        cli._out(
            cli._table(
                ["ID", "OBS_ID", "FLAG", "LEVEL", "USER", "ADDED", "VALID", "MESSAGE"],
                [
                    [
                        r["id"][:8],
                        r["obs_id"],
                        r["exposure_flag"],
                        r["level"],
                        r["user_id"],
                        cli._when(r["date_added"]),
                        "yes" if r["is_valid"] else "no",
                        cli._short(r["message_text"], 60),
                    ]
                    for r in rows
                ],
            )
        )
    return 0


def _resolve_flag(client, flag_id: str) -> str:
    """A full flag id from a full id or the 8-character prefix `cm flags list` shows."""
    if len(flag_id) >= 32:
        return flag_id
    matches = [r["id"] for r in client.flags(is_valid="any") if r["id"].startswith(flag_id)]
    if len(matches) != 1:
        raise _cli().CliError(f"{'no' if not matches else 'more than one'} flag with an id starting {flag_id!r}")
    return matches[0]


def _show_flag(args: argparse.Namespace, flag: dict[str, Any], verb: str) -> int:
    cli = _cli()
    if args.json:
        cli._print_json(flag)
    else:
        cli._out(
            f"{verb} flag {flag['id']} on {flag['obs_id']}: {flag['exposure_flag']} - {cli._short(flag['message_text'], 60)}"
        )
    return 0


def cmd_flags_add(args: argparse.Namespace) -> int:
    flag = (
        _cli()
        ._client(args)
        .add_flag(
            args.repo,
            args.message,
            exposure=args.exposure,
            obs_id=args.obs_id,
            day_obs=args.day_obs,
            seq_num=args.seq_num,
            instrument=args.instrument,
            exposure_flag=args.flag,
            level=args.level,
            tags=args.tag,
            urls=args.link,
        )
    )
    return _show_flag(args, flag, "Added")


def cmd_flags_edit(args: argparse.Namespace) -> int:
    client = _cli()._client(args)
    flag = client.edit_flag(
        _resolve_flag(client, args.id),
        message_text=args.message,
        exposure_flag=args.flag,
        level=args.level,
        tags=args.tag,
        urls=args.link,
    )
    return _show_flag(args, flag, "New version:")


def cmd_flags_invalidate(args: argparse.Namespace) -> int:
    client = _cli()._client(args)
    return _show_flag(args, client.invalidate_flag(_resolve_flag(client, args.id)), "Invalidated")


def cmd_flags_history(args: argparse.Namespace) -> int:
    cli = _cli()
    client = cli._client(args)
    rows = client.flag_history(_resolve_flag(client, args.id))
    if args.json:
        cli._print_json(rows)
    else:
        cli._out(
            cli._table(
                ["ID", "FLAG", "USER", "ADDED", "VALID", "MESSAGE"],
                [
                    [
                        r["id"][:8],
                        r["exposure_flag"],
                        r["user_id"],
                        cli._when(r["date_added"]),
                        "yes" if r["is_valid"] else "no",
                        cli._short(r["message_text"], 60),
                    ]
                    for r in rows
                ],
            )
        )
    return 0


def cmd_flags_import(args: argparse.Namespace) -> int:
    cli = _cli()
    try:
        counts = cli._client(args).import_flags(args.repo, args.file)
    except OSError as exc:
        raise cli.CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except cli.ApiError as exc:
        lines, total = cli.upload_problems(exc.payload)
        if not lines:
            raise
        for line in lines[: cli.MAX_PROBLEM_LINES]:
            cli.sys.stderr.write(f"  {line}\n")
        raise cli.ApiError(
            f"{exc.message} ({total} problem{'s' if total != 1 else ''})", exc.status, exc.payload
        ) from None
    if args.json:
        cli._print_json(counts)
    else:
        cli._out(
            f"{counts['read']} messages read: {counts['created']} new, {counts['updated']} updated, "
            f"{counts['unchanged']} already here, {counts['not_in_repo']} about exposures not in {args.repo}."
        )
    return 0


def cmd_baddata_list(args: argparse.Namespace) -> int:
    cli = _cli()
    rows = cli._client(args).bad_data(repo=args.repo, status=args.status, q=args.search)
    if args.json:
        cli._print_json(rows)
    elif not rows:
        cli._out("No bad-data records.")
    else:
        cli._out(
            cli._table(
                ["ID", "STATUS", "REPO", "DATA ID / DATASET", "SOURCE", "UPDATED", "SUMMARY"],
                [
                    [
                        r["id"],
                        r["status"],
                        r["repo"],
                        r["key"] or r["dataset_type"],
                        r["source"],
                        cli._when(r["updated"]),
                        cli._short(r["summary"], 50),
                    ]
                    for r in rows
                ],
            )
        )
    return 0


def cmd_baddata_add(args: argparse.Namespace) -> int:
    from .flags import parse_data_id

    cli = _cli()
    try:
        data_id = parse_data_id(args.data_id) if args.data_id else None
    except ValueError as exc:
        raise cli.CliError(f"--data-id: {exc}") from None
    record = cli._client(args).add_bad_data(
        args.repo,
        args.summary,
        data_id=data_id,
        dataset_type=args.dataset_type,
        dataset_id=args.dataset_id,
        collection=args.collection,
        explanation=args.explanation,
        links=args.link,
    )
    if args.json:
        cli._print_json(record)
    else:
        cli._out(f"Recorded bad data {record['id']}: {record['key'] or record['dataset_type']} ({record['status']})")
    return 0


def cmd_baddata_set_status(args: argparse.Namespace) -> int:
    cli = _cli()
    record = cli._client(args).set_bad_data_status(
        args.id, args.status, explanation=args.explanation, comment=args.comment or ""
    )
    if args.json:
        cli._print_json(record)
    else:
        cli._out(f"Bad data {record['id']} is now {record['status']}.")
    return 0


def register(subparsers, common: argparse.ArgumentParser) -> None:
    """Add `cm flags` and `cm baddata` to the `cm` parser."""
    parser_class = type(common)

    def group(name: str, help_text: str) -> Callable[..., argparse.ArgumentParser]:
        top = subparsers.add_parser(name, help=help_text)
        actions = top.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=parser_class)

        def add(action: str, func: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
            p = actions.add_parser(action, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
            p.set_defaults(func=func)
            return p

        return add

    add = group("flags", "list, add, edit, invalidate and import exposure flags")
    p = add("list", cmd_flags_list, "list exposure flags (valid ones unless --all or --invalid)")
    p.add_argument("--repo", metavar="LABEL")
    p.add_argument("--instrument", action="append", metavar="I")
    p.add_argument("--obs-id", metavar="TEXT", help="text in the obs_id")
    p.add_argument("--min-day-obs", type=int, metavar="N", help="from night N (inclusive)")
    p.add_argument("--max-day-obs", type=int, metavar="N", help="before night N (exclusive, as in the exposure log)")
    p.add_argument("--flag", action="append", choices=["none", "junk", "questionable"])
    p.add_argument("--tag", action="append", metavar="T", help="any of these tags (repeat)")
    p.add_argument("--user", action="append", metavar="U")
    p.add_argument("--text", metavar="TEXT", help="text in the message")
    validity = p.add_mutually_exclusive_group()
    validity.add_argument("--all", action="store_true", help="valid and not valid (edited or deleted) messages")
    validity.add_argument("--invalid", action="store_true", help="only messages edited or deleted since")
    p.add_argument("--order-by", action="append", metavar="F", help="e.g. -date_added, seq_num (repeat)")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="at most N (default 200)")

    def flag_fields(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument("--message", required=required, metavar="TEXT")
        p.add_argument("--flag", choices=["none", "junk", "questionable"], default="none" if required else None)
        p.add_argument("--level", type=int, metavar="N", help="10 debug, 20 info, 30 warning, 40 error")
        p.add_argument("--tag", action="append", metavar="T")
        p.add_argument("--link", action="append", metavar="URL", help="a URL (repeat); the exposure log's urls")

    p = add("add", cmd_flags_add, "flag one exposure (staff only)")
    p.add_argument("--repo", required=True, metavar="LABEL")
    p.add_argument("--exposure", type=int, metavar="ID")
    p.add_argument("--obs-id", metavar="OBS_ID")
    p.add_argument("--day-obs", type=int, metavar="N")
    p.add_argument("--seq-num", type=int, metavar="N")
    p.add_argument("--instrument", metavar="I")
    flag_fields(p, True)
    p = add("edit", cmd_flags_edit, "replace a flag by a new version (the old one is kept, not valid)")
    p.add_argument("id", metavar="ID", help="flag id (or the first 8 characters `cm flags list` shows)")
    flag_fields(p, False)
    p = add("invalidate", cmd_flags_invalidate, "delete a flag (it is kept, marked not valid)")
    p.add_argument("id", metavar="ID")
    p = add("history", cmd_flags_history, "every version of a flag, oldest first")
    p.add_argument("id", metavar="ID")
    p = add("import", cmd_flags_import, "import a JSON export of exposure-log messages (all or nothing)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--repo", required=True, metavar="LABEL")

    add = group("baddata", "list, record and follow bad datasets and data IDs")
    p = add("list", cmd_baddata_list, "list bad-data records")
    p.add_argument("--repo", metavar="LABEL")
    p.add_argument("--status", action="append", choices=["open", "explained", "fixed"])
    p.add_argument("--search", metavar="TEXT")
    p = add("add", cmd_baddata_add, "record a data ID and/or a dataset as bad (staff only)")
    p.add_argument("--repo", required=True, metavar="LABEL")
    p.add_argument("--summary", required=True, metavar="TEXT", help="what is wrong, in one line")
    p.add_argument("--data-id", metavar="k=v,k=v", help="e.g. instrument=DemoCam,exposure=2025112100151,detector=4")
    p.add_argument("--dataset-type", metavar="T")
    p.add_argument("--dataset-id", metavar="UUID")
    p.add_argument("--collection", metavar="C")
    p.add_argument("--explanation", metavar="TEXT")
    p.add_argument("--link", action="append", metavar="URL")
    p = add("set-status", cmd_baddata_set_status, "move a record to open, explained or fixed")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("status", choices=["open", "explained", "fixed"])
    p.add_argument("--explanation", metavar="TEXT", help="needed to mark it explained (unless it has one)")
    p.add_argument("--comment", metavar="TEXT")
