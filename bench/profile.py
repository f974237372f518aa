"""cProfile of the in-process evaluation (request JSON → cards) for the benchmark's requests.

python -m bench.profile                 # N=200 and N=5000, top 30 by cumulative and own time
python -m bench.profile 2000 --top 40   # other sizes; .pstats files go to bench/results/
python -m bench.profile 200 --flask     # the whole Flask request path (test client, no network)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir import json_codec
from cds_hooks.hooks.dispatch import evaluate_offline

from .generate import DEFAULT_SEED, NOW, encode, generate
from .servers import REPO


def _evaluate_call(n: int, seed: int) -> Callable[[], object]:
    knowledge = default_knowledge()
    body = encode(generate(n, seed=seed))
    return lambda: evaluate_offline(json_codec.loads(body), now=NOW, knowledge=knowledge)


def _flask_call(n: int, seed: int, data_dir: Path) -> Callable[[], object]:
    """One POST through the real app (routing, body parsing, prefetch, evaluation, card log, JSON)."""
    from cds_hooks.app import create_app
    from cds_hooks.process.config import Settings

    app = create_app(Settings.from_env({}, data_dir=data_dir, log_level="WARNING"))
    client = app.test_client()
    body = encode(generate(n, seed=seed, now=datetime.now(UTC)))

    def call() -> object:
        response = client.post(
            "/cds-services/immune-insulin-resistance", data=body, content_type="application/json"
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.get_data()[:300]!r}")
        return response

    return call


def profile(n: int, seed: int, seconds: float, top: int, flask: bool = False) -> str:
    """Profile repeated calls for about ``seconds``; the report text (and a .pstats file)."""
    with tempfile.TemporaryDirectory() as tmp:
        call = _flask_call(n, seed, Path(tmp)) if flask else _evaluate_call(n, seed)
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
    what = "flask" if flask else "evaluate"
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
    args = p.parse_args(argv)
    for n in args.sizes:
        print(profile(n, args.seed, args.seconds, args.top, args.flask))


if __name__ == "__main__":
    main()
