"""``cds-hooks evaluate``: one patient-view call from the command line, through the service's ``Pipeline``.

Two sources of a request: a saved CDS Hooks request file (prefetch only, absent keys counting as no
data — or, with ``--fhir-server``, what is missing fetched from that server), or a patient id on a FHIR
server, for which the request is built the way an EHR would build it (no prefetch: the service fetches
every template). The ``Evaluator`` here is shared with ``cds-hooks screen``: it turns every failure into
an ``EvaluationFailed`` whose message a person can act on and which never contains the token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_hooks.cli.output import format_response
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.client import FhirClient, FhirTimeout, FhirUnavailable, NotFound, build_session
from cds_hooks.hooks.dispatch import DEFAULT_BASE_URL, evaluate_offline
from cds_hooks.hooks.pipeline import Pipeline
from cds_hooks.hooks.prefetch import PrefetchUnavailable
from cds_hooks.hooks.protocol import CdsError, CdsRequest, parse_service_request
from cds_hooks.hooks.registry import PATIENT_VIEW_ID, ServiceDefinition
from cds_hooks.process.config import Settings

CLI_USER = "Practitioner/cli"

# Hint for FhirClient's (token-free) reasons, so the message says what to do next; timeouts name
# their own setting (FhirTimeout.setting).
_UNREACHABLE_HINT = "check the URL and that the server is running"


class EvaluationFailed(Exception):
    """An evaluation that could not finish, with a message for a person (never the token).

    ``server_wide``: the server itself is the problem (token refused, or unreachable / not a FHIR base at
    the start), so evaluating other patients there is pointless: ``screen`` stops, not fails each row."""

    def __init__(self, message: str, *, server_wide: bool = False, timed_out: bool = False):
        super().__init__(message)
        self.message = message
        self.server_wide = server_wide
        # The server did not answer in time (screen backs off after several in a row).
        self.timed_out = timed_out


@dataclass(frozen=True)
class Evaluated:
    request: CdsRequest
    response: dict[str, Any]


def patient_view_request(patient_id: str, patient: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request an EHR sends when a chart opens: no prefetch (the service fetches everything), or
    only the Patient when the caller has already read it."""
    request: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": CLI_USER, "patientId": patient_id},
    }
    if patient is not None:
        request["prefetch"] = {"patient": patient}
    return request


@dataclass
class Evaluator:
    """Evaluates patient-view requests for the command line with one long-lived ``Pipeline``."""

    pipeline: Pipeline
    now: datetime | None = None
    _checked_servers: set[str] = field(default_factory=set)

    @classmethod
    def from_env(cls, *, now: datetime | None = None, parallel_requests: int = 1) -> Evaluator:
        """Settings from ``CDS_HOOKS_*``; the HTTP pool is sized for ``parallel_requests`` concurrent
        patients, each fetching up to ``fhir_max_workers`` keys at once (urllib3 discards and warns
        about connections beyond the pool)."""
        settings = Settings.from_env()
        session = build_session(
            pool_size=max(10, parallel_requests * settings.fhir_max_workers), retries=settings.fhir_retries
        )
        return cls(Pipeline(settings=settings, knowledge=default_knowledge(), session=session), now=now)

    @property
    def service(self) -> ServiceDefinition:
        return self.pipeline.services[PATIENT_VIEW_ID]

    @property
    def base_url(self) -> str:
        """Where card links point: the deployed service when configured, else the default."""
        return self.pipeline.settings.public_base_url or DEFAULT_BASE_URL

    def client(self, server: str, token: str | None, *, max_pages: int | None = None) -> FhirClient:
        """A client for requests the CLI makes itself (server checks, listing patients)."""
        return self.pipeline.client(server, token, max_pages=max_pages)

    def absent_keys(self, req: CdsRequest) -> list[str]:
        """Prefetch keys the request does not carry (offline they count as no data)."""
        return [key for key in self.service.prefetch if key not in req.prefetch]

    # ---------------------------------------------------------------- evaluation

    def offline(self, body: Any, source: str) -> Evaluated:
        """The request's prefetch alone; nothing is fetched, whatever ``fhirServer`` it names."""
        req = self._parse(body, source)
        response = evaluate_offline(
            body, now=self.now, knowledge=self.pipeline.knowledge, base_url=self.base_url
        )
        return Evaluated(req, response)

    def on_server(self, body: Any, source: str, server: str, token: str | None) -> Evaluated:
        """The request with ``fhirServer``/``fhirAuthorization`` replaced by ours; what is missing is fetched.

        A token saved in the file is dropped: it was issued for the EHR's server, not for ``server``."""
        if not isinstance(body, dict):
            self._parse(body, source)  # raises with the protocol's message for a non-object
        body = {k: v for k, v in body.items() if k != "fhirAuthorization"}
        body["fhirServer"] = server
        if token:
            body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "subject": CLI_USER}
        req = self._parse(body, source)
        client = self.pipeline.client_for(req)
        assert client is not None
        if self._reads_patient(req):
            # The service treats a 404 on the Patient read as "no data" and answers no cards; from the
            # command line that almost always means a wrong id or server, so say so instead.
            self.check_server(server, token)
            self._check_patient(client, req, server, token)
        try:
            response = self.pipeline.run(self.service, req, base_url=self.base_url, now=self.now)
        except PrefetchUnavailable as exc:
            timed_out = any(isinstance(error, FhirTimeout) for _, error in exc.failures.values())
            if not timed_out:
                # A refused token or a dead server deserves one line rather than one per search.
                self._check_patient(client, req, server, token, missing_ok=True)
            raise fetch_problem(exc, server) from exc
        except CdsError as exc:
            raise EvaluationFailed(exc.message) from exc
        return Evaluated(req, response)

    def patient(
        self, server: str, token: str | None, patient_id: str, patient: dict[str, Any] | None = None
    ) -> Evaluated:
        """A patient on ``server`` evaluated as the EHR would ask for it when the chart opens
        (``patient``: its Patient resource, already read)."""
        source = f"the request for patient {patient_id!r}"
        return self.on_server(patient_view_request(patient_id, patient), source, server, token)

    def read_patient(self, server: str, token: str | None, patient_id: str) -> dict[str, Any]:
        """The Patient resource; ``EvaluationFailed`` when the server has no such patient or fails."""
        self.check_server(server, token)
        try:
            patient = self.client(server, token).read(f"Patient/{patient_id}")
        except FhirUnavailable as exc:
            raise server_problem(exc, server, token) from exc
        if patient is None:
            raise EvaluationFailed(f"no patient '{patient_id}' on {server}")
        return patient

    # ---------------------------------------------------------------- checks and messages

    def check_server(self, server: str, token: str | None) -> None:
        """Once per server: is this a FHIR base at all (``metadata``)? Catches wrong URLs up front, so a
        later 404 on the Patient read really means an unknown patient."""
        if server in self._checked_servers:
            return
        try:
            capability = self.client(server, token).get_json("metadata")
        except NotFound as exc:
            raise EvaluationFailed(
                f"{server} is not a FHIR server base URL: GET {server}/metadata answered 404 "
                "(the base usually ends in /fhir or /R4)",
                server_wide=True,
            ) from exc
        except FhirUnavailable as exc:
            raise EvaluationFailed(server_problem(exc, server, token).message, server_wide=True) from exc
        if not isinstance(capability, dict) or capability.get("resourceType") != "CapabilityStatement":
            raise EvaluationFailed(
                f"{server} does not answer like a FHIR server (GET metadata returned no CapabilityStatement)",
                server_wide=True,
            )
        self._checked_servers.add(server)

    def _check_patient(
        self, client: FhirClient, req: CdsRequest, server: str, token: str | None, *, missing_ok: bool = False
    ) -> None:
        try:
            patient = client.read(f"Patient/{req.patient_id}")
        except FhirUnavailable as exc:
            raise server_problem(exc, server, token) from exc
        if patient is None and not missing_ok:
            raise EvaluationFailed(f"no patient '{req.patient_id}' on {server}")

    def _reads_patient(self, req: CdsRequest) -> bool:
        """Whether ``Pipeline.run`` will read the Patient from the server (its key is absent, or the EHR's
        own fetch failed and it sent an OperationOutcome)."""
        if "patient" not in req.prefetch:
            return True
        value = req.prefetch["patient"]
        return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"

    def _parse(self, body: Any, source: str) -> CdsRequest:
        """``source`` says what the request is, for the message ("request file 'x.json'")."""
        try:
            return parse_service_request(body, self.service.hook)
        except CdsError as exc:
            raise EvaluationFailed(f"{source} is not a valid CDS Hooks request: {exc.message}") from exc


def server_problem(exc: FhirUnavailable, server: str, token: str | None) -> EvaluationFailed:
    """A failure to get data from the server, worded for the person who typed the URL and token.

    A refused token is server-wide; a timeout or dropped connection during one patient may be passing."""
    if exc.status in (401, 403):
        if token:
            return EvaluationFailed(
                f"the FHIR server refused the token (HTTP {exc.status}) at {server}: check --token",
                server_wide=True,
            )
        return EvaluationFailed(
            f"the FHIR server at {server} requires a token (HTTP {exc.status}): pass one with --token",
            server_wide=True,
        )
    hint = _hint(exc)
    where = f"the FHIR server at {server}"
    reason = (
        exc.reason.replace("the FHIR server", where, 1)
        if "the FHIR server" in exc.reason
        else f"{where}: {exc.reason}"
    )
    return EvaluationFailed(reason + (f": {hint}" if hint else ""), timed_out=isinstance(exc, FhirTimeout))


def _hint(exc: Exception) -> str:
    if isinstance(exc, FhirTimeout):
        return f"it may be slow or overloaded; {exc.setting} raises the limit"
    if isinstance(exc, FhirUnavailable) and exc.unreachable:
        return _UNREACHABLE_HINT
    return ""


def fetch_problem(exc: PrefetchUnavailable, server: str) -> EvaluationFailed:
    """Searches that failed, each named with what was sent and the setting that governs the failure."""
    parts = []
    for key, (search, error) in sorted(exc.failures.items()):
        hint = _hint(error)
        parts.append(f"the {key} search ({search}): {error}" + (f" ({hint})" if hint else ""))
    timed_out = any(isinstance(error, FhirTimeout) for _, error in exc.failures.values())
    return EvaluationFailed(f"reading from {server} failed: " + "; ".join(parts), timed_out=timed_out)


def load_request(path: str) -> tuple[Any, str]:
    """The decoded JSON of a request file (``-`` for standard input) and what to call it in messages."""
    name = "the request on standard input" if path == "-" else f"request file '{path}'"
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EvaluationFailed(f"{name} not found") from exc
    except UnicodeDecodeError as exc:
        raise EvaluationFailed(f"{name} is not UTF-8 text") from exc
    except OSError as exc:
        raise EvaluationFailed(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text), name
    except json.JSONDecodeError as exc:
        raise EvaluationFailed(
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc


# ---------------------------------------------------------------- argument types (shared with screen)


def fhir_base(value: str) -> str:
    """``--fhir-server``: an absolute http(s) URL, without trailing slash."""
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1].strip("/")) == 0:
        raise argparse.ArgumentTypeError(f"must be an absolute http(s) URL, got {value!r}")
    return value.rstrip("/")


def instant(value: str) -> datetime:
    """``--now``: an ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO 8601 date or date-time like 2026-06-01T12:00:00Z, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- the command


# Where the command line takes the FHIR token from when --token is not given.
TOKEN_ENV = "CDS_HOOKS_FHIR_TOKEN"


def add_token_argument(parser: argparse.ArgumentParser) -> None:
    """``--token``, defaulting to $CDS_HOOKS_FHIR_TOKEN (which keeps it out of ps and shell history)."""
    parser.add_argument(
        "--token",
        metavar="T",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"bearer token for the FHIR server (never printed; default ${TOKEN_ENV}, which keeps it out of "
        "the process list and shell history)",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "evaluate",
        help="evaluate one patient: a saved CDS Hooks request, or a patient on a FHIR server",
        description=(
            "Evaluate a saved patient-view request (prefetch only; absent keys count as no data), or with "
            "--fhir-server fetch what it lacks from that server. With --fhir-server and --patient, build "
            "the request as an EHR would and fetch everything."
        ),
    )
    parser.add_argument("request", nargs="?", metavar="REQUEST.json", help="saved request ('-': stdin)")
    parser.add_argument("--fhir-server", type=fhir_base, metavar="URL", help="FHIR R4 base URL to fetch from")
    parser.add_argument("--patient", metavar="ID", help="patient id on --fhir-server (instead of a file)")
    add_token_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the raw CDS Hooks response")
    parser.add_argument("--now", type=instant, metavar="ISO", help="evaluate as of this time (default: now)")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.patient is not None and args.request is not None:
        parser.error("give either REQUEST.json or --patient, not both")
    if args.patient is None and args.request is None:
        parser.error("give REQUEST.json, or --fhir-server URL --patient ID")
    if args.patient is not None and not args.fhir_server:
        parser.error("--patient needs --fhir-server")
    if args.token and not args.fhir_server:
        parser.error("--token needs --fhir-server")

    evaluator = Evaluator.from_env(now=args.now)
    try:
        if args.patient is not None:
            done = evaluator.patient(args.fhir_server, args.token, args.patient)
            heading = f"Patient {done.request.patient_id} on {args.fhir_server}"
        else:
            body, name = load_request(args.request)
            if args.fhir_server:
                done = evaluator.on_server(body, name, args.fhir_server, args.token)
                heading = (
                    f"Patient {done.request.patient_id} "
                    f"(from {args.request}; missing data from {args.fhir_server})"
                )
            else:
                done = evaluator.offline(body, name)
                absent = evaluator.absent_keys(done.request)
                note = f"; absent keys count as no data: {', '.join(absent)}" if absent else ""
                heading = f"Patient {done.request.patient_id} (from {args.request}, prefetch only{note})"
    except EvaluationFailed as exc:
        print(f"cds-hooks: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(done.response, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(format_response(done.response, heading))
    return 0
