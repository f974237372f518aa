"""Issue 25 point 6: the SMART launch through the bundled launcher, exactly as the README tells a user to
run it. The commands are read from the README's ``smart-launch`` block and run as written — only the FHIR
server's URL (the demo's 8081) and the launcher's folder are this run's — and the URL the README says to
open is opened in headless Chromium against the live service."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
from typing import Any

import pytest

from cds_hooks.testing.fhir_test_server import LocalFhirServer

from .conftest import LiveService, screenshot
from .smart_launcher import READY, REPO, launcher_dir, unavailable_reason

BLOCK = re.compile(r"<!-- smart-launch:begin.*?-->(.*?)<!-- smart-launch:end -->", re.S)
SH = re.compile(r"```sh\n(.*?)```", re.S)


def readme_commands() -> tuple[str, str, str]:
    """The launcher command, the launch-value command and the URL template of the README block."""
    block = BLOCK.search((REPO / "README.md").read_text()).group(1)  # type: ignore[union-attr]
    launcher, launch_value = (c.strip() for c in SH.findall(block))
    url = re.search(r"Open `(http://[^`]+)`", block).group(1)  # type: ignore[union-attr]
    return launcher, launch_value, url


def test_the_readme_block_names_the_demo_ports_and_the_bundled_launcher():
    launcher, launch_value, url = readme_commands()
    assert launcher.startswith("cd ../shared/smart-launcher && ") and "node dist/launcher.js" in launcher
    assert "FHIR_SERVER_R4=http://127.0.0.1:8081/fhir" in launcher
    assert launch_value.endswith(" ex24")
    assert url == "http://127.0.0.1:8080/app/launch?iss=http://127.0.0.1:<N>/v/r4/fhir&launch=<that value>"


def test_the_readme_smart_launch_opens_the_timeline(
    chromium: Any, example_server: LocalFhirServer, live_service: LiveService
):
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"SMART launcher unavailable: {reason}")
    launcher, launch_value, url = readme_commands()
    directory = launcher_dir()
    assert directory is not None
    command = launcher.replace("\\\n", " ")
    command = command.replace("cd ../shared/smart-launcher", f"cd {shlex.quote(str(directory))}")
    command = command.replace("http://127.0.0.1:8081/fhir", example_server.base_url)
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=REPO,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # bash and node in one group: stopped together
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        launcher_url = ""
        while not launcher_url:
            match = READY.search(lines.get(timeout=30))
            launcher_url = match.group(1) if match else ""
        launch = subprocess.run(
            ["bash", "-c", launch_value], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert re.fullmatch(r"[A-Za-z0-9_-]+", launch)
        target = url.replace("http://127.0.0.1:8080", live_service.url)
        target = target.replace("http://127.0.0.1:<N>", launcher_url).replace("<that value>", launch)
        assert target.startswith(f"{live_service.url}/app/launch?iss={launcher_url}/v/r4/fhir&launch=")

        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        visited: list[str] = []
        page.on("request", lambda request: visited.append(request.url))
        response = page.goto(target)
        assert response is not None and response.status == 200
        assert any(u.startswith(f"{launcher_url}/v/r4/auth/authorize") for u in visited)
        assert any(u.startswith(f"{live_service.url}/app/callback?code=") for u in visited)
        assert page.url.startswith(f"{live_service.url}/app/")
        assert page.locator("svg.chart").count() == 1
        # ex24: porcine insulin with prednisolone and hyperglycaemia — both rules fire.
        for rule in ("animal-insulin-switch", "glucocorticoid-hyperglycemia"):
            assert "the rule fires" in page.locator(f"#why-{rule} caption").inner_text()
        screenshot(page, "readme-smart-launch-ex24.png")
        context.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
