"""GET /sources/<name> (issue 14 C18): a page per rule with its live thresholds, what it proposes, every
source knowledge/ holds for it and the knowledge version; the seed text rendered cleanly. HTML from
autoescaped templates, readable on a phone, no external assets — checked in a real browser too."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge, load_knowledge
from cds_hooks.clinical.rules import RULES_BY_ID
from tests.builders import SERVICE_URL, porcine_request
from tests.conftest import make_settings

RULES = sorted(default_knowledge().wording.cards)


def _client(tmp_path: Path, knowledge):  # type: ignore[no-untyped-def]
    return create_app(make_settings(tmp_path), knowledge=knowledge).test_client()


@pytest.mark.parametrize("rule_id", RULES)
def test_every_rule_has_a_page_with_thresholds_references_and_version(client, rule_id: str) -> None:
    knowledge = default_knowledge()
    r = client.get(f"/sources/{rule_id}")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    card = knowledge.wording.cards[rule_id]
    assert card.page.title in page
    assert f"Knowledge version {knowledge.wording.version.version}" in page
    assert knowledge.wording.version.date in page
    for name in RULES_BY_ID[rule_id].thresholds:
        assert f"<code>{name}</code>" in page
    assert "<h2>References</h2>" in page
    for reference in card.page.references:
        assert reference.split(":")[0] in page
    assert '<meta name="viewport"' in page
    assert "src=" not in page and 'href="http' not in page  # no external assets or links


def test_rule_page_shows_the_thresholds_in_force_and_the_cards_use_them(tmp_path: Path) -> None:
    env = {"CDS_HOOKS_THRESHOLD_SWITCH_DOSE_REDUCTION_PORCINE": "15"}
    client = _client(tmp_path, load_knowledge(env=env))
    page = client.get("/sources/animal-insulin-switch").get_data(as_text=True)
    assert '<span class="value">15 %</span>' in page
    assert "CDS_HOOKS_THRESHOLD_SWITCH_DOSE_REDUCTION_PORCINE" in page and "default 10 %" in page
    card = client.post(SERVICE_URL, json=porcine_request()).get_json()["cards"][0]
    assert "15 % lower" in card["summary"]


def test_knowledge_markdown_and_text_are_escaped(tmp_path: Path) -> None:
    root = tmp_path / "knowledge"
    shutil.copytree(default_knowledge().root, root)
    path = root / "cards" / "type-b-insulin-resistance.toml"
    text = path.read_text().replace(
        'title = "Type B insulin resistance (insulin-receptor antibodies)"',
        'title = "Type B <script>alert(1)</script>"',
    )
    text = text.replace("Confirmed: a positive", "Confirmed <img src=x onerror=alert(2)>: a positive")
    path.write_text(text)
    page = _client(tmp_path, load_knowledge(root, env={})).get("/sources/type-b-insulin-resistance")
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html


def test_seed_text_is_rendered_cleanly(client) -> None:
    r = client.get("/sources/immune-insulin-resistance")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "<h1>Immune-mediated insulin resistance</h1>" in page
    assert "<h3>What tests do patients with immune insulin resistance need to undergo?</h3>" in page
    assert "{sort-2}" not in page and "##" not in page
    assert "<li>Insulin antibodies: Discontinue animal insulin" in page
    assert page.count("<h2>") >= 6


@pytest.mark.parametrize("name", ["no-such-rule", "UPPER", "a" * 81, "..%2Fetc"])
def test_unknown_pages_are_404_operation_outcomes(client, name: str) -> None:
    r = client.get(f"/sources/{name}")
    assert r.status_code == 404
    assert r.get_json()["resourceType"] == "OperationOutcome"


def test_cards_link_once_to_their_rule_page(client) -> None:
    card = client.post(SERVICE_URL, json=porcine_request()).get_json()["cards"][0]
    pages = [link["url"] for link in card["links"] if link["type"] == "absolute"]
    assert pages == ["http://localhost/sources/animal-insulin-switch"]
    assert [link["url"] for link in card["links"] if link["type"] == "smart"] == [
        "http://localhost/app/launch"
    ]
    assert client.get("/sources/animal-insulin-switch").status_code == 200


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The service on a real loopback port (the browser needs one)."""
    app = create_app(make_settings(tmp_path), knowledge=default_knowledge())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    app.extensions["cds_hooks"].store.dispose()


def test_pages_read_on_a_phone_in_a_real_browser(served: str, chromium_browser) -> None:
    """Chromium at a phone's width: no horizontal scrolling, nothing fetched from elsewhere, the links
    between the pages work."""
    page = chromium_browser.new_page(viewport={"width": 360, "height": 740}, device_scale_factor=2)
    try:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        for name in [*RULES, "immune-insulin-resistance"]:
            response = page.goto(f"{served}/sources/{name}")
            assert response is not None and response.status == 200
            assert page.locator("h1").first.is_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"/sources/{name} scrolls sideways on a phone ({width} px)"
            font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
            assert font >= 16
        page.goto(f"{served}/sources/animal-insulin-switch")
        page.get_by_text("The clinical source text").click()
        page.wait_for_url(f"{served}/sources/immune-insulin-resistance")
        assert all(url.startswith(served) for url in requested), requested
    finally:
        page.close()
