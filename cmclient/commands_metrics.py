"""`cm metrics ...`: ingest metric files, list values and names, the campaigns that processed an exposure,
export re-observation requests."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .client import ApiError, Client, upload_problems

MAX_PROBLEM_LINES = 20


def _client(args: argparse.Namespace) -> Client:
    return Client(url=args.url, token=args.token)


def _data_id(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise SystemExit(f"cm: error: --data-id {part!r} is not key=value")
            out[key.strip()] = value.strip()
    return out


def _problem_lines(report: dict[str, Any]) -> tuple[list[str], int]:
    return upload_problems({"errors": report.get("problems") or [], "error_total": report.get("rejected", 0)})


def cmd_ingest(args: argparse.Namespace) -> int:
    if bool(args.campaign) == bool(args.source):
        raise SystemExit("cm: error: give --campaign (with --run) or --source LABEL, not both or neither")
    units = None
    if args.units:
        try:
            units = json.loads(args.units)
        except ValueError as exc:
            raise SystemExit(f"cm: error: --units is not a JSON mapping: {exc}") from exc
    try:
        report = _client(args).ingest_metrics(
            args.file,
            repo=args.repo or "",
            campaign=args.campaign or "",
            run=args.run or "",
            source=args.source or "",
            data_id=_data_id(args.data_id),
            format=args.format or "",
            action=args.action or "",
            units=units,
        )
    except ApiError as exc:
        lines, total = upload_problems(exc.payload)
        if not lines:
            raise
        sys.stderr.write(f"cm: error: {exc}\n")
        for line in lines[:MAX_PROBLEM_LINES]:
            sys.stderr.write(f"  {line}\n")
        return 1
    except OSError as exc:
        raise SystemExit(f"cm: error: cannot read {args.file}: {exc.strerror or exc}") from exc
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"Stored {report['stored']:,} of {report['read']:,} values from {args.file}: "
        f"{report['created']:,} new, {report['updated']:,} changed, {report['unchanged']:,} unchanged."
    )
    if report.get("rejected"):
        lines, total = _problem_lines(report)
        print(f"Not stored ({report['rejected']:,}):")
        for line in lines[:MAX_PROBLEM_LINES]:
            print(f"  {line}")
        if total > min(len(lines), MAX_PROBLEM_LINES):
            print(f"  … and {total - min(len(lines), MAX_PROBLEM_LINES):,} more")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    filters = {
        "campaign": args.campaign,
        "metric": args.metric,
        "source": args.source,
        "exposure": args.exposure,
        "visit": args.visit,
        "detector": args.detector,
        "band": args.band,
        "day_obs_min": args.night_from,
        "day_obs_max": args.night_to,
    }
    if args.names:
        names = client.metric_names(**filters)
        if args.json:
            print(json.dumps(names, indent=2))
            return 0
        for row in names:
            print(f"{row['metric']:<45} {row['unit'] or '-':<8} {row['count']:>10,}")
        return 0
    values = client.metric_values(limit=args.limit, **filters)
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    if not values:
        print("No metric values match.")
        return 0
    for v in values:
        value = "null" if v["value"] is None else f"{v['value']:.6g}"
        where = v["campaign"] or f"source {v['source']}"
        print(f"{v['metric']:<40} {value:>12} {v['unit'] or '':<7} {v['data_id_key']:<50} {where}")
    return 0


def cmd_reobserve(args: argparse.Namespace) -> int:
    text = _client(args).reobservation(
        args.campaign,
        metric=args.metric,
        op=args.op,
        threshold=args.threshold,
        statistic=args.statistic,
        band=args.band or "",
        day_obs_min=args.night_from,
        day_obs_max=args.night_to,
        format=args.format,
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"Wrote {args.output}.")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_exposure(args: argparse.Namespace) -> int:
    found = _client(args).exposure_campaigns(args.exposure, repo=args.repo)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"Exposure {found['exposure']} ({found['instrument']}, repo {found['repo']}):")
    if not found["campaigns"]:
        print("  no campaign you may see processed it.")
    for entry in found["campaigns"]:
        print(f"  {entry['name']} ({entry['status']})")
        for g in entry["groups"]:
            how = "" if g["covered"] else " (wrote values for it)"
            print(f"    group {g['step']}/{g['name']}: {g['status']}{how}")
        if not entry["metrics"]:
            print("    no metric values for this exposure")
        for m in entry["metrics"]:
            mean = "NaN" if m["mean"] is None else f"{m['mean']:.6g}"
            print(f"    {m['metric']:<40} mean {mean:>10} {m['unit'] or '':<7} over {m['n']} value(s)")
        if entry["not_known"]:
            print(f"    (other groups not known yet: {_not_known(entry['not_known'])})")
    for gap in found["not_known"]:
        print(f"  {gap['campaign']}: not known yet ({_not_known(gap)})")
    return 0


def _not_known(gap: dict[str, Any]) -> str:
    parts = []
    if gap["pending_groups"]:
        parts.append(f"{gap['pending_groups']} group(s) not worked out yet")
    if gap["unknown_groups"]:
        parts.append(f"{gap['unknown_groups']} group(s) the exposure mirror cannot answer: {gap['reason']}")
    return "; ".join(parts)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """``cm metrics ingest|list|reobserve|exposure``."""
    metrics = commands.add_parser("metrics", help="ingest QA metrics, list them, export re-observation requests")
    sub = metrics.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(metrics))

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text[0].upper() + help_text[1:])
        p.set_defaults(func=func)
        return p

    p = add("ingest", cmd_ingest, "store the metric values of a file (bundle JSON, JSON list or JSON lines)")
    p.add_argument("file", help="a MetricMeasurementBundle JSON, or flat Sasquatch-style records")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label (default: the campaign's)")
    p.add_argument("--campaign", metavar="NAME", help="the campaign whose run produced them")
    p.add_argument("--run", metavar="COLLECTION", help="the RUN collection (required for a bundle of a campaign)")
    p.add_argument("--source", metavar="LABEL", help="an outside source label, instead of a campaign")
    p.add_argument(
        "--data-id", action="append", metavar="K=V", help="the data ID a bundle measures (repeat or k=v,k=v)"
    )
    p.add_argument("--format", choices=["bundle", "flat"], help="default: guessed from the file")
    p.add_argument("--action", metavar="NAME", help="prefix of the metric names of flat records")
    p.add_argument("--units", metavar="JSON", help='units of flat-record metrics, e.g. \'{"psfFwhm": "arcsec"}\'')

    p = add("list", cmd_list, "list metric values (or names) you may see")
    p.add_argument("--campaign", metavar="NAME")
    p.add_argument("--metric", metavar="NAME", help="stored name or its last part (psf_fwhm)")
    p.add_argument("--source", metavar="LABEL")
    p.add_argument("--exposure", type=int)
    p.add_argument("--visit", type=int)
    p.add_argument("--detector", type=int)
    p.add_argument("--band")
    p.add_argument("--night-from", type=int, metavar="YYYYMMDD")
    p.add_argument("--night-to", type=int, metavar="YYYYMMDD")
    p.add_argument("--names", action="store_true", help="list metric names with unit and count instead")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="at most N values (default 200)")

    p = add("exposure", cmd_exposure, "the campaigns that processed an exposure, their groups and metric values")
    p.add_argument("exposure", type=int, help="exposure id")
    p.add_argument("--repo", metavar="LABEL", help="Butler repo label (needed when there are several)")

    p = add("reobserve", cmd_reobserve, "export the exposures to observe again (JSON or CSV)")
    p.add_argument("--campaign", required=True, metavar="NAME")
    p.add_argument("--metric", required=True, metavar="NAME")
    p.add_argument("--op", required=True, choices=["<", "<=", ">", ">="], help="re-observe if METRIC OP THRESHOLD")
    p.add_argument("--threshold", required=True, type=float)
    p.add_argument("--statistic", default="median", help="over an exposure's detectors (default median)")
    p.add_argument("--band")
    p.add_argument("--night-from", type=int, metavar="YYYYMMDD")
    p.add_argument("--night-to", type=int, metavar="YYYYMMDD")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
