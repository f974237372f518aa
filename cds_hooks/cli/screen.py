"""``cds-hooks screen``: evaluate many patients on a FHIR server, as the EHR would when each chart opens.

This is how a clinic finds, say, everyone still on animal insulin. Patients are evaluated concurrently
(a bounded pool: the FHIR server is usually the EHR's production server), each through the service's own
``Pipeline``. One patient failing (unknown id, 412, a timeout) is recorded with its error and the run
goes on; a refused token stops the run at once, since no other patient would fare better. Timeouts in a
row mean the server is not keeping up: the pool halves, and after ``--stop-after-timeouts`` in a row the
screen stops rather than pile more searches onto it. Deceased patients are skipped unless asked for.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from cds_hooks.cli import bulk_screen
from cds_hooks.cli.evaluate import (
    EvaluationFailed,
    Evaluator,
    add_token_argument,
    fhir_base,
    instant,
    server_problem,
)
from cds_hooks.cli.screen_report import FORMATS, PatientResult, render_results, summary_text, write_results
from cds_hooks.fhir.client import FhirUnavailable
from cds_hooks.fhir.patient import is_deceased

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
# Patient listing: page size asked for, and a paging cap far above CDS_HOOKS_FHIR_MAX_PAGES (which
# bounds one patient's data, not a population).
LIST_PAGE_SIZE = 200
LIST_MAX_PAGES = 100_000
# A FHIR id; anything else is left to the request validation to reject with its own message.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Timeouts in a row: every HALVE_AFTER of them halves the workers; DEFAULT_STOP_AFTER of them stops.
HALVE_AFTER = 2
DEFAULT_STOP_AFTER = 6


class Progress:
    """A tqdm progress bar on stderr when it is a terminal; silent otherwise, so logs, pipes and CI output
    get only the summary. The bar is cleared at the end, so the summary starts on a clean line."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.failed = 0
        self._bar: tqdm | None = None
        self.total = total

    def start(self) -> None:
        """Show the empty bar at once: the first patient may take a while."""
        if self.enabled and self._bar is None:
            # Redrawn for every patient (one takes far longer than a redraw): no throttling to wait out.
            self._bar = tqdm(
                total=self.total,
                desc="screening",
                unit="patient",
                file=self.stream,
                leave=False,
                mininterval=0,
                miniters=1,
            )

    def advance(self, failed: bool) -> None:
        self.start()
        self.failed += int(failed)
        if self._bar is not None:
            if failed:
                self._bar.set_postfix_str(
                    f"{self.failed} error{'s' if self.failed != 1 else ''}", refresh=False
                )
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def list_patients(evaluator: Evaluator, server: str, token: str | None) -> dict[str, dict[str, Any]]:
    """Every Patient on the server by id (``GET Patient?_count=…``, following ``next`` links), in order."""
    client = evaluator.client(server, token, max_pages=LIST_MAX_PAGES)
    try:
        resources = client.search(f"Patient?_count={LIST_PAGE_SIZE}")
    except FhirUnavailable as exc:
        problem = server_problem(exc, server, token)
        raise EvaluationFailed(f"listing the patients failed: {problem.message}", server_wide=True) from exc
    patients: dict[str, dict[str, Any]] = {}
    for resource in resources:
        rid = resource.get("id")
        if resource.get("resourceType") == "Patient" and isinstance(rid, str) and rid:
            patients.setdefault(rid, resource)
    return patients


@dataclass
class Backoff:
    """Adaptive concurrency: every ``HALVE_AFTER`` timeouts in a row halve the workers (at least one);
    ``stop_after`` in a row stop the screen. Any answered patient resets the count."""

    workers: int
    stop_after: int = DEFAULT_STOP_AFTER
    in_a_row: int = 0
    events: list[str] = field(default_factory=list)

    def record(self, timed_out: bool) -> None:
        if not timed_out:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        if self.in_a_row % HALVE_AFTER == 0 and self.workers > 1 and not self.stopped:
            self.workers //= 2
            self.events.append(
                f"{self.in_a_row} timeouts in a row: down to {self.workers} patient"
                f"{'s' if self.workers != 1 else ''} at once"
            )

    @property
    def stopped(self) -> bool:
        return self.in_a_row >= self.stop_after


@dataclass
class ScreenRun:
    """What a screen produced: one result per patient screened (or not reached), the deceased skipped,
    and why the run stopped early, if it did."""

    results: list[PatientResult]
    skipped_deceased: list[str] = field(default_factory=list)
    stopped: str | None = None
    backoff: list[str] = field(default_factory=list)


def screen(
    evaluator: Evaluator,
    server: str,
    token: str | None,
    patient_ids: Sequence[str],
    *,
    patients: Mapping[str, dict[str, Any]] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop_after: int = DEFAULT_STOP_AFTER,
    include_deceased: bool = False,
    progress: Progress | None = None,
) -> ScreenRun:
    """One result per patient, in the order given. ``patients``: Patient resources already read (the
    listing); others are read here. Raises ``EvaluationFailed`` (server-wide) and cancels what has not
    started when the server refuses the token."""
    known = dict(patients or {})
    now = evaluator.now or datetime.now(UTC)
    skipped: list[str] = []

    def evaluate(patient_id: str) -> tuple[PatientResult | None, bool]:
        """The result (None: deceased, skipped) and whether the server timed out."""
        try:
            patient = known.get(patient_id)
            if patient is None and FHIR_ID.fullmatch(patient_id):
                patient = evaluator.read_patient(server, token, patient_id)
            if patient is not None and not include_deceased and is_deceased(patient, now):
                return None, False
            done = evaluator.patient(server, token, patient_id, patient)
        except EvaluationFailed as exc:
            if exc.server_wide:
                raise
            return PatientResult(patient_id, error=exc.message), exc.timed_out
        except Exception as exc:  # one odd record must not stop a population screening
            return PatientResult(patient_id, error=f"unexpected error: {type(exc).__name__}: {exc}"), False
        return PatientResult.from_response(patient_id, done.response), False

    backoff = Backoff(concurrency, stop_after)
    results: dict[str, PatientResult] = {}
    queue = list(patient_ids)
    running: dict[Future[tuple[PatientResult | None, bool]], str] = {}
    if progress:
        progress.start()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="screen")
    try:
        while queue or running:
            while queue and len(running) < backoff.workers and not backoff.stopped:
                patient_id = queue.pop(0)
                running[pool.submit(evaluate, patient_id)] = patient_id
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                patient_id = running.pop(future)
                result, timed_out = future.result()
                backoff.record(timed_out)
                if result is None:
                    skipped.append(patient_id)
                else:
                    results[patient_id] = result
                if progress:
                    progress.advance(result is not None and result.error is not None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if progress:
            progress.close()
    stopped = None
    if backoff.stopped:
        stopped = (
            f"stopped after {backoff.in_a_row} timeouts in a row: the FHIR server at {server} is not keeping "
            f"up; {len(queue)} patient{'s' if len(queue) != 1 else ''} not screened. Try again later, with "
            "fewer patients at once (--concurrency), a longer limit (the setting each error names) or "
            "--stop-after-timeouts"
        )
        for patient_id in queue:
            results[patient_id] = PatientResult(
                patient_id, error="not screened: the screen stopped (timeouts)"
            )
    ordered = [results[p] for p in patient_ids if p in results]
    return ScreenRun(ordered, skipped, stopped, backoff.events)


# ---------------------------------------------------------------- the command


def _concurrency(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}")
    return number


def _stop_after(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return number


def _patient_list(value: str) -> list[str]:
    ids = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not ids:
        raise argparse.ArgumentTypeError("give at least one patient id, e.g. --patients p1,p2")
    return ids


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "screen",
        help="evaluate many patients on a FHIR server and summarise who gets which card",
        description=(
            "Population screening: evaluate the given patients (or every Patient on the server) "
            "concurrently, print patients per rule id, and write one row per patient to a CSV or JSON file."
        ),
    )
    parser.add_argument("--fhir-server", type=fhir_base, metavar="URL", help="FHIR R4 base URL")
    # Required unless --bulk: checked in run(), so the message stays argparse's.
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--patients", type=_patient_list, metavar="ID,…", help="comma-separated patient ids")
    which.add_argument("--all", action="store_true", help="every Patient on the server")
    add_token_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write results to FILE (format: --format, else the extension .csv or .json)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="results as csv or json (without --out: to standard output, the summary to standard error)",
    )
    parser.add_argument(
        "--include-deceased", action="store_true", help="screen deceased patients too (skipped by default)"
    )
    parser.add_argument(
        "--stop-after-timeouts",
        type=_stop_after,
        default=DEFAULT_STOP_AFTER,
        metavar="N",
        help=f"stop after N timeouts in a row (default {DEFAULT_STOP_AFTER}); every {HALVE_AFTER} in a row "
        "halve the patients evaluated at once",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"patients evaluated at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--now", type=instant, metavar="ISO", help="evaluate as of this time (default: now)")
    bulk_screen.add_arguments(parser)
    parser.set_defaults(func=run, parser=parser)


def results_format(parser: argparse.ArgumentParser, out: Path | None, fmt: str | None) -> str | None:
    """The results format from ``--format`` or the extension of ``--out`` (a usage error otherwise)."""
    if out is not None:
        if fmt is None:
            fmt = out.suffix.lower().lstrip(".")
            if fmt not in FORMATS:
                parser.error(f"--out must end in .csv or .json (or give --format), got '{out}'")
        if not out.parent.is_dir():
            parser.error(f"--out: the folder '{out.parent}' does not exist")
    return fmt


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    out: Path | None = args.out
    fmt = results_format(parser, out, args.format)
    if args.bulk is not None:
        if args.fhir_server or args.patients or args.all:
            parser.error("--bulk screens a whole export: not with --fhir-server, --patients or --all")
        return bulk_screen.run(args, fmt)
    bulk_screen.refuse_bulk_options(parser, args)
    if not args.fhir_server:
        parser.error("the following arguments are required: --fhir-server (or --bulk DIR_OR_URL)")
    if not args.patients and not args.all:
        parser.error("one of the arguments --patients --all is required")

    server: str = args.fhir_server
    evaluator = Evaluator.from_env(now=args.now, parallel_requests=args.concurrency)
    try:
        evaluator.check_server(server, args.token)
        patients = {} if args.patients else list_patients(evaluator, server, args.token)
        patient_ids = args.patients or list(patients)
        progress = Progress(len(patient_ids))
        outcome = screen(
            evaluator,
            server,
            args.token,
            patient_ids,
            patients=patients,
            concurrency=args.concurrency,
            stop_after=args.stop_after_timeouts,
            include_deceased=args.include_deceased,
            progress=progress,
        )
    except EvaluationFailed as exc:
        print(f"cds-hooks: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncds-hooks: interrupted; no results written", file=sys.stderr)
        return 130

    results = outcome.results
    rule_ids = list(evaluator.pipeline.knowledge.wording.cards)
    to_stdout = out is None and fmt is not None
    summary = summary_text(
        results,
        rule_ids,
        server,
        list_patients=out is None and not to_stdout,
        skipped_deceased=len(outcome.skipped_deceased),
    )
    (sys.stderr if to_stdout else sys.stdout).write(summary)
    evaluated_at = args.now or datetime.now(UTC)
    if to_stdout:
        sys.stdout.write(render_results(fmt or "csv", results, server=server, evaluated_at=evaluated_at))
    elif out is not None:
        write_results(out, results, fmt=fmt or "csv", server=server, evaluated_at=evaluated_at)
        print(f"\nResults for {len(results)} patients written to {out}")
    for event in outcome.backoff:
        print(f"cds-hooks: {event}", file=sys.stderr)
    if outcome.stopped:
        print(f"cds-hooks: {outcome.stopped}", file=sys.stderr)
        return 1
    return 1 if any(r.error for r in results) else 0
