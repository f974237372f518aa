"""``cds-hooks demo``: a local FHIR server with the example patients, the service, and the URLs to try.

Starts the real FHIR R4 test server (sekmet-fhir, :mod:`cds_hooks.testing.fhir_test_server`)
**open** (no auth, as the CDS Hooks Sandbox needs it from a browser; it sends CORS headers itself),
loads the example patients of ``examples/`` through its REST API (transaction Bundles), runs the
service in this process (werkzeug's threaded WSGI server: one process, Ctrl-C stops everything) and
prints the discovery URL, the FHIR base, CDS Hooks Sandbox links and a curl line.

The module also holds the example loader used by the end-to-end tests: the example Bundles carry dates
relative to ``anchor_date`` in ``examples/manifest.json`` and :func:`example_bundle` shifts every date by
(today − anchor), so the look-back windows hold whenever the examples are loaded.

Run it as ``cds-hooks demo`` or ``python -m cds_hooks.cli.demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import signal
import sys
import tempfile
import uuid
import webbrowser
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cds_hooks.hooks.example_files import examples_dir

SANDBOX = "https://sandbox.cds-hooks.org/"
SERVICE_ID = "immune-insulin-resistance"

# A FHIR date or dateTime with at least a full day (partial dates "2024" / "2024-05" are left alone).
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})((?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)$")
# Keys whose string values are never dates (codes, ids, references, narrative).
_NOT_DATES = frozenset({"id", "reference", "fullUrl", "url", "system", "code", "display", "text", "div"})


# ------------------------------------------------------------------------------------ the examples


def load_manifest(directory: Path | None = None) -> dict[str, Any]:
    """``manifest.json``: ``anchor_date`` and, per example, file, patient_id, description, expected_rules."""
    directory = directory or examples_dir()
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def shift_dates(node: Any, days: int) -> Any:
    """A copy of ``node`` with every FHIR date/dateTime string moved by ``days`` days (time of day and
    zone kept). Partial dates and strings under id/code/reference/text keys are left alone."""
    if days == 0:
        return node

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and key not in _NOT_DATES:
            match = _DATE.match(value)
            if match:
                with contextlib.suppress(ValueError):
                    day = date.fromisoformat(match.group(1)) + timedelta(days=days)
                    return day.isoformat() + match.group(2)
        return value

    return walk(node, None)


def utc_today() -> date:
    """The day the service calls "now" (it evaluates windows in UTC)."""
    return datetime.now(UTC).date()


def date_shift(manifest: dict[str, Any], today: date | None = None) -> int:
    """Days to add to every date of the examples so that ``anchor_date`` becomes ``today``."""
    anchor = date.fromisoformat(manifest["anchor_date"])
    return ((today or utc_today()) - anchor).days


def example_bundle(
    item: dict[str, Any],
    *,
    directory: Path | None = None,
    manifest: dict[str, Any] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """One example's transaction Bundle with its dates moved to ``today`` (default: today, UTC)."""
    directory = directory or examples_dir()
    manifest = manifest or load_manifest(directory)
    bundle = json.loads((directory / item["file"]).read_text(encoding="utf-8"))
    return shift_dates(bundle, date_shift(manifest, today))


def load_examples(
    server: Any, *, directory: Path | None = None, today: date | None = None
) -> list[dict[str, Any]]:
    """Load every example into ``server`` (a :class:`~cds_hooks.testing.fhir_test_server.LocalFhirServer`)
    through its REST API, one transaction Bundle each; returns the manifest's example entries."""
    directory = directory or examples_dir()
    manifest = load_manifest(directory)
    for item in manifest["examples"]:
        server.load_bundle(example_bundle(item, directory=directory, manifest=manifest, today=today))
    return list(manifest["examples"])


# ---------------------------------------------------------------------------------------------- URLs


# The Sandbox's screens and the hook each one calls. An order screen needs both parameters: with
# ``screen`` alone the Sandbox keeps its last hook (patient-view) and sends that to the order services.
SANDBOX_SCREENS = {"patient-view": "patient-view", "rx-view": "order-select", "rx-sign": "order-sign"}
# The hyperglycaemic example whose Rx View / Rx Sign links are printed (the Sandbox's medication picker
# offers oral glucocorticoids but no insulin, so the steroid card is the one an order screen can show).
ORDER_RULE = "glucocorticoid-hyperglycemia"
ORDER_MEDICATION = "Prednisone 20 MG Oral Tablet"


def sandbox_url(
    fhir_base: str,
    discovery_url: str,
    patient_id: str,
    *,
    screen: str = "patient-view",
    sandbox: str = SANDBOX,
) -> str:
    """A CDS Hooks Sandbox link preset to this FHIR server, this service, one patient and one screen
    (``patient-view``, ``rx-view`` or ``rx-sign``)."""
    query = urlencode(
        {
            "fhirServiceUrl": fhir_base,
            "serviceDiscoveryURL": discovery_url,
            "patientId": patient_id,
            "hook": SANDBOX_SCREENS[screen],
            "screen": screen,
        },
        quote_via=quote,
        safe="",
    )
    return f"{sandbox}?{query}"


def order_example(examples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The example for the order-screen links: the first that fires the glucocorticoid rule alone."""
    return next((item for item in examples if item.get("expected_rules") == [ORDER_RULE]), None)


def showcase(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One example per rule id (the first that fires that rule alone), for the Sandbox links."""
    picked: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in examples:
        rules = item.get("expected_rules") or []
        if len(rules) == 1 and rules[0] not in seen:
            seen.add(rules[0])
            picked.append(item)
    return picked


def curl_line(service_url: str, fhir_base: str, patient_id: str) -> str:
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, service_url + patient_id)),
        "fhirServer": fhir_base,
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
    }
    return f"curl -s -X POST {service_url} -H 'Content-Type: application/json' -d '{json.dumps(body)}'"


# ----------------------------------------------------------------------------------------- the demo


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    """Start everything, print the URLs, serve until Ctrl-C / SIGTERM, then stop everything."""
    from werkzeug.serving import make_server

    from cds_hooks.app import create_app
    from cds_hooks.process.config import ConfigError, Settings
    from cds_hooks.testing.fhir_test_server import (
        FhirServerError,
        LocalFhirServer,
        default_venv,
        ensure_installed,
        is_installed,
    )
    from cds_hooks.web.smart_app import open_url

    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    keep_data = args.data_dir is not None
    data_dir = (
        Path(args.data_dir).absolute() if keep_data else Path(tempfile.mkdtemp(prefix="cds-hooks-demo-"))
    )
    fhir: LocalFhirServer | None = None
    http = None
    try:
        directory = examples_dir()
        display_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
        base_url = f"http://{display_host}:{args.port}"
        try:
            # A local sandbox: the FHIR server is on loopback (allowed here, refused by default as SSRF
            # protection) and the CDS Hooks Sandbox's JWTs are not verified.
            settings = Settings.from_env(
                host=args.host,
                port=args.port,
                data_dir=data_dir / "service",
                public_base_url=base_url,
                mode="development",
                fhir_allow_private=True,
                jwt="off",
            )
        except ConfigError as exc:
            print(f"cds-hooks demo: configuration error: {exc}", file=sys.stderr)
            return 2
        # Bind the service's port first so a busy port fails before anything else starts.
        try:
            http = make_server(args.host, args.port, create_app(settings), threaded=True)
        except (OSError, SystemExit) as exc:  # werkzeug exits (after printing why) when the port is busy
            print(f"cds-hooks demo: cannot listen on {args.host}:{args.port} ({exc})", file=sys.stderr)
            return 1

        venv = default_venv()
        if not is_installed(venv):
            print(
                f"Installing the FHIR test server (sekmet-fhir) into {venv} (first run only) ...", flush=True
            )
        try:
            venv = ensure_installed(venv)
            fhir = LocalFhirServer(
                data_dir / "fhir", host=args.host, port=args.fhir_port, tokens=None, venv=venv
            )
            fhir.start()
        except FhirServerError as exc:
            print(f"cds-hooks demo: the FHIR server did not start: {exc}", file=sys.stderr)
            return 1
        manifest = load_manifest(directory)
        shift = date_shift(manifest)
        print(f"Loading {len(manifest['examples'])} example patients from {directory} ...", flush=True)
        try:
            examples = load_examples(fhir, directory=directory)
        except FhirServerError as exc:
            print(f"cds-hooks demo: loading the examples failed: {exc}", file=sys.stderr)
            return 1

        discovery = f"{base_url}/cds-services"
        service_url = f"{discovery}/{SERVICE_ID}"
        lines = [
            "",
            "CDS Hooks demo is running (synthetic patients only).",
            f"  FHIR server (open, no auth): {fhir.base_url}",
            f"  Discovery:                   {discovery}",
            f"  Service:                     {service_url}",
            f"  Example patients:            {len(examples)} "
            f"(dates shifted by {shift:+d} days from the anchor {manifest['anchor_date']})",
            "",
            "CDS Hooks Sandbox (it reads the FHIR server and calls the service from your browser):",
        ]
        links = []
        for item in showcase(examples):
            link = sandbox_url(fhir.base_url, discovery, item["patient_id"])
            links.append(link)
            lines.append(f"  {item['patient_id']} ({', '.join(item['expected_rules'])}): {link}")
        ordering = order_example(examples)
        if ordering is not None:
            pid = ordering["patient_id"]
            lines += [
                "",
                f"Order screens for {pid} (pick '{ORDER_MEDICATION}' in the Medication box; "
                "Rx Sign: then 'Sign Order'):",
                f"  Rx View (order-select): {sandbox_url(fhir.base_url, discovery, pid, screen='rx-view')}",
                f"  Rx Sign (order-sign):   {sandbox_url(fhir.base_url, discovery, pid, screen='rx-sign')}",
            ]
        first = showcase(examples)[0]["patient_id"] if examples else "ex01"
        lines += [
            "",
            "Or with curl (the service fetches everything from the FHIR server):",
            f"  {curl_line(service_url, fhir.base_url, first)}",
        ]
        if examples:
            richest = max(examples, key=lambda item: len(item.get("expected_rules") or []))
            rules = richest.get("expected_rules") or [None]
            timeline = open_url(base_url, fhir.base_url, richest["patient_id"], rules[-1])
            lines += [
                "",
                f"The record behind {richest['patient_id']}'s cards on one time axis "
                "(SMART app, open FHIR server):",
                f"  Timeline: {timeline}",
            ]
        lines += [
            "",
            "All patients and their expected cards: docs/examples.md. Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)
        if not args.no_open and links:
            with contextlib.suppress(Exception):
                webbrowser.open(links[0])
        http.serve_forever()  # returns on Ctrl-C (werkzeug swallows KeyboardInterrupt) or SIGTERM
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if http is not None:
            http.server_close()
        if fhir is not None:
            fhir.stop()
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        print("CDS Hooks demo stopped.", flush=True)


# --------------------------------------------------------------------------------------- command line


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--port", type=int, default=8080, help="port of the CDS service (default 8080)")
    parser.add_argument("--fhir-port", type=int, default=8081, help="port of the FHIR server (default 8081)")
    parser.add_argument("--host", default="127.0.0.1", help="interface for both servers (default 127.0.0.1)")
    parser.add_argument(
        "--no-open", action="store_true", help="do not open the CDS Hooks Sandbox in a browser"
    )
    parser.add_argument(
        "--data-dir",
        help="keep the FHIR database and service data here (default: a temporary folder removed at exit)",
    )
    parser.set_defaults(func=run_demo)
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on the ``cds-hooks`` command line (``subparsers`` from ``add_subparsers``)."""
    parser = subparsers.add_parser(
        "demo",
        help="run a local FHIR server with the example patients and the service, and print URLs to try",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    return configure_parser(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = configure_parser(
        argparse.ArgumentParser(prog="cds-hooks demo", description=__doc__.split("\n\n")[0])
    )
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
