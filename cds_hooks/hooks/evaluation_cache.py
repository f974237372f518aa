"""Chart-session reuse: a patient's facts and findings kept per worker between calls with the same record.

A chart session sends the same record several times within minutes: patient-view when the chart opens,
order-select on every change of the order form, order-sign. Building facts and findings and validating
the resources cards cite again is waste, so the service keeps what they came to (a ``RecordMemo``: the
rules' inputs and the validations) under a key that covers everything they depend on:

- a content hash (SHA-256, about 0.1 ms for a 200-resource record) of every resource of the index,
  i.e. everything the rules can read: the prefetch, what was fetched from the FHIR server and the
  referenced Medications (a resource added later, such as a Medication sent with a draft order, drops
  the memo for that call);
- the patient id, the knowledge version (a hash of the knowledge files and the thresholds in force);
- the evaluation day (UTC). Within a day an entry lives at most ``TTL_S``: the facts of a hit are those
  computed at its first call, minutes earlier.

Cards are not cached: they are rendered on every call, and snoozes and the no-repeat rule at signing
are applied to them as before. Bounded per worker by entries and by an estimate of memory (decoded FHIR
JSON takes several times its encoded size; the facts keep the resources they cite), with
``cachetools.TTLCache``; ``CDS_HOOKS_EVALUATION_CACHE_ENTRIES=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from cachetools import TTLCache

from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.resource_index import RecordMemo, ResourceIndex

TTL_S = 15 * 60  # a chart session's minutes, not a day's
MEMORY_FACTOR = 8  # bytes a cached record keeps alive per byte of its encoded JSON (estimate)

Key = tuple[bytes, str, str, str]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    skipped: int = 0  # cache off, or a record whose content cannot be hashed


def knowledge_version(knowledge: Knowledge) -> str:
    """A hash of the knowledge files and the thresholds in force: a reviewed change is a new version."""
    digest = hashlib.blake2b(digest_size=16)
    root = Path(knowledge.root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in sorted(knowledge.thresholds):
        digest.update(f"{name}={knowledge.thresholds[name].value!r};".encode())
    return digest.hexdigest()


def record_digest(index: ResourceIndex) -> tuple[bytes, int] | None:
    """SHA-256 of every resource of the index in its order, and the encoded size; ``None`` when the
    content cannot be encoded (then nothing is cached)."""
    try:
        content = orjson.dumps(list(index))
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.sha256(content).digest(), len(content)


class EvaluationCache:
    """Per-worker memos of records' evaluations, bounded by entries and estimated bytes, with a TTL."""

    def __init__(self, knowledge: Knowledge, *, max_entries: int, max_bytes: int, ttl: float = TTL_S):
        self.version = knowledge_version(knowledge)
        self.max_entries = max_entries
        self._cache: TTLCache[Key, tuple[RecordMemo, int]] = TTLCache(
            maxsize=max(max_bytes, 1), ttl=ttl, getsizeof=lambda entry: entry[1]
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe; a worker runs threads
        self.stats = CacheStats()

    def attach(self, index: ResourceIndex, patient_id: str, now: datetime) -> str:
        """Give ``index`` the memo of its record (a new, empty one on a miss); 'hit', 'miss' or 'skip'."""
        if self.max_entries <= 0:
            self.stats.skipped += 1
            return "skip"
        found = record_digest(index)
        if found is None:
            self.stats.skipped += 1
            return "skip"
        digest, size = found
        key = (digest, patient_id, self.version, now.date().isoformat())
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self.stats.hits += 1
                index.memo = entry[0]
                return "hit"
            self.stats.misses += 1
            memo = RecordMemo(inputs={}, validations={})
            cost = size * MEMORY_FACTOR
            if cost <= self._cache.maxsize:
                while len(self._cache) >= self.max_entries:
                    self._cache.popitem()
                self._cache[key] = (memo, cost)
        index.memo = memo
        return "miss"

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return int(self._cache.currsize)
