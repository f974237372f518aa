"""``cds-hooks survey --bulk DIR``: the lab and medication codes an export holds, ranked by count, with
what the rules make of each and the units seen; ``--concept-map FILE`` drafts the site's ConceptMap."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cds_hooks.bulk.concept_map import draft_concept_map
from cds_hooks.bulk.ndjson import ExportNotFound, discover
from cds_hooks.bulk.spark_job import EngineUnavailable, active_context, start_spark
from cds_hooks.bulk.stages import executor_knowledge, knowledge_env
from cds_hooks.bulk.survey import DEFAULT_TOP, OTHER, SurveyedCode, survey


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "survey",
        help="list the lab and medication codes a Bulk Data export holds and which the rules recognise",
        description="Count the lab and medication codes of an export (Spark), mark which the rules read "
        "by code, only by text, or which look like the rules' concepts but are not mapped, and draft a "
        "ConceptMap for the site's local codes.",
    )
    parser.add_argument("--bulk", required=True, metavar="DIR", help="export directory or its manifest.json")
    parser.add_argument("--master", metavar="URL", help="a Spark cluster (default: local mode on every core)")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, metavar="N", help="codes listed per kind")
    parser.add_argument("--all", action="store_true", help="list codes the rules do not need too")
    parser.add_argument("--concept-map", type=Path, metavar="FILE", help="write the draft ConceptMap here")
    parser.set_defaults(func=run, parser=parser)


def table(codes: list[SurveyedCode], *, everything: bool) -> str:
    lines = [f"{'kind':<10} {'count':>9}  {'status':<18} {'concept':<26} code / display / units"]
    for c in codes:
        if c.status == OTHER and not everything:
            continue
        units = ", ".join(f"{u} ({n})" for u, n in c.units)
        code = f"{c.system}|{c.code}" if c.code else "(no code)"
        lines.append(
            f"{c.kind:<10} {c.count:>9,}  {c.status:<18} {c.concept or '':<26} {code}  {c.display!r}"
            + (f"  units: {units}" if units else "")
        )
    hidden = sum(1 for c in codes if c.status == OTHER)
    if hidden and not everything:
        lines.append(f"({hidden} codes the rules do not need are not listed; --all lists them)")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    env = knowledge_env(os.environ)
    try:
        export = discover(args.bulk)
        owned = active_context() is None
        spark = start_spark(args.master)
    except (ExportNotFound, EngineUnavailable) as exc:
        print(f"cds-hooks: {exc}", file=sys.stderr)
        return 1
    try:
        codes = survey(spark, export, env, top=args.top)
    except Exception as exc:  # a Spark failure: one line, not a JVM stack trace
        print(f"cds-hooks: the Spark job failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        if owned:
            spark.stop()
    sys.stdout.write(table(codes, everything=args.all))
    if args.concept_map:
        document = draft_concept_map(executor_knowledge(env), codes, args.bulk)
        args.concept_map.write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        mapped = sum(len(g["element"]) for g in document["group"])
        print(
            f"\nDraft ConceptMap ({mapped} local codes) written to {args.concept_map}: review it, then set "
            f"CDS_HOOKS_SITE_CONCEPT_MAP={args.concept_map}"
        )
    return 0
