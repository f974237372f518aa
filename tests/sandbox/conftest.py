"""The real CDS Hooks Sandbox in headless Chromium, against the service and the real FHIR test server.

What runs (all on 127.0.0.1, for the session unless said otherwise):
- the Sandbox build, served by a static file server from ``$CDS_HOOKS_SANDBOX_DIR`` or
  ``../shared/cds-hooks-sandbox`` next to the repository (skipped with the reason when neither exists);
- Debian's Chromium (``/usr/bin/chromium``, or ``$CDS_HOOKS_CHROMIUM``; installed by
  scripts/install-chromium.sh, skipped with the reason when absent), driven by Playwright with the system
  binary; one browser, a fresh context (empty ``localStorage``) per test;
- the open sekmet-fhir server with the example patients (``open_fhir_server`` from the FHIR plugin);
- the service in this process (werkzeug's threaded server, as ``cds-hooks demo`` runs it), behind a
  recorder of every HTTP exchange, so CORS preflights (which Playwright does not report) can be checked.

Requests are never intercepted in the browser (``page.route`` would make Chromium skip the preflight);
external hosts are made unresolvable with ``--host-resolver-rules`` instead (this machine has no internet).
Every test saves a full-page screenshot to ``tests/sandbox/results/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from cds_hooks.app import create_app
from cds_hooks.cli.demo import examples_dir, load_examples, load_manifest, sandbox_url
from cds_hooks.process.config import Settings
from cds_hooks.store.database import feedback_table
from cds_hooks.testing.fhir_test_server import LocalFhirServer

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
SANDBOX_DIR_ENV = "CDS_HOOKS_SANDBOX_DIR"
CARD_SELECTOR = '[class*="card-list__decision-card"]'
TIMEOUT_MS = 45_000  # a page load to rendered cards takes 4–7 s on 2 idle cores; generous for busy ones


def sandbox_dir() -> Path | None:
    configured = os.environ.get(SANDBOX_DIR_ENV)
    candidate = Path(configured) if configured else REPO.parent / "shared" / "cds-hooks-sandbox"
    return candidate if (candidate / "index.html").is_file() else None


# --------------------------------------------------------------------------------- the HTTP recorder


SMART_LAUNCH_REGISTRATION = "/_services/smart/Launch"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    authorized: bool  # an Authorization header was sent
    headers: dict[str, str]  # response headers, lower-case names


class Recorder:
    """WSGI middleware keeping every exchange the service answered (the browser's view hides preflights)."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            exchange = Exchange(
                method=environ["REQUEST_METHOD"],
                path=environ.get("PATH_INFO", ""),
                status=int(status.split()[0]),
                authorized="HTTP_AUTHORIZATION" in environ,
                headers={k.lower(): v for k, v in headers},
            )
            with self._lock:
                self.exchanges.append(exchange)
            return start_response(status, headers, *args)

        return self.app(environ, recording_start_response)

    def mark(self) -> int:
        with self._lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges[mark:])


@dataclass
class Service:
    """The service on a free loopback port, in this process, as ``cds-hooks demo`` runs it."""

    app: Flask
    server: BaseWSGIServer
    recorder: Recorder
    base_url: str

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/cds-services"

    def feedback_rows(self, card_uuid: str) -> list[dict[str, Any]]:
        store = self.app.extensions["cds_hooks"].store
        with store.engine.connect() as conn:
            rows = conn.execute(select(feedback_table).where(feedback_table.c.card_uuid == card_uuid))
            return [dict(row._mapping) for row in rows]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.extensions["cds_hooks"].store.dispose()


def start_service(data_dir: Path, **overrides: object) -> Service:
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)  # bind first: the port is known
    base_url = f"http://127.0.0.1:{server.server_port}"
    settings = Settings.from_env(
        {},
        host="127.0.0.1",
        port=server.server_port,
        data_dir=data_dir,
        public_base_url=base_url,
        mode="development",
        fhir_allow_private=True,
        **overrides,
    )
    app = create_app(settings)
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder  # type: ignore[method-assign]
    server.app = app
    threading.Thread(target=server.serve_forever, name="sandbox-service", daemon=True).start()
    return Service(app=app, server=server, recorder=recorder, base_url=base_url)


# ------------------------------------------------------------------------------------ the page helper


@dataclass
class SandboxPage:
    """One Sandbox tab in a fresh browser context, with what the browser reported."""

    page: Any
    url: str
    sandbox_base: str
    sandbox_root: Path
    errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def unexpected_console_errors(self) -> list[str]:
        # For every card link of type ``smart`` the Sandbox POSTs to ``<fhirServer>/_services/smart/Launch``
        # as soon as the card renders, an endpoint only HSPC/Logica FHIR servers have. The test FHIR server
        # answers 404 and the Sandbox logs it: its behaviour with any other FHIR server, not a fault of the
        # card (docs/timeline.md, "From the CDS Hooks Sandbox").
        """Console errors other than the two the offline Sandbox always logs, which are not ours:
        a file its build does not ship (``styles.css``, ``favicon.ico``: 404 from the static server),
        and its public default discovery endpoint on an external host (unresolvable here)."""
        external_discoveries = sum(
            1
            for url in self.failed_requests
            if urlsplit(url).hostname != "127.0.0.1" and url.rstrip("/").endswith("/cds-services")
        )
        unexpected = []
        for text in self.errors:
            message, _, location = text.partition(" @ ")
            where = urlsplit(location)
            if location.startswith(self.sandbox_base) and "404" in message:
                if not (self.sandbox_root / where.path.lstrip("/")).exists():
                    continue  # not in the build
            elif where.hostname not in (None, "127.0.0.1") and message.startswith("Failed to load resource"):
                continue  # external host
            elif (where.path.endswith(SMART_LAUNCH_REGISTRATION) and "404" in message) or message.startswith(
                "Cannot grab launch context from the FHIR server endpoint to launch the SMART app"
            ):
                continue  # the Sandbox registering a card's smart link with an HSPC FHIR server (above)
            elif (
                message.startswith("Could not retrieve any services at discovery endpoint")
                and external_discoveries > 0
            ):
                external_discoveries -= 1
                continue
            unexpected.append(text)
        return unexpected

    def goto(self) -> None:
        self.page.goto(self.url)

    def load(self, service_id: str) -> dict[str, Any]:
        """Open the link; the JSON the service answered to the browser's first hook call to
        ``service_id`` (the page's own traffic, read, never intercepted)."""
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/cds-services/{service_id}"),
            timeout=TIMEOUT_MS,
        ) as response:
            self.page.goto(self.url)
        assert response.value.status == 200, response.value.text()
        return response.value.json()

    def order(self, medication: str, service_id: str, *, sign: bool = False) -> dict[str, Any]:
        """Pick ``medication`` on Rx View / Rx Sign (typed in one go: the box loses letters typed one by
        one) and, on Rx Sign, press "Sign Order"; the service's answer to that hook call."""
        box = self.page.locator('input[name="medication-input"]')
        box.fill(medication.split()[0].lower())
        choice = self.page.get_by_role("button", name=medication, exact=True)
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/cds-services/{service_id}"),
            timeout=TIMEOUT_MS,
        ) as response:
            choice.click()
            if sign:
                self.page.get_by_role("button", name="Sign Order").click()
        assert response.value.status == 200, response.value.text()
        return response.value.json()

    def screenshot(self, name: str) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def rendered_cards(self) -> list[tuple[str, str]]:
        """(indicator, summary) of every card as the Sandbox renders it, top to bottom."""
        return [
            (tuple(item) if isinstance(item, list) else item)
            for item in self.page.eval_on_selector_all(
                CARD_SELECTOR,
                """cards => cards.map(card => {
                    const level = (card.className.match(/card-list__alert-([a-z]+)/) || [])[1] || '';
                    const summary = card.querySelector('.MuiCardContent-root > p');
                    return [level, summary ? summary.innerText.trim() : ''];
                })""",
            )
        ]

    def wait_for_rendered(self, count: int) -> None:
        """The Sandbox has shown a response (its developer panel) and rendered ``count`` cards."""
        self.page.wait_for_function(
            """() => [...document.querySelectorAll('[class*="exchange-panel__fhir-view"]')]
                     .some(panel => panel.innerText.includes('"cards"'))""",
            timeout=TIMEOUT_MS,
        )
        if count:
            self.page.locator(CARD_SELECTOR).nth(count - 1).wait_for(timeout=TIMEOUT_MS)
        self.page.wait_for_function(
            f"() => document.querySelectorAll('{CARD_SELECTOR}').length === {count}", timeout=TIMEOUT_MS
        )


# -------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def sandbox_root() -> Path:
    found = sandbox_dir()
    if found is None:
        pytest.skip(
            f"CDS Hooks Sandbox build not found: set {SANDBOX_DIR_ENV} or put the build in "
            f"{REPO.parent / 'shared' / 'cds-hooks-sandbox'} (see README, 'The CDS Hooks Sandbox')"
        )
    return found


@pytest.fixture(scope="session")
def sandbox_base(sandbox_root: Path) -> Iterator[str]:
    """The Sandbox build over HTTP on a free loopback port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(sandbox_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="sandbox-static", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser(sandbox_root: Path, chromium_browser: Any) -> Any:
    """The shared Chromium (tests/browser_plugin.py), once the Sandbox build is known to be there."""
    return chromium_browser


@pytest.fixture(scope="session")
def examples_on_open_server(open_fhir_server: LocalFhirServer) -> LocalFhirServer:
    """The open FHIR server (the Sandbox reads it from the browser) holding every example patient."""
    load_examples(open_fhir_server)
    return open_fhir_server


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    return load_manifest()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service as ``cds-hooks demo`` runs it (JWT off); shared by the patient-view tests, which
    give no feedback (feedback can change later cards: snooze, no repeat at signing)."""
    running = start_service(tmp_path_factory.mktemp("sandbox-service"), jwt="off")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh_service(tmp_path: Path) -> Iterator[Service]:
    """A service with its own empty database, for a test that gives feedback."""
    running = start_service(tmp_path / "service", jwt="off")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def jwt_service(tmp_path: Path) -> Iterator[Service]:
    """JWT required, trusting only the Sandbox's published key (development only)."""
    issuers = examples_dir() / "trusted-issuers" / "sandbox.dev.json"
    running = start_service(tmp_path / "service", jwt="required", trusted_issuers=str(issuers))
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Sandbox:
    """Opens Sandbox tabs, each in a fresh browser context, with the links ``cds-hooks demo`` prints."""

    browser: Any
    base: str
    root: Path
    fhir_base: str

    def open(
        self, service: Service, patient_id: str, screen: str = "patient-view"
    ) -> tuple[Any, SandboxPage]:
        # Tall enough for a card without scrolling: full-page screenshots then show no sticky-header seam.
        context = self.browser.new_context(viewport={"width": 1280, "height": 1600})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        url = sandbox_url(self.fhir_base, service.discovery_url, patient_id, screen=screen, sandbox=self.base)
        tab = SandboxPage(page=page, url=url, sandbox_base=self.base, sandbox_root=self.root)
        page.on(
            "console",
            lambda m: (
                tab.errors.append(f"{m.text} @ {m.location.get('url', '')}") if m.type == "error" else None
            ),
        )
        page.on("requestfailed", lambda r: tab.failed_requests.append(r.url))
        return context, tab


@pytest.fixture(scope="session")
def sandbox(
    browser: Any, sandbox_base: str, sandbox_root: Path, examples_on_open_server: LocalFhirServer
) -> Sandbox:
    for old in RESULTS.glob("*.png"):  # the folder shows this run only
        old.unlink()
    return Sandbox(browser, sandbox_base, sandbox_root, examples_on_open_server.base_url)


@pytest.fixture
def open_sandbox(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[Callable[..., SandboxPage]]:
    """``open_sandbox(service, patient_id, screen=...)``: a Sandbox tab in a fresh context (not yet
    navigated). A full-page screenshot of each is saved at the end, pass or fail, named after the test."""
    opened: list[tuple[Any, SandboxPage]] = []

    def open_(service: Service, patient_id: str, screen: str = "patient-view") -> SandboxPage:
        opened.append(sandbox.open(service, patient_id, screen))
        return opened[-1][1]

    yield open_
    for index, (context, tab) in enumerate(opened):
        suffix = f"-{index + 1}" if len(opened) > 1 else ""
        try:
            tab.screenshot(f"{request.node.name}{suffix}")
        finally:
            context.close()
