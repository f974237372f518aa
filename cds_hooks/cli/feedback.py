"""``cds-hooks feedback report``: the feedback analytics from the service's own database."""

from __future__ import annotations

import argparse
import sys

from cds_hooks.fhir.dates import parse_fhir_datetime
from cds_hooks.process.config import ConfigError, Settings
from cds_hooks.store.analytics import feedback_report, format_csv, format_json, format_table
from cds_hooks.store.database import Store

FORMATTERS = {"table": format_table, "csv": format_csv, "json": format_json}


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    feedback = subparsers.add_parser("feedback", help="feedback analytics")
    actions = feedback.add_subparsers(dest="feedback_command", required=True)
    report = actions.add_parser(
        "report",
        help="cards shown, accepted, overridden per service and rule",
        description="Reads the database named by CDS_HOOKS_DATABASE_URL (or the "
        "default SQLite file), the same one the service writes.",
    )
    report.add_argument("--since", help="only cards issued on or after this date (YYYY-MM-DD or date-time)")
    report.add_argument("--format", choices=sorted(FORMATTERS), default="table")
    report.add_argument("--service", help="only this service id")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        since = parse_fhir_datetime(args.since)
        if since is None:
            print(f"cds-hooks: --since must be a date like 2026-11-01, got {args.since!r}", file=sys.stderr)
            return 2
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"cds-hooks: configuration error: {exc}", file=sys.stderr)
        return 2
    store = Store(settings.resolved_database_url)
    try:
        stats = feedback_report(store, since=since, service_id=args.service)
    finally:
        store.dispose()
    output = FORMATTERS[args.format](stats)
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0
