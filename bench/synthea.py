"""Screening real-shaped records (issue 16): seeded Synthea adults in sekmet-fhir, screened as
``cds-hooks screen`` does, next to the FHIR server's own time for the same requests sent directly.

The records are the test suite's (``tests/data/synthea-adults.json.gz``, ``scripts/synthea_fixture.py``)
unless ``--synthea-file`` names a bigger set in the same format. The direct run replays every URL the
screen fetched (recorded from its HTTP session) with a plain session at the same parallelism: what the
server itself needs, the floor of the screen's time."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from cds_hooks.cli.evaluate import Evaluator
from cds_hooks.cli.screen import DEFAULT_CONCURRENCY, screen
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.client import build_session
from cds_hooks.hooks.pipeline import Pipeline
from cds_hooks.process.config import Settings
from cds_hooks.testing.fhir_test_server import LocalFhirServer, ensure_installed

DEFAULT_RECORDS = Path(__file__).parents[1] / "tests" / "data" / "synthea-adults.json.gz"
REFERENCE_DATE = datetime(2026, 12, 1, 12, tzinfo=UTC)


def synthea_bench(
    records_file: Path, knowledge: Knowledge, workdir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    with gzip.open(records_file, "rt", encoding="utf-8") as fh:
        records: list[dict[str, Any]] = json.load(fh)
    settings = Settings.from_env({})
    parallel = DEFAULT_CONCURRENCY * settings.fhir_max_workers
    session = build_session(pool_size=parallel, retries=settings.fhir_retries)
    fetched: list[str] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: fetched.append(response.url))
    evaluator = Evaluator(
        Pipeline(settings=settings, knowledge=knowledge, session=session), now=REFERENCE_DATE
    )
    with LocalFhirServer(workdir / "synthea-fhir", tokens=None, venv=ensure_installed()) as fhir:
        started = time.perf_counter()
        for record in records:
            fhir.load_bundle(record, timeout=600)
        loaded_s = time.perf_counter() - started
        log(f"synthea: {len(records)} records loaded into sekmet-fhir in {loaded_s:.1f} s")
        ids = [record["entry"][0]["resource"]["id"] for record in records]
        started = time.perf_counter()
        run = screen(evaluator, fhir.base_url, None, ids, concurrency=DEFAULT_CONCURRENCY)
        screen_s = time.perf_counter() - started
        screened = len(run.results)

        direct = requests.Session()
        direct.headers["Accept"] = "application/fhir+json"

        def get(url: str) -> int:
            return direct.get(url, timeout=600).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            statuses = list(pool.map(get, fetched))
        direct_s = time.perf_counter() - started
    result = {
        "records": len(records),
        "screened": screened,
        "skipped_deceased": len(run.skipped_deceased),
        "errors": sum(1 for r in run.results if r.error),
        "concurrency": DEFAULT_CONCURRENCY,
        "screen_s": round(screen_s, 2),
        "patients_per_s": round(screened / screen_s, 2) if screen_s else None,
        "requests": len(fetched),
        "direct_s": round(direct_s, 2),
        "direct_errors": sum(1 for s in statuses if s >= 400),
        "ratio_screen_over_direct": round(screen_s / direct_s, 2) if direct_s else None,
    }
    log(f"synthea: {result}")
    return result
