"""``cds-hooks export``: a Bulk Data ``$export`` of the types the rules read, downloaded into a directory
that ``cds-hooks screen --bulk`` and ``cds-hooks survey --bulk`` read.

Running it again with the same ``--out`` continues that export (polling, then the files not yet
complete, resumed where they stopped) instead of starting another one.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from cds_hooks.bulk.export import SCREEN_TYPES, ExportClient, ExportFailed, export
from cds_hooks.bulk.ndjson import EXPORT_TYPES
from cds_hooks.bulk.prefilter import bounds
from cds_hooks.bulk.stages import executor_knowledge, knowledge_env
from cds_hooks.cli.evaluate import add_token_argument, fhir_base


def _types(value: str) -> list[str]:
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in EXPORT_TYPES]
    if not types or unknown:
        raise argparse.ArgumentTypeError(f"types the screen knows: {', '.join(EXPORT_TYPES)}")
    return types


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "export",
        help="run a Bulk Data $export of what the rules read and download it (resumable)",
        description="Kick off a FHIR Bulk Data $export (Group or all patients), wait as the server says "
        "(Retry-After), and download the NDJSON files into --out, resuming an interrupted download.",
    )
    parser.add_argument(
        "--fhir-server", type=fhir_base, required=True, metavar="URL", help="FHIR R4 base URL"
    )
    parser.add_argument(
        "--group", metavar="ID", help="export this Group's patients (default: Patient/$export)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the files")
    parser.add_argument(
        "--types",
        type=_types,
        default=list(SCREEN_TYPES),
        metavar="T,…",
        help=f"resource types (default: what the rules read, {','.join(SCREEN_TYPES)})",
    )
    parser.add_argument("--since", metavar="INSTANT", help="only resources changed since (_since)")
    parser.add_argument(
        "--type-filter",
        action="append",
        default=None,
        metavar="QUERY",
        help="a _typeFilter, e.g. 'Observation?category=laboratory' (repeatable; replaces the default, "
        "'Observation?date=ge<the start of the screen's look-back window>')",
    )
    parser.add_argument(
        "--no-type-filter",
        action="store_true",
        help="send no _typeFilter: export every Observation of the patients' history",
    )
    add_token_argument(parser)
    parser.set_defaults(func=run, parser=parser)


def type_filters(args: argparse.Namespace) -> list[str]:
    """The ``_typeFilter`` queries to send: the user's, none, or by default the screen's own window on
    Observations (the bounds ``screen --bulk`` applies, so the server leaves the history out)."""
    if args.no_type_filter:
        if args.type_filter:
            args.parser.error("--type-filter and --no-type-filter exclude each other")
        return []
    if args.type_filter is not None:
        return list(args.type_filter)
    if "Observation" not in args.types:
        return []
    knowledge = executor_knowledge(knowledge_env(os.environ))
    return list(bounds(knowledge, datetime.now(UTC)).type_filters())


def run(args: argparse.Namespace) -> int:
    filters = type_filters(args)
    client = ExportClient(base=args.fhir_server, token=args.token)
    progress = sys.stderr.isatty()
    waiting = tqdm(
        desc="export in progress", bar_format="{desc}: {postfix}", disable=not progress, leave=False
    )
    try:
        with tqdm(desc="downloading", unit="B", unit_scale=True, disable=not progress, leave=False) as bar:
            files = export(
                client,
                args.out,
                group=args.group,
                types=args.types,
                since=args.since,
                type_filters=filters,
                on_progress=lambda text: waiting.set_postfix_str(text[:60]),
                on_bytes=bar.update,
            )
    except ExportFailed as exc:
        print(f"cds-hooks: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncds-hooks: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        waiting.close()
    total = sum(f.stat().st_size for f in files)
    if filters:
        print(f"_typeFilter: {' '.join(filters)}")
    print(f"Exported {len(files)} files ({total:,} bytes) from {args.fhir_server} into {args.out}")
    print(f"Screen it with: cds-hooks screen --bulk {args.out}")
    return 0
