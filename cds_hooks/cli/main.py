"""Command line: ``cds-hooks serve | evaluate | screen | export | survey | feedback | demo | audit``

Exit codes of ``evaluate`` and ``screen``: 0 success; 1 an evaluation problem (unreadable request, FHIR
server unreachable or refusing the token, unknown patient, a patient that could not be screened); 2 a
usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from cds_hooks.cli import audit as cli_audit
from cds_hooks.cli import demo
from cds_hooks.cli import evaluate as cli_evaluate
from cds_hooks.cli import export as cli_export
from cds_hooks.cli import feedback as cli_feedback
from cds_hooks.cli import screen as cli_screen
from cds_hooks.cli import survey as cli_survey
from cds_hooks.clinical.knowledge import KnowledgeError
from cds_hooks.process.config import ConfigError, Settings


def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    try:
        settings = Settings.from_env(**overrides)
    except ConfigError as exc:
        print(f"cds-hooks: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.dev:
        from cds_hooks.app import create_app

        create_app(settings).run(host=settings.host, port=settings.port, threaded=True)
        return 0
    from cds_hooks.cli.serve import run_gunicorn

    run_gunicorn(settings, workers=args.workers, threads=args.threads)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cds-hooks", description="CDS Hooks service for immune-mediated insulin resistance."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (gunicorn; --dev for Flask's server)")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1, or CDS_HOOKS_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080, or CDS_HOOKS_PORT)")
    serve.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    serve.add_argument("--threads", type=int, default=2, help="threads per worker (default 2)")
    serve.add_argument("--dev", action="store_true", help="use Flask's development server instead")
    serve.set_defaults(func=_serve)
    cli_evaluate.add_parser(sub)
    cli_screen.add_parser(sub)
    cli_export.add_parser(sub)
    cli_survey.add_parser(sub)
    cli_feedback.add_parser(sub)
    demo.add_parser(sub)
    cli_audit.add_parser(sub)
    return parser


def _run_cli_command(args: argparse.Namespace) -> int:
    """``evaluate`` and ``screen``: configuration problems are exit 2, like ``serve``'s."""
    # urllib3 logs each retry of an unreachable server; the command says it once, in its own words.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except (ConfigError, KnowledgeError) as exc:
        print(f"cds-hooks: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`… --json | head`): no traceback; silence the flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("evaluate", "screen"):
        return _run_cli_command(args)
    return int(args.func(args))
