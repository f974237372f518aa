"""``cds-hooks feedback report``: the feedback analytics from the service's own database."""

from __future__ import annotations

import argparse
import sys

from cds_hooks.cli.database import UsageError, service_store, since_option
from cds_hooks.store.analytics import feedback_report, format_csv, format_json, format_table

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
    try:
        since = since_option(args.since)
        store = service_store()
    except UsageError as exc:
        print(f"cds-hooks: {exc}", file=sys.stderr)
        return 2
    try:
        stats = feedback_report(store, since=since, service_id=args.service)
    finally:
        store.dispose()
    output = FORMATTERS[args.format](stats)
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0
