"""Population screening at health-system scale: Bulk Data exports (NDJSON), screened with Apache Spark.

``ndjson`` finds and reads an export's files (one bad record costs that record, never the run),
``export`` runs a Bulk Data ``$export`` and downloads it, ``prefilter`` keeps what the rules could read,
``patient`` evaluates one patient with the service's own pure evaluation, ``spark_job`` runs that over
a population (PySpark, the optional ``scale`` extra: imported only there), ``survey`` lists the codes an
export holds and ``concept_map`` drafts the site's ConceptMap from them.
"""
