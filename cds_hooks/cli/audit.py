"""``cds-hooks audit export [--since DATE]``: the audit trail kept in the database
(``CDS_HOOKS_AUDIT=db``) as NDJSON, one FHIR AuditEvent per line, oldest first.

Reads the database the service uses (``CDS_HOOKS_DATABASE_URL`` or the SQLite file in the data
directory). Exit codes: 0 printed (possibly nothing), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys

from cds_hooks.cli.database import UsageError, service_store, since_option


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="the audit trail of service and feedback calls")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    export = actions.add_parser("export", help="print the stored AuditEvents as NDJSON")
    export.add_argument(
        "--since", help="only events recorded at or after this date or date-time, e.g. 2026-11-01"
    )
    export.set_defaults(func=export_audit)


def export_audit(args: argparse.Namespace) -> int:
    try:
        since = since_option(args.since)
        store = service_store()
    except UsageError as exc:
        print(f"cds-hooks: {exc}", file=sys.stderr)
        return 2
    try:
        for event in store.audit_events(since):
            sys.stdout.write(event + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `… | head`: the reader went away
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.dispose()
    return 0
