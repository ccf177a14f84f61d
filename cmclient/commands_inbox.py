"""`cm inbox`: what waits for a person (the same answer as the inbox page and GET /api/v1/inbox/)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .client import Client

KINDS = ["approval", "quality_gate", "failed_group", "review", "paused"]


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _what(item: dict[str, Any]) -> str:
    if item.get("group"):
        return f"{item['step']}/{item['group']}"
    if item.get("step"):
        return f"step {item['step']}"
    return "campaign"


def _do(item: dict[str, Any]) -> str:
    """The `cm` command that acts on an item."""
    campaign = item["campaign"]
    if item.get("group"):
        return f"cm group retry|rescue|accept|cancel {campaign} {item['step']} {item['group']}"
    if item.get("step"):
        return f"cm step approve {campaign} {item['step']} --comment ..."
    return f"cm campaign resume {campaign}"


def inbox_text(body: dict[str, Any]) -> str:
    items = body.get("items") or []
    if not items:
        return "Nothing waits for you." if body.get("total", 0) == 0 else "Nothing listed."
    lines = [f"{body['total']} item{'s' if body['total'] != 1 else ''} wait for a person:"]
    for mine in (True, False):
        chosen = [i for i in items if bool(i.get("can_act")) == mine]
        if not chosen:
            continue
        lines.append("")
        lines.append("Yours to act on:" if mine else "In campaigns you may see but not change (their owners act):")
        for item in chosen:
            since = (item.get("since") or "")[:16].replace("T", " ")
            lines.append(
                f"  {item['kind_label']:<26} {item['campaign']:<24} {_what(item):<28} {since or '-':<16}"
                f"  {_short(item.get('reason', ''), 70)}"
            )
            if mine:
                lines.append(f"  {'':<26} → {_do(item)}")
    if body.get("more"):
        lines.append(f"\n{body['more']} more not listed (the oldest failed groups); see each campaign.")
    return "\n".join(lines)


def cmd_inbox(args: argparse.Namespace) -> int:
    body = Client(url=args.url, token=args.token).inbox(mine=args.mine, kind=args.kind)
    print(json.dumps(body, indent=1) if args.json else inbox_text(body))
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``cm inbox`` to the ``cm`` parser."""
    text = "what waits for a person: steps to approve, failed groups, campaigns the executor paused"
    p = commands.add_parser("inbox", parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
    p.set_defaults(func=cmd_inbox)
    p.add_argument("--mine", action="store_true", help="only what you may act on")
    p.add_argument("--kind", choices=KINDS, help="only items of this kind")
