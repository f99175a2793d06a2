"""The public gallery in a real browser: Debian's Chromium driven by Playwright (given its
``executable_path``: browser downloads do not work here), against a real server whose public
repositories were made with the AWS CLI and boto3 and pushed with skopeo.

Covered: search and filters (by keyboard), a repository page with a multi-arch image as one
row with its platforms, the pull command and its copy button, pull counts, sanitized
Markdown (a ``<script>`` in aboutText never runs), 375 px and 1440 px layouts, and axe-core
(from the npm registry, injected into the page) with no serious or critical violation.
Screenshots go to ``build/screenshots/`` as test artefacts.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.aws import Credentials, aws_json
from tests.e2e.ecr.helpers import skopeo
from tests.e2e.oci_layout import build_layout
from tests.e2e.server import ServerProcess, free_port
from tests.e2e.test_ecr_public import png, public_client

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "build" / "screenshots"
EMULATOR = Credentials("AKIAGALLERYTEST00000", "secret", "123456789012")
SCRIPT_ABOUT = (
    "# About\n\n<script>window.__pwned = 1</script>\n\n"
    '<img src="/x" onerror="window.__pwned = 2">\n\n'
    "[click](javascript:window.__pwned=3)\n\nIt **serves** pages."
)


class Gallery:
    def __init__(self, process: ServerProcess, public_port: int, alias: str) -> None:
        self.process = process
        self.public_host = f"127.0.0.1:{public_port}"
        self.alias = alias

    def url(self, path: str = "") -> str:
        return f"{self.process.url}/gallery/{path}"


@pytest.fixture(scope="module")
def gallery(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gallery]:
    root = tmp_path_factory.mktemp("gallery")
    port = free_port()
    process = ServerProcess(
        data_dir=root / "data",
        extra_args=["--public-port", str(port), "--public-pull-rate", "0"],
    ).start()
    try:
        public = public_client(process.url, EMULATOR)
        # The README's way: the AWS CLI makes the repository.
        aws_json(
            process.url,
            EMULATOR,
            root,
            "ecr-public",
            "create-repository",
            "--repository-name",
            "web/app",
        )
        public.put_repository_catalog_data(
            repositoryName="web/app",
            catalogData={
                "description": "A small web application",
                "operatingSystems": ["Linux"],
                "architectures": ["x86-64", "ARM 64"],
                "aboutText": SCRIPT_ABOUT,
                "usageText": "Run it:\n\n```\ndocker run web/app\n```",
                "logoImageBlob": png(64, 64),
            },
        )
        public.create_repository(
            repositoryName="tools/windows-agent",
            catalogData={
                "description": "An agent for Windows hosts",
                "operatingSystems": ["Windows"],
                "architectures": ["x86-64"],
            },
        )
        for index in range(3):
            public.create_repository(repositoryName=f"misc/thing-{index}")
        alias = public.describe_registries()["registries"][0]["aliases"][0]["name"]
        layout = build_layout(root / "image", file_size=2048)  # amd64 and arm64
        skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            "AWS:emulator",
            f"oci:{layout.path}:{layout.tag}",
            f"docker://127.0.0.1:{port}/{alias}/web/app:latest",
        )
        yield Gallery(process, port, alias)
    finally:
        assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Chromium is not installed (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_search_and_filter_by_keyboard(gallery: Gallery, page: Page) -> None:
    page.goto(gallery.url())
    names = page.locator(".card h3").all_inner_texts()
    assert f"{gallery.alias}/web/app" in names
    assert f"{gallery.alias}/tools/windows-agent" in names
    # Search with the keyboard alone.
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "site-q"
    page.keyboard.type("agent")
    page.keyboard.press("Enter")
    page.wait_for_url("**/gallery/?q=agent")
    assert page.locator(".card h3").all_inner_texts() == [f"{gallery.alias}/tools/windows-agent"]
    # Filters: Linux finds the web application, not the Windows agent.
    page.goto(gallery.url())
    page.get_by_label("Linux").check()
    page.get_by_role("button", name="Apply filters").press("Enter")
    page.wait_for_url("**os=Linux**")
    assert page.locator(".card h3").all_inner_texts() == [f"{gallery.alias}/web/app"]
    screenshot(page, "gallery-search-linux")
    page.get_by_label("ARM 64").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**arch=ARM+64**")
    assert page.locator(".card h3").all_inner_texts() == [f"{gallery.alias}/web/app"]
    page.get_by_label("Windows").check()  # both: nothing has both
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**os=Windows**")
    assert page.locator(".card").count() == 0


def test_the_repository_page(gallery: Gallery, page: Page) -> None:
    page.goto(gallery.url())
    page.get_by_role("link", name=f"{gallery.alias}/web/app").click()
    page.wait_for_url(f"**/gallery/{gallery.alias}/web/app")
    assert page.locator("h1").inner_text() == f"{gallery.alias}/web/app"
    assert page.locator(".description").inner_text() == "A small web application"
    # The multi-arch image is one row, with both platforms.
    rows = page.locator("table.tags tbody tr")
    assert rows.count() == 1
    platforms = rows.first.locator(".platform").all_inner_texts()
    assert sorted(platforms) == ["linux/amd64", "linux/arm64"]
    assert "default" in rows.first.locator("th").inner_text()
    command = page.locator("#pull-command").input_value()
    assert command == f"docker pull {gallery.public_host}/{gallery.alias}/web/app:latest"
    # The logo is served.
    assert page.locator("img.logo").evaluate("image => image.naturalWidth") == 64
    screenshot(page, "gallery-repository-1440")


def test_copy_buttons_copy(gallery: Gallery, browser: Browser) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(gallery.url(f"{gallery.alias}/web/app"))
        page.locator("button.copy[data-copy=pull-command]").click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#pull-command").input_value()
        page.locator("table.tags button.copy").first.click()
        digest = page.evaluate("navigator.clipboard.readText()")
        assert digest.startswith("sha256:")
        assert digest == page.locator("table.tags code").first.inner_text()
    finally:
        context.close()


def test_markdown_is_sanitized_and_no_script_runs(gallery: Gallery, page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(gallery.url(f"{gallery.alias}/web/app"))
    about = page.locator("section.markdown").first
    assert about.locator("h3").inner_text() == "About"
    assert "<script>window.__pwned = 1</script>" in about.inner_text()
    assert about.locator("strong").inner_text() == "serves"
    assert about.locator("script, img[onerror]").count() == 0
    links = about.locator("a")
    for index in range(links.count()):
        assert not (links.nth(index).get_attribute("href") or "").startswith("javascript:")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None
    assert errors == []


def test_pull_counts_show(gallery: Gallery, page: Page, tmp_path: Path) -> None:
    reference = f"docker://{gallery.public_host}/{gallery.alias}/web/app:latest"
    for _ in range(3):
        skopeo("inspect", "--raw", "--tls-verify=false", reference)
    deadline = time.monotonic() + 15
    while True:
        page.goto(gallery.url(f"{gallery.alias}/web/app"))
        pulls = int(page.locator("table.tags tbody tr td").nth(3).inner_text())
        if pulls >= 3:
            break
        assert time.monotonic() < deadline, f"pull count {pulls}"
        time.sleep(0.5)


def test_unknown_repository_is_a_404_page(gallery: Gallery, page: Page) -> None:
    answer = page.goto(gallery.url(f"{gallery.alias}/no/such"))
    assert answer is not None
    assert answer.status == 404
    assert page.locator("h1").inner_text() == "Not found"


@pytest.mark.parametrize("width", [375, 1440])
@pytest.mark.parametrize("path", ["", "?q=app&os=Linux", "{alias}/web/app"])
def test_layout_and_accessibility(
    gallery: Gallery, browser: Browser, width: int, path: str
) -> None:
    assert AXE.exists(), "axe-core is not installed (scripts/test installs it with npm)"
    # The page's CSP allows only its own scripts: axe comes in with CSP bypassed.
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(gallery.url(path.format(alias=gallery.alias)))
        # Readable at 375 px: nothing wider than the viewport but the tags table's own
        # scroll box.
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, overflow
        page.add_script_tag(path=str(AXE))
        result: dict[str, Any] = page.evaluate("axe.run()")
        serious = [
            (violation["id"], violation["impact"], len(violation["nodes"]))
            for violation in result["violations"]
            if violation["impact"] in ("serious", "critical")
        ]
        assert serious == [], json.dumps(serious)
        name = "repository" if "web/app" in path else "search"
        screenshot(page, f"gallery-{name}-{width}{'-filtered' if 'os=' in path else ''}")
    finally:
        context.close()


def test_pages_carry_a_content_security_policy(gallery: Gallery) -> None:
    with urllib.request.urlopen(gallery.url(f"{gallery.alias}/web/app"), timeout=10) as answer:
        policy = answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
