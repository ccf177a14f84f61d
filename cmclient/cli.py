"""The ``cm`` command: campaigns from the terminal, through the REST API.

Every expected failure prints one line, ``cm: error: <reason>``, on stderr
and exits non-zero (1; 2 for a command line that does not parse).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml

from . import __version__, commands_flags, commands_inbox, commands_selection
from .client import ApiError, Client, config_path, save_config, upload_problems

MAX_PROBLEM_LINES = 20

# Fields given as comma-separated lists with --set, and fields kept as text even if they look like YAML.
LIST_FIELDS = {"input_collections", "collaborators"}
TEXT_FIELDS = {
    "name",
    "campaign_type",
    "reason",
    "description",
    "owner",
    "visibility",
    "butler_repo",
    "pipeline",
    "data_query",
    "output_collection",
    "scope",
}

USAGE = """\
cm login --url URL [--token TOKEN | --username USER [--password-stdin]]
cm logout                              (revokes your token on the server and forgets it here)
cm campaign list [--type T] [--status S] [--owner USER] [--search TEXT] [--repo LABEL] [--sort KEY] [--archived]
cm campaign show NAME
cm campaign create --from-yaml FILE|-
cm campaign edit NAME [--set FIELD=VALUE ...] [--from-yaml FILE|-] [--comment TEXT] [--version N]
                  (--set steps.STEP.split='{by: tract, skymap: NAME}' or steps.STEP.where=EXPR changes one step)
cm campaign clone NAME NEW_NAME [--output-collection C] [--comment TEXT]
cm campaign export NAME [-o FILE]
cm campaign status NAME [STATUS] [--comment TEXT]     (without STATUS: steps, groups and failures of the run)
cm campaign plan NAME                  (groups and estimated quanta that launch would make, or made and ran)
cm campaign launch|pause|resume NAME [--comment TEXT]
cm campaign archive NAME [--comment TEXT]
cm campaign restore NAME
cm campaign history NAME
cm campaign steps NAME
cm inbox [--mine] [--kind approval|quality_gate|failed_group|review|paused]
cm step approve CAMPAIGN STEP --comment TEXT
cm group show CAMPAIGN STEP GROUP
cm group retry|rescue|cancel CAMPAIGN STEP GROUP [--comment TEXT]
cm group accept CAMPAIGN STEP GROUP --comment TEXT
cm rules list
cm select count|freeze RECIPE.json [--name N --reason R]   cm select rerun SET [--version N]
cm rules add --regex REGEX --action auto-retry|review|fail|pause [--task LABEL] [--max-retries N] [--comment TEXT]
cm rules delete ID
cm dataids list [--repo LABEL] [--search TEXT]
cm dataids show NAME [--repo LABEL]
cm dataids upload FILE --repo LABEL --name NAME --reason TEXT [--description TEXT] [--public] [--drop-invalid]
                  [--format F] [--dimensions a,b] [--comment TEXT]
cm dataids query --where EXPR --dimensions exposure,detector --repo LABEL --name NAME --reason TEXT
                 [--description TEXT] [--public] [--comment TEXT]
cm dataids download NAME [--format json|csv|ecsv] [--version N] [-o FILE] [--repo LABEL]
cm dataids tag NAME --dataset-type TYPE --collections C1[,C2] [--collection C] [--version N] [--wait [--timeout S]]
cm dataids share NAME --user U|--group G [--edit] [--revoke] [--repo LABEL]
cm dataids combine union|intersection|difference A B [C ...] --name NEW --reason TEXT [--repo LABEL]
cm tags list|show|create|add|upload|download|share ...   (see `cm tags --help`)
cm metrics ingest FILE [--repo LABEL] (--campaign C --run R | --source LABEL) [--data-id K=V ...]
                  [--format bundle|flat] [--action NAME] [--units JSON]
cm metrics list [--campaign C] [--metric M] [--exposure N] [--band B] [--night-from D] [--night-to D] [--names]
cm metrics reobserve --campaign C --metric M --op OP --threshold X [--band B] [--format json|csv] [-o FILE]
cm exposures [--repo LABEL] [--night N] [--band B] [--type T] [--target TEXT] [--search TEXT] [--limit N]

Options for every command: --url URL, --token TOKEN, --json (machine-readable output).
URL and token come from these options, else CM_URL and CM_TOKEN, else the file
written by `cm login` (CM_CONFIG, default ~/.config/cm/config.json)."""


class CliError(Exception):
    """An expected failure of the command line itself (bad input file, bad --set)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``cm: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"cm: error: {message} (see `{self.prog} --help`)\n")


# --- output --------------------------------------------------------------------------------------


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _print_json(data: Any) -> None:
    _out(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last column is not padded."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _when(value: str | None) -> str:
    """An API timestamp as local "YYYY-MM-DD HH:MM"."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def _short(value: Any, limit: int = 40) -> str:
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_text(campaign: dict[str, Any]) -> str:
    return f"{campaign['status']} (archived)" if campaign.get("archived") else str(campaign["status"])


def _show(c: dict[str, Any]) -> str:
    """A campaign as readable text."""
    bps = c.get("bps") or {}
    progress = c.get("progress") or {}
    fields: list[tuple[str, str]] = [
        ("Name", f"{c['name']}  (id {c['id']}, version {c['version']})"),
        ("Type", c.get("campaign_type", "")),
        ("Status", _status_text(c)),
        ("Owner", f"{c.get('owner')} (defined by {c.get('definer')})"),
        ("Collaborators", ", ".join(c.get("collaborators") or []) or "-"),
        ("Visibility", c.get("visibility", "")),
        ("Butler repo", c.get("butler_repo", "")),
        ("Pipeline", c.get("pipeline", "")),
        ("Input collections", ", ".join(c.get("input_collections") or []) or "-"),
        ("Data query", c.get("data_query") or "-"),
        ("Output collection", c.get("output_collection") or "-"),
        ("BPS", ", ".join(f"{k}={_short(v, 60)}" for k, v in bps.items()) or "-"),
        ("Scope", c.get("scope") or "-"),
        (
            "Progress",
            f"{progress.get('done', 0)}/{progress.get('total', 0)} groups done, {progress.get('failed', 0)} failed",
        ),
        ("Created", _when(c.get("created"))),
        ("Updated", _when(c.get("updated"))),
        ("You may edit", "yes" if c.get("can_edit") else "no"),
    ]
    width = max(len(label) for label, _ in fields) + 1
    lines = [f"{(label + ':').ljust(width)}  {value}" for label, value in fields]
    for link in c.get("links") or []:
        lines.append(f"{'Link:'.ljust(width)}  {link.get('label')}: {link.get('url')}")
    lines += ["", "Reason:", *_indent(c.get("reason") or "-")]
    if c.get("description"):
        lines += ["", "Description:", *_indent(c["description"])]
    steps = c.get("steps") or []
    lines += ["", f"Steps ({len(steps)}):"]
    for i, step in enumerate(steps, 1):
        notes = []
        if step.get("pipeline_subset"):
            notes.append(f"subset {step['pipeline_subset']}")
        if step.get("depends_on"):
            notes.append("after " + ", ".join(step["depends_on"]))
        if step.get("requires_approval"):
            notes.append("needs approval")
        notes.append(split_text(step.get("split")))
        if step.get("where"):
            notes.append(f"where {step['where']}")
        groups = step.get("groups") or []
        if groups:
            notes.append(f"{len(groups)} groups")
        lines.append(f"  {i}. {step['name']}" + (f"  ({'; '.join(notes)})" if notes else ""))
    return "\n".join(lines)


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.rstrip().splitlines()] or ["  -"]


def _changes_text(entry: dict[str, Any]) -> str:
    if entry.get("lines"):  # the server words them (states, splits, steps), as the campaign page does
        return _short("; ".join(entry["lines"]), 80)
    changes = entry.get("changes") or {}
    if entry.get("action") == "create":
        return _short(", ".join(changes), 60)
    parts = []
    for field, value in changes.items():
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(v is None or isinstance(v, str | int | float | bool) for v in value)
            and all(len(str(v)) <= 30 for v in value)
        ):
            old, new = ("-" if v in (None, "") else str(v) for v in value)
            parts.append(f"{field}: {old} → {new}")
        else:
            parts.append(field)
    return _short(", ".join(parts), 80)


# --- input ---------------------------------------------------------------------------------------


def _read_text(path: str) -> tuple[str, str]:
    """The text of ``path`` (``-`` is stdin) and a label for messages."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(path).read_text(encoding="utf-8"), path
    except FileNotFoundError:
        raise CliError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"cannot read {path}: it is a directory") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"cannot read {path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _load_yaml_mapping(text: str, label: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise CliError(f"{label}: invalid YAML at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{label}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{label}: expected a mapping of campaign fields, got {type(data).__name__}")
    return data


def _scalar(raw: str) -> Any:
    """A --set value as YAML (``4096`` is a number, ``true`` a boolean, ``[a, b]`` a list); else the text."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _apply_sets(items: Sequence[str], fields: dict[str, Any], current: dict[str, Any]) -> None:
    """``--set field=value`` (and ``--set bps.request_memory=4096``) into ``fields``."""
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--set needs FIELD=VALUE, got {item!r}")
        if key in ("version", "comment"):
            raise CliError(f"use --{key} instead of --set {key}=...")
        path = key.split(".")
        top = path[0]
        value: Any
        if key in LIST_FIELDS:
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif key in TEXT_FIELDS:
            value = raw
        else:
            value = _scalar(raw)
        if len(path) == 1:
            fields[key] = value
            continue
        if top == "steps":
            _set_step(key, path, value, fields, current)
            continue
        # A dotted key changes one entry of a mapping field and keeps the others.
        if top not in fields:
            base = current.get(top)
            if base is not None and not isinstance(base, dict):
                raise CliError(f"--set {key}: {top} is not a mapping")
            fields[top] = json.loads(json.dumps(base or {}))
        target = fields[top]
        for part in path[1:-1]:
            if not isinstance(target.get(part, {}), dict):
                raise CliError(f"--set {key}: {part} is not a mapping")
            target = target.setdefault(part, {})
        target[path[-1]] = value


STEP_KEYS = (
    "name", "pipeline_subset", "depends_on", "requires_approval", "where", "split", "quality_gates", "metric_input",
)  # fmt: skip


def _set_step(key: str, path: list[str], value: Any, fields: dict[str, Any], current: dict[str, Any]) -> None:
    """``--set steps.STEP.split='{by: band}'`` (or ``steps.STEP.split.max_size=20``, ``steps.STEP.where=...``):
    one part of one step, the others sent back as they are."""
    if len(path) < 3:
        raise CliError(f"--set {key}: name a step and a field, e.g. steps.step3.split='{{by: tract, skymap: NAME}}'")
    if "steps" not in fields:
        fields["steps"] = [{k: step[k] for k in STEP_KEYS if k in step} for step in current.get("steps") or []]
    step = next((s for s in fields["steps"] if s.get("name") == path[1]), None)
    if step is None:
        names = ", ".join(s.get("name", "?") for s in fields["steps"]) or "none"
        raise CliError(f"--set {key}: the campaign has no step {path[1]!r} (steps: {names})")
    if path[2] not in STEP_KEYS:
        raise CliError(f"--set {key}: a step has no field {path[2]!r} ({', '.join(STEP_KEYS)})")
    if path[2] == "where" and not isinstance(value, str):
        value = "" if value is None else str(value)
    target = step
    for part in path[2:-1]:
        inner = target.get(part)
        if inner is None:
            inner = target[part] = {}
        elif not isinstance(inner, dict):
            raise CliError(f"--set {key}: {part} is not a mapping")
        target = inner
    target[path[-1]] = value


def split_text(split: Any) -> str:
    """A step's split in a few words (the server's own wording is in the plan)."""
    split = split if isinstance(split, dict) and split else {"by": "night"}
    by = split.get("by", "night")
    if by in ("exposure", "visit", "detector"):
        return f"by {by} (<= {split.get('max_size', 50)})"
    if by == "tract":
        return f"by tract of {split.get('skymap', '?')}" + (
            f" (<= {split['max_size']} patches)" if split.get("max_size") else ""
        )
    if by == "list":
        return f"list of {len(split.get('groups') or [])}"
    if by == "dataid_set":
        return (
            f"chunks of {split.get('dataid_set', '?')}@v{split.get('version', '?')} (<= {split.get('max_size', '?')})"
        )
    return f"by {by}"


# --- commands ------------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Client:
    return Client(url=args.url, token=args.token)


def cmd_login(args: argparse.Namespace) -> int:
    url = (args.url or os.environ.get("CM_URL") or "").rstrip("/")
    if not url:
        raise CliError("cm login needs --url URL (the address of the campaign manager)")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--url must start with http:// or https://, got {url!r}")
    if args.token and args.username:
        raise CliError("give either --token or --username, not both")
    client = Client(url=url, use_config=False)
    username = args.username
    if args.token:
        client.token = args.token
        try:
            client._json("GET", "campaigns/", params={"page_size": 1})
        except ApiError as exc:
            if exc.status in (401, 403):
                raise ApiError(f"the server refused this token: {exc.message}", exc.status, exc.payload) from None
            raise
        token = args.token
    else:
        if not username:
            if not sys.stdin.isatty():
                raise CliError("cm login needs --token TOKEN or --username USER")
            username = input("Username: ").strip()
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            try:
                password = getpass.getpass(f"Password for {username} at {url}: ")
            except EOFError:
                password = ""
        if not password:
            raise CliError("no password given")
        token = client.obtain_token(username, password)
    path = save_config(url, token)
    if args.json:
        _print_json({"url": url, "username": username, "config": str(path)})
    else:
        who = f" as {username}" if username else ""
        _out(f"Logged in to {url}{who}. Token saved in {path} (readable only by you).")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    client = _client(args)
    client.revoke_token()
    path = config_path()
    forgotten = False
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and saved.get("token") == client.token:
            path.unlink()
            forgotten = True
    except (OSError, ValueError):
        pass
    if args.json:
        _print_json({"url": client.url, "revoked": True, "config_removed": str(path) if forgotten else None})
    else:
        _out(f"Revoked your API token at {client.url}" + (f" and removed {path}." if forgotten else "."))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = _client(args).campaigns(
        campaign_type=args.type or None,
        status=args.status or None,
        owner=args.owner,
        q=args.search,
        butler_repo=args.repo,
        sort=args.sort,
        archived="all" if args.archived else None,
    )
    if args.json:
        _print_json(rows)
    elif not rows:
        _out("No campaigns.")
    else:
        _out(
            _table(
                ["NAME", "TYPE", "STATUS", "OWNER", "UPDATED"],
                [[r["name"], r["campaign_type"], _status_text(r), r["owner"], _when(r["updated"])] for r in rows],
            )
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    campaign = _client(args).campaign(args.name)
    _print_json(campaign) if args.json else _out(_show(campaign))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    text, label = _read_text(args.from_yaml)
    try:
        campaign = _client(args).create_campaign_from_yaml(text)
    except ApiError as exc:
        if exc.status == 400:
            message = exc.message[len("yaml: ") :] if exc.message.startswith("yaml: ") else exc.message
            raise ApiError(f"{label}: {message}", exc.status, exc.payload) from None
        raise
    if args.json:
        _print_json(campaign)
    else:
        steps = len(campaign.get("steps") or [])
        _out(
            f"Created campaign {campaign['name']} (id {campaign['id']}, version {campaign['version']}, {steps} steps)."
        )
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    client = _client(args)
    fields: dict[str, Any] = {}
    if args.from_yaml:
        text, label = _read_text(args.from_yaml)
        fields.update(_load_yaml_mapping(text, label))
    if not fields and not args.set:
        raise CliError("nothing to change: give --set FIELD=VALUE or --from-yaml FILE")
    current = client.campaign(args.name)
    _apply_sets(args.set or [], fields, current)
    version = args.version if args.version is not None else current["version"]
    updated = client.update_campaign(current["id"], version=version, comment=args.comment or "", **fields)
    if args.json:
        _print_json(updated)
    elif updated["version"] == current["version"]:
        _out(f"No change: {updated['name']} is still at version {updated['version']}.")
    else:
        _out(f"Updated {updated['name']}: version {current['version']} → {updated['version']}.")
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    campaign = _client(args).clone_campaign(
        args.name, args.new_name, comment=args.comment or "", output_collection=args.output_collection or ""
    )
    if args.json:
        _print_json(campaign)
    else:
        _out(
            f"Cloned {args.name} to {campaign['name']} (id {campaign['id']}, status {campaign['status']}), "
            f"writing to {campaign.get('output_collection') or '-'}."
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    text = _client(args).export_campaign(args.name)
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.json:
        _print_json({"name": args.name, "file": args.output})
    else:
        _out(f"Exported {args.name} to {args.output}.")
    return 0


def _set_status(args: argparse.Namespace) -> int:
    client = _client(args)
    before = client.campaign(args.name)
    after = client.set_status(before["id"], args.status, comment=args.comment or "")
    if args.json:
        _print_json(after)
    elif after["status"] == before["status"]:
        _out(f"{after['name']} is already {after['status']}.")
    else:
        _out(f"{after['name']}: {before['status']} → {after['status']} (version {after['version']}).")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    client = _client(args)
    before = client.campaign(args.name)
    after = client.archive_campaign(before["id"], comment=args.comment or "")
    if args.json:
        _print_json(after)
    elif before.get("archived"):
        _out(f"{after['name']} was already archived.")
    else:
        _out(f"Archived {after['name']} (version {after['version']}); `cm campaign restore {after['name']}` undoes it.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    campaign = _client(args).restore_campaign(args.name)
    _print_json(campaign) if args.json else _out(f"Restored {campaign['name']} (version {campaign['version']}).")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    entries = _client(args).history(args.name)
    if args.json:
        _print_json(entries)
        return 0
    _out(
        _table(
            ["WHEN", "WHO", "ACTION", "VERSION", "CHANGES", "COMMENT"],
            [
                [
                    _when(e["at"]),
                    e.get("actor") or "system",
                    e["action"],
                    e["version"],
                    _changes_text(e),
                    _short(e.get("comment") or "", 60),
                ]
                for e in entries
            ],
        )
    )
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    steps = _client(args).steps(args.name)
    if args.json:
        _print_json(steps)
        return 0
    _out(
        _table(
            ["#", "STEP", "SUBSET", "AFTER", "APPROVAL", "SPLIT", "WHERE", "GROUPS"],
            [
                [
                    s["position"] + 1,
                    s["name"],
                    s.get("pipeline_subset") or "-",
                    ", ".join(s.get("depends_on") or []) or "-",
                    "required" if s.get("requires_approval") else "-",
                    split_text(s.get("split")),
                    _short(s.get("where") or "-", 40),
                    len(s.get("groups") or []),
                ]
                for s in steps
            ],
        )
    )
    return 0


# --- DataID sets and exposures --------------------------------------------------------------------


def _dims(value: Any) -> str:
    return ", ".join(value or []) or "-"


def _source_text(version: dict[str, Any]) -> str:
    source = version.get("source") or {}
    kind = version.get("source_kind") or ""
    if kind == "file":
        return f"file {source.get('filename') or '?'}"
    if kind == "query":
        return f"query {source.get('query') or ''}"
    if kind == "algebra":
        parents = " ".join(f"{p.get('set')}@v{p.get('version')}" for p in source.get("parents") or [])
        return f"{source.get('operation', 'algebra')} of {parents}"
    if kind == "records":
        return f"{source.get('count', '?')} records"
    return kind or "-"


def _tag_text(version: dict[str, Any]) -> str:
    state = version.get("tag_status") or "none"
    if state == "none":
        return "-"
    if state == "done":
        missing = version.get("tag_missing_count") or 0
        text = f"done: {version.get('tag_found', 0)} datasets in {version.get('tag_collection')}"
        return text + (f", {missing} data IDs without one" if missing else "")
    if state == "failed":
        return f"failed: {version.get('tag_error') or 'no reason given'}"
    return f"{state} ({version.get('tag_collection')})"


def _print_problems(lines: Sequence[str], total: int, stream: Any) -> None:
    for line in lines[:MAX_PROBLEM_LINES]:
        stream.write(f"  {line}\n")
    more = total - min(len(lines), MAX_PROBLEM_LINES)
    if more > 0:
        stream.write(f"  … and {more:,} more\n")


def _upload_failed(exc: ApiError) -> int:
    """``cm: error: <detail>`` and the first problems, one a line, on stderr."""
    lines, total = upload_problems(exc.payload)
    detail = exc.payload.get("detail") if isinstance(exc.payload, dict) else None
    if not lines or not isinstance(detail, str):
        raise exc
    _fail(detail)
    _print_problems(lines, total, sys.stderr)
    sys.stderr.flush()
    return 1


def _stored_text(name: str, repo: str, version: dict[str, Any]) -> str:
    count = version.get("count", 0)
    text = (
        f"Stored {name} version {version['number']} in {repo}: {count:,} data ID{'s' if count != 1 else ''} "
        f"({_dims(version.get('dimensions'))})"
    )
    notes = []
    if version.get("duplicates_removed"):
        notes.append(f"{version['duplicates_removed']:,} duplicates removed")
    if version.get("dropped_count"):
        notes.append(f"{version['dropped_count']:,} invalid dropped")
    return text + (f"; {'; '.join(notes)}." if notes else ".")


def _report_stored(args: argparse.Namespace, version: dict[str, Any]) -> int:
    if args.json:
        _print_json(version)
        return 0
    _out(_stored_text(args.name, args.repo, version))
    report = version.get("dropped_report") or []
    if report:
        lines, total = upload_problems({"errors": report, "error_total": version.get("dropped_count")})
        _out("Dropped:")
        _print_problems(lines, total, sys.stdout)
    return 0


def cmd_dataids_upload(args: argparse.Namespace) -> int:
    try:
        version = _client(args).upload_dataids(
            args.file,
            repo=args.repo,
            name=args.name,
            reason=args.reason,
            description=args.description or "",
            public=args.public,
            drop_invalid=args.drop_invalid,
            format=args.format,
            dimensions=args.dimensions,
            comment=args.comment or "",
        )
    except ApiError as exc:
        return _upload_failed(exc)
    return _report_stored(args, version)


def cmd_dataids_query(args: argparse.Namespace) -> int:
    try:
        version = _client(args).dataids_from_query(
            args.where,
            dimensions=args.dimensions,
            repo=args.repo,
            name=args.name,
            reason=args.reason,
            description=args.description or "",
            public=args.public,
            comment=args.comment or "",
        )
    except ApiError as exc:
        return _upload_failed(exc)
    return _report_stored(args, version)


def cmd_dataids_list(args: argparse.Namespace) -> int:
    rows = _client(args).dataid_sets(repo=args.repo, q=args.search)
    if args.json:
        _print_json(rows)
    elif not rows:
        _out("No DataID sets.")
    else:
        table = []
        for r in rows:
            latest = r.get("latest") or {}
            table.append(
                [
                    r["name"],
                    r["repo"],
                    r["owner"],
                    r["visibility"],
                    f"v{latest.get('number', '-')}",
                    latest.get("count", 0),
                    _dims(latest.get("dimensions")),
                    _when(r.get("updated")),
                ]
            )
        _out(_table(["NAME", "REPO", "OWNER", "VISIBILITY", "VERSION", "COUNT", "DIMENSIONS", "UPDATED"], table))
    return 0


def cmd_dataids_show(args: argparse.Namespace) -> int:
    client = _client(args)
    pk = client.resolve_dataids(args.name, args.repo)
    dataid_set = client.dataid_set(pk)
    versions = client.dataid_versions(pk)
    if args.json:
        _print_json({**dataid_set, "versions": versions})
        return 0
    latest = dataid_set.get("latest") or {}
    fields = [
        ("Name", f"{dataid_set['name']}  (id {dataid_set['id']})"),
        ("Repo", dataid_set["repo"]),
        ("Owner", dataid_set["owner"]),
        ("Visibility", dataid_set["visibility"]),
        ("Dimensions", _dims(latest.get("dimensions"))),
        ("Latest", f"version {latest.get('number', '-')}, {latest.get('count', 0):,} data IDs"),
        ("Created", _when(dataid_set.get("created"))),
        ("Updated", _when(dataid_set.get("updated"))),
    ]
    width = max(len(label) for label, _ in fields) + 1
    lines = [f"{(label + ':').ljust(width)}  {value}" for label, value in fields]
    lines += ["", "Reason:", *_indent(dataid_set.get("reason") or "-")]
    if dataid_set.get("description"):
        lines += ["", "Description:", *_indent(dataid_set["description"])]
    lines += ["", f"Versions ({len(versions)}):"]
    table = _table(
        ["VERSION", "COUNT", "SOURCE", "BY", "CREATED", "TAGGED", "COMMENT"],
        [
            [
                f"v{v['number']}",
                v["count"],
                _short(_source_text(v), 50),
                v.get("created_by"),
                _when(v.get("created")),
                _short(_tag_text(v), 60),
                _short(v.get("comment") or "", 40),
            ]
            for v in versions
        ],
    )
    lines += ["  " + line for line in table.splitlines()]
    _out("\n".join(lines))
    return 0


def download_format(args: argparse.Namespace, formats: tuple[str, ...]) -> str:
    """``--format``, else the output file's suffix if it is one of ``formats``, else the first of them."""
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower().lstrip(".") if args.output and args.output != "-" else ""
    return suffix if suffix in formats else formats[0]


def write_download(args: argparse.Namespace, text: str, fmt: str) -> int:
    """A download to ``--output`` (standard output for none or ``-``), and say where it went."""
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.json:
        _print_json({"name": args.name, "format": fmt, "file": args.output})
    else:
        _out(f"Wrote {args.name} as {fmt.upper()} to {args.output}.")
    return 0


def cmd_dataids_download(args: argparse.Namespace) -> int:
    fmt = download_format(args, ("ecsv", "json", "csv"))
    text = _client(args).download_dataids(args.name, format=fmt, version=args.version, repo=args.repo)
    return write_download(args, text, fmt)


def cmd_dataids_tag(args: argparse.Namespace) -> int:
    state = _client(args).tag_dataids(
        args.name,
        args.dataset_type,
        args.collections,
        collection=args.collection,
        version=args.version,
        wait=args.wait,
        timeout=args.timeout,
        repo=args.repo,
    )
    if args.json:
        _print_json(state)
    elif state.get("tag_status") == "done":
        missing = state.get("tag_missing_count") or 0
        _out(
            f"Tagged {state.get('tag_found', 0):,} {state.get('tag_dataset_type')} datasets of {args.name} "
            f"v{state['number']} into {state.get('tag_collection')}"
            + (f"; {missing:,} data IDs have none." if missing else ".")
        )
    elif state.get("tag_status") == "failed":
        raise CliError(f"tagging {args.name} v{state['number']} failed: {state.get('tag_error') or 'no reason given'}")
    else:
        _out(
            f"Tagging of {args.name} v{state['number']} into {state.get('tag_collection')} is {state.get('tag_status')}; "
            f"`cm dataids show {args.name}` follows it."
        )
    return 0


def cmd_dataids_share(args: argparse.Namespace) -> int:
    permission = "change" if args.edit else "view"
    dataid_set = _client(args).share_dataids(
        args.name, user=args.user, group=args.group, permission=permission, grant=not args.revoke, repo=args.repo
    )
    if args.json:
        _print_json(dataid_set)
        return 0
    who = f"user {args.user}" if args.user else f"group {args.group}"
    verb = "edit" if args.edit else "view"
    if args.revoke:
        # Taking back "change" takes back "view" too (the server grants them together).
        verb = "edit or view" if args.edit else verb
        _out(f"{who} may no longer {verb} {dataid_set['name']} (unless the set is public or shared otherwise).")
    else:
        _out(f"{who} may now {verb} {dataid_set['name']}.")
    return 0


def cmd_dataids_combine(args: argparse.Namespace) -> int:
    if len(args.sets) < 2:
        raise CliError("combine needs at least two sets")
    version = _client(args).dataids_algebra(
        args.operation,
        args.sets,
        args.name,
        args.reason,
        repo=args.repo,
        description=args.description or "",
        public=args.public,
    )
    if args.json:
        _print_json(version)
    else:
        count = version.get("count", 0)
        _out(
            f"Stored {args.name} version {version['number']}: the {args.operation} of {', '.join(args.sets)}, "
            f"{count:,} data ID{'s' if count != 1 else ''} ({_dims(version.get('dimensions'))})."
        )
    return 0


def cmd_exposures(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    rows = _client(args).exposures(
        repo=args.repo,
        limit=args.limit + 1,
        day_obs=args.night,
        band=args.band,
        observation_type=args.type,
        target=args.target,
        q=args.search,
    )
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    if args.json:
        _print_json(rows)
    elif not rows:
        _out("No exposures.")
    else:
        _out(
            _table(
                ["EXPOSURE", "OBS_ID", "NIGHT", "SEQ", "BAND", "TYPE", "EXPTIME", "TARGET"],
                [
                    [
                        r["exposure_id"],
                        r["obs_id"],
                        r["day_obs"],
                        r["seq_num"],
                        r.get("band") or "-",
                        r.get("observation_type") or "-",
                        "-" if r.get("exposure_time") is None else f"{r['exposure_time']:g}",
                        r.get("target_name") or "-",
                    ]
                    for r in rows
                ],
            )
        )
    if more:
        sys.stderr.write(f"cm: only the first {args.limit} exposures are shown; use --limit N for more.\n")
    return 0


# --- running campaigns ---------------------------------------------------------------------------


def _quanta_text(g: dict[str, Any]) -> str:
    """done/failed/running/pending/total, or "-" before the group ever ran."""
    counts = [g.get(k) or 0 for k in ("quanta_succeeded", "quanta_failed", "quanta_running", "quanta_pending")]
    total = g.get("quanta_total") or 0
    if not total and not any(counts):
        return "-"
    return "/".join(str(n) for n in [*counts, total])


def _group_status(g: dict[str, Any]) -> str:
    return f"{g['status']} (needs review)" if g.get("needs_review") else str(g["status"])


def _step_status(s: dict[str, Any]) -> str:
    text = str(s["status"])
    if s.get("approved_by"):
        return f"{text} (approved by {s['approved_by']})"
    if s.get("requires_approval") and text == "waiting":
        return f"{text} (needs approval)"
    return text


def _run_status_text(status: dict[str, Any]) -> str:
    progress = status.get("progress") or {}
    steps = status.get("steps") or []
    total = progress.get("total") or 0
    head = f"{status['campaign']}  {status['status']}  (version {status.get('version')})"
    if total:
        head += (
            f"  groups: {progress.get('done', 0)}/{total} done ({progress.get('percent_done', 0)}%),"
            f" {progress.get('failed', 0)} failed"
        )
    lines = [head, ""]
    lines.append(
        _table(
            ["STEP", "STATUS", "GROUPS"],
            [[s["name"], _step_status(s), len(s.get("groups") or [])] for s in steps],
        )
    )
    groups = [(s, g) for s in steps for g in s.get("groups") or []]
    lines.append("")
    if groups:
        lines.append(
            _table(
                ["STEP", "GROUP", "STATUS", "ATTEMPTS", "QUANTA(done/failed/running/pending/total)"],
                [[s["name"], g["name"], _group_status(g), g.get("attempts", 0), _quanta_text(g)] for s, g in groups],
            )
        )
    else:
        lines.append(f"No groups yet: `cm campaign launch {status['campaign']}` plans them.")
    by_task = (status.get("failures") or {}).get("by_task") or []
    if by_task:
        lines += ["", "Failures by task:"]
        lines.append(
            _table(
                ["TASK", "EXCEPTION", "FAILED QUANTA"],
                [[r.get("task_label") or "-", r.get("exception_type") or "-", r.get("n", 0)] for r in by_task],
            )
        )
    return "\n".join(lines)


def _plan_text(plan: dict[str, Any]) -> str:
    launched = plan.get("launched")
    what = "frozen at launch" if launched else "estimated from the registry"
    lines = [
        f"Plan of {plan['campaign']} ({plan['status']}): {plan['groups']} group(s), "
        f"about {plan['quanta_total']} quanta ({what}). Pipeline {plan.get('pipeline', '-')}."
    ]
    if plan.get("pipeline_problem"):
        lines.append(f"{plan['pipeline_problem']}: the groups are shown without estimates.")
    if plan.get("dataid_sets"):
        rows = plan.get("dataid_set_rows")
        lines.append(
            f"Every group is limited to the DataID sets ({plan['dataid_sets']})"
            + (f": {rows} data IDs" if rows is not None else "")
            + ", passed as a data-ID table."
        )
    for step in plan["steps"]:
        bound = " (upper bound: its inputs come from an earlier step)" if step["upper_bound"] else ""
        lines.append("")
        lines.append(f"Step {step['name']}: {len(step['groups'])} group(s), {step['quanta_total']} quanta{bound}")
        lines.append(f"  pipeline {step['pipeline']}; split {step.get('split_text') or split_text(step.get('split'))}")
        if step.get("where"):
            lines.append(f"  step where: {step['where']}")
        check = step.get("split_check")
        if check:
            lines.append(f"  split check ({check['state']}): {check['note']}")
        rows = []
        for group in step["groups"]:
            per_task = ", ".join(f"{k} {v}" for k, v in (group["quanta"] or {}).items()) or "not estimated"
            total = group["quanta_total"] if group["quanta_total"] is not None else "-"
            tables = "; ".join(
                f"{t['name']} ({t['rows'] if t.get('rows') is not None else t.get('problem', '?')} rows)"
                for t in group.get("data_id_tables") or []
            )
            where = group["where"] + (f" + table {tables}" if tables else "")
            row = [group["name"], total, per_task]
            if launched:
                ran = group.get("ran") or {}
                done = (
                    f"{ran.get('succeeded', 0)} ok, {ran.get('failed', 0)} failed of {ran.get('quanta_total', 0)}"
                    if ran.get("attempts")
                    else "not run"
                )
                row = [group["name"], group.get("status", ""), total, per_task, done]
            rows.append([*row, where])
        header = (
            ["GROUP", "STATUS", "ESTIMATE", "PER TASK", "RAN", "WHERE"]
            if launched
            else ["GROUP", "QUANTA", "PER TASK", "WHERE"]
        )
        lines.append(_table(header, rows))
    if plan.get("uncounted_groups"):
        lines.append(f"\n{plan['uncounted_groups']} group(s) not estimated (CM_PLAN_MAX_COUNTED_GROUPS).")
    if plan.get("launchable"):
        lines.append(f"\n`cm campaign launch {plan['campaign']}` launches it.")
    return "\n".join(lines)


def cmd_plan(args: argparse.Namespace) -> int:
    plan = _client(args).plan(args.name)
    _print_json(plan) if args.json else _out(_plan_text(plan))
    return 0


def cmd_run_action(args: argparse.Namespace) -> int:
    client = _client(args)
    before = client.campaign(args.name)
    method = {"launch": client.launch, "pause": client.pause, "resume": client.resume}[args.action]
    after = method(before["id"], comment=args.comment or "")
    if args.json:
        _print_json(after)
        return 0
    verb = {"launch": "Launched", "pause": "Paused", "resume": "Resumed"}[args.action]
    text = f"{verb} {after['name']}: {before['status']} → {after['status']} (version {after['version']})."
    total = (after.get("progress") or {}).get("total")
    if args.action == "launch" and total:
        text += f" {total} group{'s' if total != 1 else ''} planned; `cm campaign status {after['name']}` follows them."
    _out(text)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.status is None:
        status = _client(args).run_status(args.name)
        _print_json(status) if args.json else _out(_run_status_text(status))
        return 0
    return _set_status(args)


def cmd_step_approve(args: argparse.Namespace) -> int:
    step = _client(args).approve_step(args.campaign, args.step, comment=args.comment)
    if args.json:
        _print_json(step)
    else:
        groups = len(step.get("groups") or [])
        _out(f"Approved step {step['name']} of {args.campaign}: now {step['status']} ({groups} groups).")
    return 0


def _group_text(g: dict[str, Any]) -> str:
    lines = [
        f"{g['campaign']} / {g['step']} / {g['name']}  (id {g['id']})",
        f"Status:             {_group_status(g)}",
        f"Attempts:           {g.get('attempts', 0)}",
        f"Quanta:             {_quanta_text(g)}  (done/failed/running/pending/total)",
        f"Output collection:  {g.get('output_collection') or '-'}",
        f"RUN collection:     {g.get('run_collection') or '-'}",
        f"Where:              {g.get('where') or '-'}",
    ]
    if g.get("error"):
        lines.append(f"Error:              {_short(g['error'], 200)}")
    subs = g.get("submissions") or []
    if subs:
        lines += ["", "Attempts:"]
        lines += _indent(
            _table(
                ["#", "KIND", "STATE", "RUN", "QUANTA", "BY", "STARTED", "FINISHED"],
                [
                    [
                        s["number"],
                        s["kind"],
                        s["state"],
                        s.get("run_collection") or "-",
                        _quanta_text(s),
                        s.get("requested_by") or "system",
                        _when(s.get("started")) or "-",
                        _when(s.get("finished")) or "-",
                    ]
                    for s in subs
                ],
            )
        )
    errors = g.get("errors") or []
    if errors:
        lines += ["", "Failed quanta:"]
        lines += _indent(
            _table(
                ["ATTEMPT", "TASK", "DATA ID", "EXCEPTION", "ACTION", "MESSAGE"],
                [
                    [
                        e.get("attempt"),
                        e.get("task_label") or "-",
                        _short(e.get("data_id"), 50),
                        e.get("exception_type") or "-",
                        e.get("action") or "-",
                        _short(e.get("message"), 60),
                    ]
                    for e in errors
                ],
            )
        )
    transitions = g.get("transitions") or []
    if transitions:
        lines += ["", "Transitions:"]
        lines += _indent(
            _table(
                ["WHEN", "WHO", "CHANGE", "REASON"],
                [
                    [
                        _when(t.get("at")),
                        t.get("actor") or "system",
                        f"{t['from_status']} → {t['to_status']}",
                        _short(t.get("reason"), 60),
                    ]
                    for t in transitions
                ],
            )
        )
    return "\n".join(lines)


def cmd_group(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "show":
        group = client.group(args.campaign, args.step, args.group)
        _print_json(group) if args.json else _out(_group_text(group))
        return 0
    method = {
        "retry": client.retry_group,
        "rescue": client.rescue_group,
        "accept": client.accept_group,
        "cancel": client.cancel_group,
    }[args.action]
    group = method(args.campaign, args.step, args.group, comment=args.comment or "")
    if args.json:
        _print_json(group)
        return 0
    done = {"retry": "Retried", "rescue": "Rescued", "accept": "Accepted", "cancel": "Cancelled"}[args.action]
    text = f"{done} group {group['step']}/{group['name']} of {group['campaign']}: now {group['status']}"
    if args.action in ("retry", "rescue"):
        text += f", attempt {group.get('attempts')}"
    _out(text + ".")
    return 0


def cmd_rules_list(args: argparse.Namespace) -> int:
    rules = _client(args).error_rules()
    if args.json:
        _print_json(rules)
    elif not rules:
        _out("No error rules: failed quanta fail their group.")
    else:
        _out(
            _table(
                ["ID", "POS", "TASK", "REGEX", "ACTION", "MAX RETRIES", "ENABLED", "MATCHES", "COMMENT"],
                [
                    [
                        r["id"],
                        r.get("position"),
                        r.get("task_label") or "*",
                        r["message_regex"],
                        r["action"],
                        r.get("max_retries"),
                        "yes" if r.get("enabled", True) else "no",
                        r.get("match_count", 0),
                        _short(r.get("comment") or "", 40),
                    ]
                    for r in rules
                ],
            )
        )
    return 0


def cmd_rules_add(args: argparse.Namespace) -> int:
    if args.max_retries < 0:
        raise CliError("--max-retries must be 0 or more")
    rule = _client(args).create_error_rule(
        args.regex, args.action, task_label=args.task or "", max_retries=args.max_retries, comment=args.comment or ""
    )
    if args.json:
        _print_json(rule)
    else:
        task = rule.get("task_label") or "any task"
        _out(f"Added error rule {rule['id']}: {task}, /{rule['message_regex']}/ → {rule['action']}.")
    return 0


def cmd_rules_delete(args: argparse.Namespace) -> int:
    _client(args).delete_error_rule(args.id)
    _print_json({"deleted": args.id}) if args.json else _out(f"Deleted error rule {args.id}.")
    return 0


# --- the parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # The global options work before or after the command: `cm --json campaign list` = `cm campaign list --json`.
    common = _Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="server address (default: CM_URL, then `cm login`)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: CM_TOKEN, then `cm login`)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    parser = _Parser(
        prog="cm",
        description="Campaign manager from the command line.",
        usage=None,
        epilog="Commands:\n  " + USAGE.replace("\n", "\n  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default=None, help="server address (default: CM_URL, then `cm login`)")
    parser.add_argument("--token", default=None, help="API token (default: CM_TOKEN, then `cm login`)")
    parser.add_argument("--json", action="store_true", default=False, help="machine-readable output")
    parser.add_argument("--version", action="version", version=f"cm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    login = commands.add_parser(
        "login",
        parents=[common],
        help="save the server address and an API token",
        description="Save the server address and an API token in the config file "
        "(CM_CONFIG, default ~/.config/cm/config.json, mode 0600).",
    )
    login.add_argument("--username", "-u", help="log in with this username (the password is prompted)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    login.set_defaults(func=cmd_login)
    logout = commands.add_parser(
        "logout",
        parents=[common],
        help="revoke your API token and forget it",
        description="Revoke the API token in use on the server (it stops working at once) and remove the config "
        "file that holds it.",
    )
    logout.set_defaults(func=cmd_logout)

    campaign = commands.add_parser("campaign", help="list, show, create and change campaigns")
    sub = campaign.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, parents=[common], help=help_text, description=help_text[0].upper() + help_text[1:] + "."
        )
        p.set_defaults(func=func)
        return p

    p = add("list", cmd_list, "list the campaigns you may see")
    p.add_argument("--type", action="append", metavar="TYPE", help="campaign type (repeatable)")
    p.add_argument("--status", action="append", metavar="STATUS", help="status (repeatable)")
    p.add_argument("--owner", metavar="USER", help="owner's username")
    p.add_argument("--search", metavar="TEXT", help="text in the name, reason, description, scope or pipeline")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label")
    p.add_argument("--sort", metavar="KEY", help="name, updated, created, status, type or owner; '-' for descending")
    p.add_argument("--archived", action="store_true", help="include archived campaigns")

    p = add("show", cmd_show, "show one campaign")
    p.add_argument("name", metavar="NAME")

    p = add("create", cmd_create, "create a campaign from a YAML definition")
    p.add_argument("--from-yaml", required=True, metavar="FILE", help="YAML file, or - for standard input")

    p = add("edit", cmd_edit, "change fields of a campaign")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="a field to change (repeatable); input_collections and collaborators take comma-separated lists; "
        "bps.request_memory=4096 changes one BPS option",
    )
    p.add_argument("--from-yaml", metavar="FILE", help="fields to change, as YAML (- for standard input)")
    p.add_argument("--comment", help="why: recorded in the history")
    p.add_argument(
        "--version", type=int, help="refuse the edit unless the campaign is still at this version (default: current)"
    )

    p = add("clone", cmd_clone, "copy a campaign into a new draft")
    p.add_argument("name", metavar="NAME")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.add_argument(
        "--output-collection", metavar="COLLECTION", help="where the copy writes (default: derived from NEW_NAME)"
    )
    p.add_argument("--comment", help="recorded in the history")

    p = add("export", cmd_export, "print a campaign's definition as YAML")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    p = add("status", cmd_status, "show where a campaign's run stands, or change its status")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "status",
        metavar="STATUS",
        nargs="?",
        help="the new status: draft, ready, running, paused, succeeded, failed or cancelled "
        "(without it: the steps, groups, quanta counts and failures of the run)",
    )
    p.add_argument("--comment", help="recorded in the history")

    p = add("plan", cmd_plan, "show the groups and estimated quanta that launch would make (changes nothing)")
    p.add_argument("name", metavar="NAME")

    p = add("launch", cmd_run_action, "plan the steps into groups and start the steps that depend on nothing")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--comment", help="recorded in the history")

    p = add("pause", cmd_run_action, "stop new submissions (running groups go on)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--comment", help="recorded in the history")

    p = add("resume", cmd_run_action, "send the ready groups of a paused campaign again")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--comment", help="recorded in the history")

    p = add("archive", cmd_archive, "archive a campaign (nothing is deleted)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--comment", help="recorded in the history")

    p = add("restore", cmd_restore, "bring back an archived campaign")
    p.add_argument("name", metavar="NAME")

    p = add("history", cmd_history, "show who changed what, newest first")
    p.add_argument("name", metavar="NAME")

    p = add("steps", cmd_steps, "list a campaign's steps")
    p.add_argument("name", metavar="NAME")

    def subcommands(name: str, help_text: str) -> Callable[..., argparse.ArgumentParser]:
        group = commands.add_parser(name, help=help_text)
        actions = group.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

        def add_to(action: str, func: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
            p = actions.add_parser(action, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
            p.set_defaults(func=func)
            return p

        return add_to

    add_step = subcommands("step", "approve the steps of a running campaign")
    p = add_step("approve", cmd_step_approve, "let a step that awaits approval start")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("step", metavar="STEP", help="step name")
    p.add_argument("--comment", required=True, metavar="TEXT", help="why (required, kept in the history)")

    add_group = subcommands("group", "show a group of a running campaign, retry, rescue, accept or cancel it")
    group_help = {
        "show": "show a group: its attempts, failed quanta and transitions",
        "retry": "run a failed or cancelled group again from scratch (fresh RUN collection)",
        "rescue": "a new attempt of a failed group that skips what earlier runs produced",
        "accept": "count a failed group as done for its step",
        "cancel": "cancel a group: it will not be submitted again",
    }
    for action, text in group_help.items():
        p = add_group(action, cmd_group, text)
        p.add_argument("campaign", metavar="CAMPAIGN")
        p.add_argument("step", metavar="STEP", help="step name")
        p.add_argument("group", metavar="GROUP", help="group name (e.g. night-20251121)")
        if action == "accept":
            p.add_argument("--comment", required=True, metavar="TEXT", help="why (required, kept in the history)")
        elif action != "show":
            p.add_argument("--comment", metavar="TEXT", help="why (kept in the history)")

    add_rule = subcommands("rules", "list, add and delete the error rules applied to failed quanta")
    add_rule("list", cmd_rules_list, "list the error rules in the order they are tried")
    p = add_rule("add", cmd_rules_add, "add an error rule (staff only)")
    p.add_argument("--regex", required=True, metavar="R", help="regular expression searched in the failure message")
    p.add_argument("--action", required=True, choices=["auto-retry", "review", "fail", "pause"])
    p.add_argument("--task", metavar="LABEL", help="only failures of this task label (default: any task)")
    p.add_argument("--max-retries", type=int, default=1, metavar="N", help="with auto-retry: at most N (default 1)")
    p.add_argument("--comment", metavar="TEXT", help="why the rule exists")
    p = add_rule("delete", cmd_rules_delete, "delete an error rule (staff only)")
    p.add_argument("id", type=int, metavar="ID")

    dataids = commands.add_parser("dataids", help="upload, list, download, combine and tag DataID sets")
    dsub = dataids.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

    def add_ds(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = dsub.add_parser(
            name, parents=[common], help=help_text, description=help_text[0].upper() + help_text[1:] + "."
        )
        p.set_defaults(func=func)
        return p

    def new_set_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--repo", required=True, metavar="LABEL", help="Butler repo label (e.g. demo)")
        p.add_argument("--name", required=True, help="name of the set (a new version if you already have one)")
        p.add_argument("--reason", required=True, metavar="TEXT", help="why this set exists")
        p.add_argument("--description", metavar="TEXT")
        vis = p.add_mutually_exclusive_group()
        vis.add_argument(
            "--public",
            dest="public",
            action="store_true",
            default=None,
            help="every logged-in user may see it (default: private for a new set, unchanged for a new version)",
        )
        vis.add_argument("--private", dest="public", action="store_false", help="only you and those you share with")
        p.add_argument("--comment", metavar="TEXT", help="a note on this version")

    p = add_ds("list", cmd_dataids_list, "list the DataID sets you may see")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label")
    p.add_argument("--search", metavar="TEXT", help="text in the name, reason or description")

    p = add_ds("show", cmd_dataids_show, "show a DataID set and its versions")
    p.add_argument("name", metavar="NAME", help="set name (or id)")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label, if several repos have a set of that name")

    p = add_ds("upload", cmd_dataids_upload, "check data IDs from a file against a repo and store them as a set")
    p.add_argument("file", metavar="FILE", help="JSON, CSV, ECSV, VOTable, Parquet or FITS file")
    new_set_options(p)
    p.add_argument(
        "--drop-invalid", action="store_true", help="store the valid data IDs and report the others (default: refuse)"
    )
    p.add_argument("--format", metavar="F", help="json, csv, ecsv, votable, parquet or fits, if the name does not tell")
    p.add_argument("--dimensions", metavar="a,b", help="the dimensions the file holds, comma-separated")

    p = add_ds("query", cmd_dataids_query, "store the data IDs a Butler query returns as a set")
    p.add_argument("--where", required=True, metavar="EXPR", help="Butler 'where' expression")
    p.add_argument("--dimensions", required=True, metavar="a,b", help="e.g. exposure,detector")
    new_set_options(p)

    p = add_ds("download", cmd_dataids_download, "write the data IDs of a set as JSON, CSV or ECSV")
    p.add_argument("name", metavar="NAME", help="set name (or id)")
    p.add_argument(
        "--format", choices=["json", "csv", "ecsv"], help="default: from the -o file name, else ecsv (pipetask's)"
    )
    p.add_argument("--version", type=int, metavar="N", help="version number (default: latest)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label, if several repos have a set of that name")

    p = add_ds("tag", cmd_dataids_tag, "put the datasets of a set's data IDs into a TAGGED collection")
    p.add_argument("name", metavar="NAME", help="set name (or id)")
    p.add_argument("--dataset-type", required=True, metavar="TYPE", help="e.g. raw")
    p.add_argument("--collections", required=True, metavar="C1,C2", help="collections to search, comma-separated")
    p.add_argument("--collection", metavar="C", help="the TAGGED collection (default u/<you>/dataids/<set>/v<n>)")
    p.add_argument("--version", type=int, metavar="N", help="version number (default: latest)")
    p.add_argument("--wait", action="store_true", help="wait until the server has done it")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="with --wait: give up after S seconds")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label, if several repos have a set of that name")

    p = add_ds("share", cmd_dataids_share, "let a user or a group see (or edit) a set")
    p.add_argument("name", metavar="NAME", help="set name (or id)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="U", help="username")
    who.add_argument("--group", metavar="G", help="group name")
    p.add_argument("--edit", action="store_true", help="may also change it (default: view only)")
    p.add_argument("--revoke", action="store_true", help="take the permission back")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label, if several repos have a set of that name")

    p = add_ds("combine", cmd_dataids_combine, "store the union, intersection or difference of sets as a new set")
    p.add_argument("operation", choices=["union", "intersection", "difference"], help="difference: first minus others")
    p.add_argument("sets", nargs="+", metavar="SET", help="two or more set names (or ids)")
    p.add_argument("--name", required=True, metavar="NEW", help="name of the new set")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why this set exists")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument(
        "--public", action="store_true", default=None, help="every logged-in user may see it (default: private)"
    )
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label, if several repos have sets of those names")

    p = commands.add_parser(
        "exposures",
        parents=[common],
        help="list the exposures of a Butler repo",
        description="List the exposures of a Butler repo, newest first.",
    )
    p.set_defaults(func=cmd_exposures)
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label (default: the only one)")
    p.add_argument("--night", type=int, metavar="N", help="day_obs, e.g. 20251121")
    p.add_argument("--band", metavar="B")
    p.add_argument("--type", metavar="T", help="observation type, e.g. science, bias, flat")
    p.add_argument("--target", metavar="TEXT", help="text in the target name")
    p.add_argument("--search", metavar="TEXT", help="obs_id or exposure id")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="show at most N exposures (default 200)")
    from .commands_tags import register as register_tags  # here: it imports helpers of this module

    register_tags(commands)
    commands_selection.register(commands, common)
    __import__("cmclient.commands_metrics").commands_metrics.register(commands, common)
    commands_flags.register(commands, common)
    commands_inbox.register(commands, common)
    return parser


def _fail(message: str) -> None:
    sys.stderr.write(f"cm: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def _is_auth_failure(exc: ApiError) -> bool:
    """A refused or missing token (DRF answers 403, not 401, when session auth is listed first)."""
    if exc.status == 401:
        return True
    detail = exc.payload.get("detail", "") if isinstance(exc.payload, dict) else ""
    return exc.status == 403 and any(
        text in str(detail) for text in ("Invalid token", "credentials were not provided", "User inactive")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ApiError as exc:
        message = exc.message
        if _is_auth_failure(exc):
            message += " (run `cm login` or set CM_TOKEN)"
        _fail(message)
        return 1
    except CliError as exc:
        _fail(str(exc))
        return 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`cm campaign list | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
