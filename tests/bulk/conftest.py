"""Fixtures of the bulk screen tests: the example patients as a Bulk Data export (NDJSON, some files
gzip), a real local SparkContext shared by every Spark test of the session, and a fixed instant.

Every Spark test carries ``xdist_group("spark")`` (scripts/test.sh runs pytest with ``--dist loadgroup``),
so one xdist worker runs them all against the one SparkContext."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.bulk.ndjson import EXPORT_TYPES
from cds_hooks.bulk.spark_job import java_problem, start_spark
from cds_hooks.cli.demo import example_bundle, load_manifest

# The instant every test evaluates at; the examples' dates are shifted to today, as load_examples does.
NOW = datetime.now(UTC).replace(microsecond=0)
GZIPPED = ("Observation", "Condition")


def write_export(
    directory: Path, resources: list[dict[str, Any]], *, gzipped: tuple[str, ...] = GZIPPED
) -> Path:
    """``resources`` as a Bulk Data export: one NDJSON file per type (``GZIPPED`` types gzip), only the
    types an export for the rules holds, as ``$export?_type=…`` would give."""
    directory.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        if resource["resourceType"] in EXPORT_TYPES:
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource) + "\n")
    for rtype, lines in by_type.items():
        if rtype in gzipped:
            with gzip.open(directory / f"{rtype}.ndjson.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(lines)
        else:
            (directory / f"{rtype}.ndjson").write_text("".join(lines), encoding="utf-8")
    return directory


def example_resources() -> list[dict[str, Any]]:
    manifest = load_manifest()
    return [
        entry["resource"]
        for item in manifest["examples"]
        for entry in example_bundle(item, manifest=manifest)["entry"]
    ]


@pytest.fixture(scope="session")
def examples_manifest() -> dict[str, Any]:
    return load_manifest()


@pytest.fixture(scope="session")
def examples_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example patients (dates shifted to today) as an export directory."""
    return write_export(tmp_path_factory.mktemp("examples-export"), example_resources())


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One real local SparkContext (two cores) for the session's Spark tests."""
    problem = java_problem()
    if problem:
        pytest.skip(f"no Java runtime for Spark: {problem}")
    session = start_spark(None, {"spark.driver.memory": "1g"})
    try:
        yield session
    finally:
        session.stop()
