"""cProfile of the in-process evaluation (request JSON → cards) for the benchmark's requests.

python -m bench.profile                 # N=200 and N=5000, top 30 by cumulative and own time
python -m bench.profile 2000 --top 40   # other sizes; .pstats files go to bench/results/
python -m bench.profile 200 --flask     # the whole Flask request path (test client, no network)
python -m bench.profile 200 --flask --new-patients   # a different pool patient on every call
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir import json_codec
from cds_hooks.hooks.dispatch import evaluate_offline

from .generate import DEFAULT_SEED, NOW, encode, generate, pool_patient
from .servers import REPO

PROFILE_POOL = 300  # patients cycled by --new-patients (a few seconds of profiling sees each once)


def _bodies(n: int, seed: int, now: datetime, new_patients: bool) -> Iterator[bytes]:
    """The same body forever, or the pool's patients one after another (``--new-patients``)."""
    if not new_patients:
        return itertools.repeat(encode(generate(n, seed=seed, now=now)))
    return itertools.cycle([encode(pool_patient(i, n, seed=seed, now=now)) for i in range(PROFILE_POOL)])


def _evaluate_call(n: int, seed: int, new_patients: bool = False) -> Callable[[], object]:
    knowledge = default_knowledge()
    bodies = _bodies(n, seed, NOW, new_patients)
    return lambda: evaluate_offline(json_codec.loads(next(bodies)), now=NOW, knowledge=knowledge)


def _flask_call(n: int, seed: int, data_dir: Path, new_patients: bool = False) -> Callable[[], object]:
    """One POST through the real app (routing, body parsing, prefetch, evaluation, card log, JSON)."""
    from cds_hooks.app import create_app
    from cds_hooks.process.config import Settings

    app = create_app(Settings.from_env({}, data_dir=data_dir, log_level="WARNING"))
    client = app.test_client()
    bodies = _bodies(n, seed, datetime.now(UTC), new_patients)

    def call() -> object:
        response = client.post(
            "/cds-services/immune-insulin-resistance", data=next(bodies), content_type="application/json"
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.get_data()[:300]!r}")
        return response

    return call


def profile(
    n: int, seed: int, seconds: float, top: int, flask: bool = False, new_patients: bool = False
) -> str:
    """Profile repeated calls for about ``seconds``; the report text (and a .pstats file)."""
    with tempfile.TemporaryDirectory() as tmp:
        call = (
            _flask_call(n, seed, Path(tmp), new_patients) if flask else _evaluate_call(n, seed, new_patients)
        )
        for _ in range(3):
            call()
        profiler = cProfile.Profile()
        runs = 0
        started = time.perf_counter()
        profiler.enable()
        while runs < 3 or time.perf_counter() - started < seconds:
            call()
            runs += 1
        profiler.disable()
    what = ("flask" if flask else "evaluate") + ("-new" if new_patients else "")
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(out_dir / f"profile-{what}-n{n}.pstats")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    text.write(f"## {what} N={n}: {runs} calls profiled (times below are totals over all calls)\n")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("sizes", nargs="*", type=int, default=[200, 5000])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--flask", action="store_true", help="profile the whole Flask request path")
    p.add_argument("--new-patients", action="store_true", help="a different pool patient every call")
    args = p.parse_args(argv)
    for n in args.sizes:
        print(profile(n, args.seed, args.seconds, args.top, args.flask, args.new_patients))


if __name__ == "__main__":
    main()
