"""``cds-hooks screen --bulk``: screen a whole Bulk Data export with Apache Spark.

The options are added to ``screen``'s parser; the job is :mod:`cds_hooks.bulk.spark_job`. The summary has
the same table as ``screen`` (patients and cards per 1,000 living patients screened, per rule), then what
was read, what the rules could not use, and every issue counted by reason. The results (one row per card)
are streamed from the executors into the CSV/JSON file and written as Parquet by Spark itself.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from cds_hooks.bulk.export import ExportClient, ExportFailed
from cds_hooks.bulk.ndjson import Export, ExportNotFound, discover
from cds_hooks.bulk.patient import DECEASED, FAILED, NO_PATIENT
from cds_hooks.bulk.spark_job import (
    CARD_COLUMNS,
    BulkScreen,
    EngineUnavailable,
    ExportTooNarrow,
    ProgressSink,
    Stage,
    active_context,
    run_screen,
    start_spark,
)
from cds_hooks.bulk.stages import knowledge_env
from cds_hooks.cli.screen_report import rule_table
from cds_hooks.clinical.evaluation import DEFAULT_BASE_URL
from cds_hooks.clinical.knowledge import default_knowledge

# Issues printed in the summary; the issues file next to --out lists every one.
ISSUES_SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--bulk`` and the options of a bulk screen (the engine, the cluster, Parquet)."""
    group = parser.add_argument_group("Bulk Data export (Apache Spark; pip install '.[scale]')")
    group.add_argument(
        "--bulk",
        metavar="DIR_OR_URL",
        help="screen every patient of a Bulk Data export: a directory of NDJSON files, its manifest.json, "
        "or the status URL of a finished $export (downloaded first, with --token)",
    )
    group.add_argument(
        "--engine", choices=("local",), default="local", help="Spark in local mode on every core (default)"
    )
    group.add_argument(
        "--master", metavar="URL", help="run on this Spark cluster instead (spark://host:7077, yarn, k8s://…)"
    )
    group.add_argument("--parquet", type=Path, metavar="DIR", help="also write the cards as Parquet to DIR")
    group.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting, e.g. spark.executor.memory=4g (repeatable)",
    )


def refuse_bulk_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The Spark options mean nothing for a screen over a FHIR server."""
    if args.master or args.parquet or args.spark_conf:
        parser.error("--master, --parquet and --spark-conf need --bulk")


def _conf(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--spark-conf must be KEY=VALUE, got {item!r}")
        conf[key.strip()] = value.strip()
    return conf


class Bar(ProgressSink):
    """A step of the job as the screen's tqdm bar on stderr (only on a terminal, like ``screen``)."""

    def __init__(self, stage: Stage, stream: TextIO, enabled: bool) -> None:
        self._bar = (
            tqdm(total=stage.total, desc=stage.name, unit="", file=stream, leave=False, mininterval=0.5)
            if enabled
            else None
        )

    def update(self, done: int) -> None:
        if self._bar is not None and done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _source(args: argparse.Namespace, workdir: Path, progress: bool) -> Export:
    """The export to screen; a status URL is polled and downloaded into ``workdir`` first."""
    source: str = args.bulk
    if not source.startswith(("http://", "https://")):
        return discover(source)
    client = ExportClient(base=source.rsplit("/", 1)[0], token=args.token)
    manifest = client.wait(source)
    with tqdm(desc="downloading the export", unit="B", unit_scale=True, disable=not progress) as bar:
        client.download(manifest, workdir, bar.update)
    return discover(workdir)


def run(args: argparse.Namespace, fmt: str | None) -> int:
    """The bulk screen: 0 when every patient was evaluated, 1 when some could not be (or it failed)."""
    parser: argparse.ArgumentParser = args.parser
    conf = _conf(parser, args.spark_conf)
    progress = sys.stderr.isatty()
    now: datetime = args.now or datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="cds-hooks-export-"))
    try:
        export = _source(args, workdir, progress)
        owned = active_context() is None
        spark = start_spark(args.master, conf)
    except (ExportNotFound, ExportFailed, EngineUnavailable) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"cds-hooks: {exc}", file=sys.stderr)
        return 1
    try:
        if args.master:
            print(f"Spark UI: {spark.uiWebUrl}", file=sys.stderr)
        outcome = run_screen(
            spark,
            export,
            now=now,
            env=knowledge_env(os.environ),
            base_url=os.environ.get("CDS_HOOKS_PUBLIC_BASE_URL") or DEFAULT_BASE_URL,
            include_deceased=args.include_deceased,
            parquet=args.parquet,
            progress=lambda stage: Bar(stage, sys.stderr, progress),
        )
        where = f"the Bulk Data export {args.bulk}"
        to_stdout = args.out is None and fmt is not None
        (sys.stderr if to_stdout else sys.stdout).write(summary(outcome, where, args.master))
        if to_stdout:
            write_rows(sys.stdout, fmt or "csv", outcome.rows(), source=where, evaluated_at=now)
        elif args.out is not None:
            written = write_file(args.out, fmt or "csv", outcome, source=where, evaluated_at=now)
            print(f"\nResults ({written} cards and errors) written to {args.out}")
            print(f"Issues ({outcome.issue_count}) written to {issues_path(args.out)}")
        if args.parquet is not None:
            print(f"Parquet written to {args.parquet}")
    except ExportTooNarrow as exc:
        print(f"cds-hooks: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncds-hooks: interrupted; no results written", file=sys.stderr)
        return 130
    except Exception as exc:  # a Spark or cluster failure: one line, not a JVM stack trace
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(f"cds-hooks: the Spark job failed: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    finally:
        if owned:
            spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if outcome.tally.statuses[FAILED] else 0


# ---------------------------------------------------------------- the summary and the files


def summary(outcome: BulkScreen, where: str, master: str | None) -> str:
    """Totals, the burden table over the living patients screened, what was read, the issues."""
    tally = outcome.tally
    rule_ids = list(default_knowledge().wording.cards)
    screened, failed = tally.screened, tally.statuses[FAILED]
    deceased = tally.statuses[DECEASED]
    skipped = (
        f" {deceased} deceased patient{'s' if deceased != 1 else ''} skipped "
        "(--include-deceased screens them)."
        if deceased
        else ""
    )
    engine = f"Spark at {master}" if master else "Spark in local mode"
    lines = [
        f"Screened {screened + failed} patient{'s' if screened + failed != 1 else ''} of {where} ({engine}, "
        f"{outcome.seconds:.1f} s): {tally.with_cards} with cards, {screened - tally.with_cards} without "
        f"cards, {failed} error{'s' if failed != 1 else ''}.{skipped}",
        "",
    ]
    patients = {r: tally.patients_per_rule.get(r, 0) for r in rule_ids} | dict(tally.patients_per_rule)
    lines += rule_table(patients, tally.cards_per_rule, screened, failed)
    lines += ["", *record_lines(outcome.counts)]
    if outcome.issue_count:
        lines += [
            "",
            f"Not screened ({outcome.issue_count} record{'s' if outcome.issue_count != 1 else ''}):",
        ]
        reasons = Counter({reason: n for (kind, reason), n in outcome.counts.items() if kind == "issues"})
        reasons.update(Counter(i.reason for i in outcome.issues if i.line is None))
        if tally.orphan_records:
            reasons["its subject is not a Patient of the export"] += tally.orphan_records
        lines += [f"  {n:>8}  {reason}" for reason, n in reasons.most_common()]
        shown = outcome.issues[:ISSUES_SHOWN]
        lines += ["", "First issues (file, line, reason):", *(f"  {i.text()}" for i in shown)]
    if tally.failed:
        lines += ["", "Errors:", *(f"  {pid}: {error}" for pid, error in tally.failed)]
    if tally.statuses[NO_PATIENT]:
        lines += [f"  ({tally.statuses[NO_PATIENT]} patient ids have records but no Patient resource)"]
    return "\n".join(lines) + "\n"


def record_lines(counts: Counter[tuple[str, str]]) -> list[str]:
    """Per resource type: read, kept for the rules, outside what they read, of a type they do not read."""
    types = sorted({t for (kind, t) in counts if kind == "read"})
    width = max([len("resource type"), *(len(t) for t in types)])
    lines = [f"{'resource type':<{width}}  {'read':>10}  {'kept':>10}  {'not for the rules':>17}"]
    for rtype in types:
        dropped = counts["outside what the rules read", rtype] + counts["not read by the rules", rtype]
        lines.append(
            f"{rtype:<{width}}  {counts['read', rtype]:>10,}  {counts['kept', rtype]:>10,}  {dropped:>17,}"
        )
    return lines


def _row_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(CARD_COLUMNS, row, strict=True))


def write_rows(
    stream: TextIO, fmt: str, rows: Iterator[tuple[Any, ...]], *, source: str, evaluated_at: datetime
) -> int:
    """One row per card (and per patient that failed), streamed: the driver holds one row at a time."""
    written = 0
    if fmt == "json":
        stream.write(
            json.dumps({"source": source, "evaluated_at": evaluated_at.isoformat()})[:-1] + ', "cards": ['
        )
        for row in rows:
            stream.write(("," if written else "") + "\n  " + json.dumps(_row_dict(row), ensure_ascii=False))
            written += 1
        stream.write("\n]}\n")
        return written
    writer = csv.DictWriter(stream, fieldnames=CARD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in _row_dict(row).items()})
        written += 1
    return written


def issues_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.issues.csv")


def write_file(out: Path, fmt: str, outcome: BulkScreen, *, source: str, evaluated_at: datetime) -> int:
    """The results file and, beside it, every issue (file, line, reason); each written to a temporary
    name and renamed once complete."""
    partial = out.with_name(f".{out.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as fh:
        written = write_rows(fh, fmt, outcome.rows(), source=source, evaluated_at=evaluated_at)
    os.replace(partial, out)
    target = issues_path(out)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("file", "line", "reason"))
        for issue in outcome.all_issues():
            writer.writerow((issue.file, "" if issue.line is None else issue.line, issue.reason))
    os.replace(partial, target)
    return written
