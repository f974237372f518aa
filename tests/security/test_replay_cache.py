"""The JWT replay cache in the database (X7): insert-or-fail, shared by instances, expiring rows."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import inspect

from cds_hooks.security.replay_cache import ReplayCache, jwt_replay_table
from cds_hooks.store.database import Store, metadata


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.sqlite3'}"


def test_table_is_on_the_store_metadata_and_created_by_store(tmp_path):
    assert metadata.tables["jwt_replay"] is jwt_replay_table
    store = Store(sqlite_url(tmp_path))
    try:
        assert inspect(store.engine).has_table("jwt_replay")
    finally:
        store.dispose()


def test_first_sighting_accepted_second_refused(tmp_path):
    store = Store(sqlite_url(tmp_path))
    try:
        cache = ReplayCache(store.engine, clock=lambda: 1000)
        assert cache.remember("https://iss", "a", 2000)
        assert not cache.remember("https://iss", "a", 2000)
        assert cache.remember("https://other-iss", "a", 2000)  # jti is unique per issuer
    finally:
        store.dispose()


def test_two_instances_sharing_a_database_file(tmp_path):
    one, two = Store(sqlite_url(tmp_path)), Store(sqlite_url(tmp_path))
    try:
        assert one.engine is not two.engine
        assert ReplayCache(one.engine).remember("https://iss", "jti-1", 2**40)
        assert not ReplayCache(two.engine).remember("https://iss", "jti-1", 2**40)
    finally:
        one.dispose()
        two.dispose()


def test_concurrent_inserts_of_one_jti_accept_exactly_one(tmp_path):
    stores = [Store(sqlite_url(tmp_path)) for _ in range(2)]
    caches = [ReplayCache(s.engine) for s in stores]
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda i: caches[i % 2].remember("https://iss", "race", 2**40), range(32))
            )
        assert results.count(True) == 1
    finally:
        for s in stores:
            s.dispose()


def test_expired_rows_are_purged_opportunistically(tmp_path):
    store = Store(sqlite_url(tmp_path))
    now = [1000]
    try:
        cache = ReplayCache(store.engine, purge_interval=60, clock=lambda: now[0])
        for i in range(5):
            cache.remember("https://iss", f"old-{i}", 1100)
        assert cache.count() == 5
        now[0] = 1200  # those tokens have expired; the next call purges them
        cache.remember("https://iss", "new", 1500)
        assert cache.count() == 1
        now[0] = 1210  # within the purge interval: no second purge, nothing expired anyway
        cache.remember("https://iss", "newer", 1500)
        assert cache.count() == 2
    finally:
        store.dispose()


def test_an_expired_row_does_not_block_its_jti(tmp_path):
    store = Store(sqlite_url(tmp_path))
    now = [1000]
    try:
        cache = ReplayCache(store.engine, purge_interval=10**9, clock=lambda: now[0])
        assert cache.remember("https://iss", "j", 1100)
        now[0] = 1101
        assert cache.remember("https://iss", "j", 1400)
        assert not cache.remember("https://iss", "j", 1400)
    finally:
        store.dispose()


def test_cache_creates_its_table_on_a_database_without_it(tmp_path):
    from sqlalchemy import create_engine

    engine = create_engine(sqlite_url(tmp_path))
    try:
        assert ReplayCache(engine).remember("https://iss", "j", 2**40)
    finally:
        engine.dispose()
