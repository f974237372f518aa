"""Spark's Python daemon, with the screen's modules imported before it forks its workers.

PySpark starts one daemon per executor and forks a worker from it for each task slot; each worker would
otherwise import the service (FHIR models, the knowledge, the rules: ~0.3 s) before its first record.
Imported here, once, the forked workers share them. Set as ``spark.python.daemon.module``
(:data:`cds_hooks.bulk.spark_job.SPARK_DEFAULTS`).
"""

from __future__ import annotations

import pyspark.worker  # noqa: F401  (the worker's own imports, forked too)
from pyspark.daemon import manager

import cds_hooks.bulk.stages  # noqa: F401

if __name__ == "__main__":
    manager()
