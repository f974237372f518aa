"""The screen as an Apache Spark job: read the parts, keep what the rules could read, group by patient,
evaluate each patient in the executors with the service's own evaluation, write the outputs.

PySpark (the ``scale`` extra) is imported only in this module, so the service runs without it. The job
runs in local mode on this machine's cores (``--engine local``) or on a cluster (``--master``:
``spark://…`` standalone, ``yarn``, ``k8s://…``). The export's files must be readable at the same path
by the driver and every executor (a local disk in local mode, a shared file system on a cluster).

The driver holds counts, a bounded list of examples and one result row at a time (the CSV/JSON are
written from ``toLocalIterator``); the records and the patients stay in the executors.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cds_hooks.bulk.ndjson import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_PART_BYTES,
    Export,
    Issue,
    Part,
    absolute_line,
    is_gzip,
    plan,
)
from cds_hooks.bulk.patient import FAILED, PatientOutcome
from cds_hooks.bulk.prefilter import bounds
from cds_hooks.bulk.stages import (
    COUNTS,
    ISSUE,
    MEDICATION,
    NEEDS_MEDICATION,
    RESOURCE,
    executor_knowledge,
    read_part,
    screen_patients,
)
from cds_hooks.bulk.tally import MAX_LISTED, Tally

if TYPE_CHECKING:
    from pyspark import SparkContext

APP_NAME = "cds-hooks-screen"
SPARK_DEFAULTS = {
    "spark.driver.memory": "2g",
    "spark.ui.showConsoleProgress": "false",
    "spark.python.worker.reuse": "true",
    "spark.sql.session.timeZone": "UTC",
    # Workers forked with the service already imported (cds_hooks/bulk/spark_daemon.py).
    "spark.python.daemon.module": "cds_hooks.bulk.spark_daemon",
}
# Local mode only: the one JVM does little but move the records between Python processes, so it starts
# with the quick compiler and the serial collector (~0.5 s less start-up on two cores).
LOCAL_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# About this many patients per evaluation task, and bytes of the export per reading task: a task costs
# ~0.1 s of scheduling and Python start-up, so tasks are few and large, and always a multiple of the
# cores, so that no core waits for one last task at the end of a step.
PATIENTS_PER_TASK = 2500
BYTES_PER_TASK = 256 * 1024 * 1024
_LOG4J = Path(__file__).with_name("log4j2.properties")


class ExportTooNarrow(ValueError):
    """The export's ``_typeFilter`` left out Observations the screen's window reads."""


class EngineUnavailable(RuntimeError):
    """Spark cannot run here (PySpark not installed, no Java, a Spark Connect URL); the message says how
    to fix it."""


def java_problem() -> str | None:
    """Why no JVM can be started, or ``None``."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return None
    if shutil.which("java"):
        return None
    return (
        "Spark needs Java 17 or later and none was found (java on PATH or $JAVA_HOME): on Debian or Ubuntu "
        "run 'apt-get install -y openjdk-17-jre-headless' (or scripts/install-java.sh)"
    )


def active_context() -> SparkContext | None:
    """The SparkContext already running in this process (a notebook's, a test's): used, not stopped."""
    try:
        from pyspark import SparkContext
    except ImportError:
        return None
    return SparkContext._active_spark_context


def start_spark(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkContext:
    """A SparkContext: local mode on every core (``master`` None), or the given cluster. A context, not
    a SparkSession: the job uses the RDD API, and a session's SQL start-up (about 2 s) is paid only when
    Parquet is written (or reused when one is already active)."""
    if master and master.startswith("sc://"):
        raise EngineUnavailable(
            "Spark Connect (sc://) is not supported: the screen uses the RDD API and the status tracker, "
            "which Spark Connect does not offer; give the cluster's master URL (spark://, yarn, k8s://)"
        )
    try:
        from pyspark import SparkConf, SparkContext
    except ImportError as exc:
        raise EngineUnavailable("PySpark is not installed: pip install '.[scale]'") from exc
    problem = java_problem()
    if problem:
        raise EngineUnavailable(problem)
    # Executors run the package from this interpreter (the same virtualenv on every node).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    log4j = f"-Dlog4j2.configurationFile=file:{_LOG4J}"
    driver_java = log4j if master else f"{log4j} {LOCAL_JAVA_OPTIONS}"
    settings = (
        SparkConf()
        .setAppName(APP_NAME)
        .setMaster(master or f"local[{os.cpu_count() or 1}]")
        .set("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
        .set("spark.driver.extraJavaOptions", driver_java)
        .set("spark.executor.extraJavaOptions", log4j)
    )
    for key, value in {**SPARK_DEFAULTS, **(conf or {})}.items():
        settings = settings.set(key, value)
    sc = SparkContext.getOrCreate(settings)
    sc.setLogLevel("ERROR")
    return sc


# ---------------------------------------------------------------- progress


@dataclass
class Stage:
    """What a progress bar shows for one step: its name and how far it is (done, total)."""

    name: str
    total: int | None


ProgressFactory = Callable[[Stage], "ProgressSink"]


class ProgressSink:
    """Receives a step's progress; the command line shows it as a tqdm bar."""

    def update(self, done: int) -> None:  # pragma: no cover - the default does nothing
        pass

    def close(self) -> None:  # pragma: no cover
        pass


def _run_tracked(
    sc: SparkContext, action: Callable[[], Any], progress: Callable[[], int], sink: ProgressSink
) -> Any:
    """Run ``action`` (a Spark action) in a thread, feeding ``progress()`` to the sink twice a second."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="spark-action", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
            sink.update(progress())
        sink.update(progress())
    finally:
        sink.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _tasks_done(sc: SparkContext, group: str) -> int:
    tracker = sc.statusTracker()
    done = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else ():
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                done += stage.numCompletedTasks
    return done


# ---------------------------------------------------------------- the job


@dataclass
class BulkScreen:
    """What a bulk screen found, for the summary and the files."""

    counts: Counter[tuple[str, str]]
    issues: list[Issue]
    issue_count: int
    tally: Tally
    ui_url: str | None
    seconds: float = 0.0
    rows: Callable[[], Iterator[tuple[Any, ...]]] = field(default=lambda: iter(()), repr=False)
    # Every issue (the manifest's, each bad record's, each record without its Patient), streamed.
    all_issues: Callable[[], Iterator[Issue]] = field(default=lambda: iter(()), repr=False)

    def read(self, rtype: str) -> int:
        return self.counts["read", rtype]


# The columns of the per-card results (CSV, JSON and Parquet).
CARD_COLUMNS = ("patient_id", "rule_id", "indicator", "summary", "decisive_values", "error")


def _rows(outcome: PatientOutcome) -> list[tuple[Any, ...]]:
    """Sortable result rows: one per card, and one for a patient that failed."""
    if outcome.status == FAILED:
        return [((outcome.patient_id, -1), (outcome.patient_id, "", "", "", "", outcome.error))]
    return [
        ((c.patient_id, i), (c.patient_id, c.rule_id, c.indicator, c.summary, c.decisive_values, None))
        for i, c in enumerate(outcome.cards)
    ]


def run_screen(
    sc: SparkContext,
    export: Export,
    *,
    now: datetime,
    env: Mapping[str, str],
    base_url: str,
    include_deceased: bool = False,
    part_bytes: int = DEFAULT_PART_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    parquet: Path | None = None,
    progress: ProgressFactory | None = None,
) -> BulkScreen:
    """Screen every patient of ``export``. The results stay in the executors until ``rows()`` streams
    them (sorted by patient, cards in their order); ``parquet`` writes them there as well."""
    from pyspark import StorageLevel

    started = time.perf_counter()
    env = dict(env)
    gap = bounds(executor_knowledge(env), now).window_gap(export.observations_from)
    if gap:
        raise ExportTooNarrow(gap)
    parts = plan(export.files, part_bytes)
    sink = progress or (lambda stage: ProgressSink())
    group = f"screen-{uuid.uuid4().hex[:8]}"

    # Parts share a task, balanced by size (largest first into the lightest task).
    weights = {p: _weight(p) for p in parts}  # each file looked at once
    slices = min(len(parts), _tasks(sc, sum(weights.values()), BYTES_PER_TASK)) or 1
    groups = balanced(weights, slices)
    tagged = sc.parallelize(groups, max(1, len(groups))).mapPartitions(
        lambda items: (
            tagged_item
            for group_ in items
            for p in group_
            for tagged_item in read_part(p, env, now, max_line_bytes)
        )
    )
    tagged.persist(StorageLevel.MEMORY_AND_DISK)

    def count_parts() -> list[Counter[tuple[str, str]]]:
        sc.setJobGroup(group + "-read", "reading the export")
        return tagged.filter(lambda t: t[0] == COUNTS).map(lambda t: t[1]).collect()

    per_part = _run_tracked(
        sc,
        count_parts,
        lambda: _tasks_done(sc, group + "-read"),
        sink(Stage("reading the export", len(groups))),
    )
    counts: Counter[tuple[str, str]] = sum(per_part, Counter())
    issue_count = sum(n for (kind, _), n in counts.items() if kind == "issues")
    issues = list(export.issues)
    if issue_count:
        found = tagged.filter(lambda t: t[0] == ISSUE).map(lambda t: t[1]).take(MAX_LISTED)
        issues += [absolute_line(i) for i in found]

    patients = counts["read", "Patient"]
    tasks = _tasks(sc, patients, PATIENTS_PER_TASK)
    by_patient = tagged.filter(lambda t: t[0] == RESOURCE).map(lambda t: (t[1], (t[2], t[3], t[4])))
    if counts["kept", "Medication"] and counts["referenced", "Medication"]:
        # The Medications the patients' medication records name, joined to those patients. Skipped (two
        # shuffles fewer) when the export has no Medication or no record names one.
        needed = tagged.filter(lambda t: t[0] == NEEDS_MEDICATION).map(lambda t: (t[1], t[2]))
        medications = tagged.filter(lambda t: t[0] == MEDICATION).map(lambda t: (t[1], t[2]))
        medications = medications.reduceByKey(lambda first, _: first, tasks)
        referenced = needed.distinct(tasks).join(medications, tasks)
        by_patient = by_patient.union(referenced.map(lambda kv: (kv[1][0], ("Medication", kv[1][1], None))))
    evaluated = sc.accumulator(0)

    def screen(groups: Iterator[tuple[str, Any]]) -> Iterator[PatientOutcome]:
        for outcome in screen_patients(groups, env, now, include_deceased, base_url):
            evaluated.add(1)
            yield outcome

    outcomes = by_patient.groupByKey(tasks).mapPartitions(screen)
    outcomes.persist(StorageLevel.MEMORY_AND_DISK)

    def tally() -> Tally:
        sc.setJobGroup(group + "-screen", "screening the patients")
        return outcomes.treeAggregate(Tally(), lambda t, o: t.add(o), lambda a, b: a.merge(b))

    result = _run_tracked(sc, tally, lambda: evaluated.value, sink(Stage("screening", patients)))
    issues += [absolute_line(i) for i in result.orphans]

    def all_issues() -> Iterator[Issue]:
        yield from export.issues
        bad = tagged.filter(lambda t: t[0] == ISSUE).map(lambda t: t[1])
        orphans = outcomes.flatMap(lambda o: o.issues)
        for issue in bad.union(orphans).toLocalIterator():
            yield absolute_line(issue)

    # One row per card and per failed patient; sorted by Spark only when there is one (a sort is two jobs).
    has_rows = sum(result.cards_per_rule.values()) + result.statuses[FAILED] > 0
    rows = outcomes.flatMap(_rows).sortByKey(numPartitions=tasks).values() if has_rows else sc.emptyRDD()
    if parquet is not None:
        _write_parquet(rows, parquet)
    return BulkScreen(
        counts=counts,
        issues=issues,
        issue_count=issue_count + len(export.issues) + result.orphan_records,
        tally=result,
        ui_url=sc.uiWebUrl,
        seconds=time.perf_counter() - started,
        rows=lambda: rows.toLocalIterator(),
        all_issues=all_issues,
    )


def _tasks(sc: SparkContext, amount: int, per_task: int) -> int:
    """Tasks for ``amount`` units of work, about ``per_task`` each, a multiple of the cores."""
    cores = max(1, sc.defaultParallelism)
    return cores * max(1, math.ceil(amount / (cores * per_task)))


def _weight(part: Part) -> int:
    """A part's bytes to read (a gzip file inflates about eightfold)."""
    size = os.path.getsize(part.path)
    if is_gzip(part.path):
        return 8 * size
    return (size if part.end < 0 else part.end) - part.start


def balanced(weights: dict[Part, int], slices: int) -> list[list[Part]]:
    """The parts (with their weights) in ``slices`` groups of about the same weight (longest-processing-
    time first: each part, largest first, to the lightest group); one reading task per group."""
    groups: list[list[Part]] = [[] for _ in range(slices)]
    loads = [0] * slices
    for part in sorted(weights, key=weights.__getitem__, reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].append(part)
        loads[lightest] += weights[part]
    return [g for g in groups if g]


def _write_parquet(rows: Any, directory: Path) -> None:
    """One row per card (and per failed patient), written by Spark's own Parquet writer."""
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType, StructField, StructType

    spark = SparkSession.builder.getOrCreate()  # on the running SparkContext

    schema = StructType([StructField(name, StringType(), True) for name in CARD_COLUMNS])
    spark.createDataFrame(rows, schema).write.mode("overwrite").parquet(str(directory))
