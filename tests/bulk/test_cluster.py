"""The same screen on a real Spark standalone cluster: the test starts a master and one worker (the
``spark-class`` launcher PySpark ships) on loopback and runs ``cds-hooks screen --bulk --master`` in a
process of its own; every example gets exactly its declared rules, and the Spark UI address is printed."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cds_hooks.bulk.spark_job import java_problem
from tests.bulk.conftest import NOW

pytestmark = pytest.mark.xdist_group("spark")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@contextmanager
def standalone_cluster(logs: Path) -> Iterator[str]:
    """A master and a worker (1 core, 1 GB) on 127.0.0.1; the master URL once the worker has registered."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(_spark_class())
    master_log, worker_log = logs / "master.log", logs / "worker.log"
    with master_log.open("wb") as m, worker_log.open("wb") as w:
        master = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(ui)],
            env=env, stdout=m, stderr=subprocess.STDOUT,
        )  # fmt: skip
        worker = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "1",
             "--memory", "1g", "--webui-port", str(_free_port())],
            env=env, stdout=w, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240  # two JVMs starting on a busy 2-core machine
            while "Registering worker" not in master_log.read_text(errors="replace"):
                if time.monotonic() > deadline or master.poll() is not None or worker.poll() is not None:
                    pytest.fail(f"the standalone cluster did not start:\n{master_log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield url
        finally:
            for process in (worker, master):
                process.terminate()
            for process in (worker, master):
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_the_screen_runs_on_a_standalone_master_and_worker(examples_export, examples_manifest, tmp_path):
    problem = java_problem()
    if problem:
        pytest.skip(f"no Java runtime for Spark: {problem}")
    out = tmp_path / "cluster.csv"
    with standalone_cluster(tmp_path) as master:
        done = subprocess.run(
            [sys.executable, "-m", "cds_hooks", "screen", "--bulk", str(examples_export), "--master", master,
             "--spark-conf", "spark.executor.memory=768m", "--spark-conf", "spark.driver.host=127.0.0.1",
             "--out", str(out), "--now", NOW.isoformat()],
            capture_output=True, text=True, timeout=240, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Spark UI: http://" in done.stderr
    assert f"(Spark at {master}, " in done.stdout
    assert "Traceback" not in done.stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for example in examples_manifest["examples"]:
        got = sorted(r["rule_id"] for r in rows if r["patient_id"] == example["patient_id"])
        assert got == sorted(example["expected_rules"]), example["patient_id"]
