"""The browser tier: the console served over one embedded runtime, driven in Debian's headless
chromium by Playwright (``executable_path``: no browser download). Screenshots go to
``.artifacts/browser/`` (and to ``docs/images/`` with ``CHUTE_DOCS_SCREENSHOTS=1``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws, LocalSettings, free_port
from chute.ops.deployment import connect
from chute.web.server import ConsoleServer
from tests.support.pipeline import LARGE_THRESHOLD

CHROMIUM = os.environ.get("CHUTE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "browser"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    settings = LocalSettings(
        port=free_port(),
        large_file_threshold_bytes=LARGE_THRESHOLD,
        time_scale=0.001,
        state_dir=Path(tmp_path_factory.mktemp("chute")),
        visibility_timeout_seconds=1,
        max_receive_count=2,
    )
    with EmbeddedAws(settings) as aws:
        yield aws


@pytest.fixture(scope="session")
def console(embedded: EmbeddedAws) -> Iterator[ConsoleServer]:
    with ConsoleServer(connect(endpoint_url=embedded.endpoint_url), port=0) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, console: ConsoleServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.dialogs: list[str] = []  # type: ignore[misc]

    def accept(dialog: Any) -> None:
        opened.dialogs.append(dialog.message)
        dialog.accept()

    opened.on("dialog", accept)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def save_screenshot(page: Any, name: str) -> None:
    """An artefact, and with CHUTE_DOCS_SCREENSHOTS=1 the image docs/console.md shows."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("CHUTE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS_IMAGES / f"{name}.png")
