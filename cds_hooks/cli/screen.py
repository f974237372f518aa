"""``cds-hooks screen``: evaluate many patients on a FHIR server, as the EHR would when each chart opens.

This is how a clinic finds, say, everyone still on animal insulin. Patients are evaluated concurrently
(a bounded pool: the FHIR server is usually the EHR's production server), each through the service's own
``Pipeline``. One patient failing (unknown id, 412, a timeout) is recorded with its error and the run
goes on; a refused token stops the run at once, since no other patient would fare better.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from cds_hooks.cli.evaluate import (
    EvaluationFailed,
    Evaluator,
    add_token_argument,
    fhir_base,
    instant,
    server_problem,
)
from cds_hooks.cli.screen_report import OUTPUT_SUFFIXES, PatientResult, summary_text, write_results
from cds_hooks.fhir.client import FhirUnavailable

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
# Patient listing: page size asked for, and a paging cap far above CDS_HOOKS_FHIR_MAX_PAGES (which
# bounds one patient's data, not a population).
LIST_PAGE_SIZE = 200
LIST_MAX_PAGES = 100_000


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


def list_patient_ids(evaluator: Evaluator, server: str, token: str | None) -> list[str]:
    """Every Patient id on the server (``GET Patient?_count=…``, following ``next`` links), in its order."""
    client = evaluator.client(server, token, max_pages=LIST_MAX_PAGES)
    try:
        resources = client.search(f"Patient?_count={LIST_PAGE_SIZE}")
    except FhirUnavailable as exc:
        problem = server_problem(exc, server, token)
        raise EvaluationFailed(f"listing the patients failed: {problem.message}", server_wide=True) from exc
    ids = (r.get("id") for r in resources if r.get("resourceType") == "Patient")
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def screen(
    evaluator: Evaluator,
    server: str,
    token: str | None,
    patient_ids: Sequence[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> list[PatientResult]:
    """One result per patient, in the order given. Raises ``EvaluationFailed`` (server-wide) and cancels
    what has not started when the server refuses the token."""

    def evaluate(patient_id: str) -> PatientResult:
        try:
            done = evaluator.patient(server, token, patient_id)
        except EvaluationFailed as exc:
            if exc.server_wide:
                raise
            return PatientResult(patient_id, error=exc.message)
        except Exception as exc:  # one odd record must not stop a population screening
            return PatientResult(patient_id, error=f"unexpected error: {type(exc).__name__}: {exc}")
        return PatientResult.from_response(patient_id, done.response)

    results: dict[str, PatientResult] = {}
    if progress:
        progress.start()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="screen")
    try:
        futures = [pool.submit(evaluate, patient_id) for patient_id in patient_ids]
        for future in as_completed(futures):
            result = future.result()
            results[result.patient_id] = result
            if progress:
                progress.advance(result.error is not None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if progress:
            progress.close()
    return [results[patient_id] for patient_id in patient_ids]


# ---------------------------------------------------------------- the command


def _concurrency(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}")
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
    parser.add_argument(
        "--fhir-server", type=fhir_base, required=True, metavar="URL", help="FHIR R4 base URL"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--patients", type=_patient_list, metavar="ID,…", help="comma-separated patient ids")
    which.add_argument("--all", action="store_true", help="every Patient on the server")
    add_token_argument(parser)
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="write results to FILE: .csv or .json by its extension"
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"patients evaluated at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--now", type=instant, metavar="ISO", help="evaluate as of this time (default: now)")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    out: Path | None = args.out
    if out is not None:
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            parser.error(f"--out must end in .csv or .json, got '{out}'")
        if not out.parent.is_dir():
            parser.error(f"--out: the folder '{out.parent}' does not exist")

    server: str = args.fhir_server
    evaluator = Evaluator.from_env(now=args.now, parallel_requests=args.concurrency)
    try:
        evaluator.check_server(server, args.token)
        patient_ids = args.patients or list_patient_ids(evaluator, server, args.token)
        progress = Progress(len(patient_ids))
        results = screen(
            evaluator, server, args.token, patient_ids, concurrency=args.concurrency, progress=progress
        )
    except EvaluationFailed as exc:
        print(f"cds-hooks: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncds-hooks: interrupted; no results written", file=sys.stderr)
        return 130

    rule_ids = list(evaluator.pipeline.knowledge.wording.cards)
    sys.stdout.write(summary_text(results, rule_ids, server, list_patients=out is None))
    if out is not None:
        write_results(out, results, server=server, evaluated_at=args.now or datetime.now(UTC))
        print(f"\nResults for {len(results)} patients written to {out}")
    return 1 if any(r.error for r in results) else 0
