"""The search page in a real headless Chromium (Debian's package, installed by .ci/run), driven by
Playwright: type a query, see the expected top hit, open the document, apply a filter.

Screenshots go to ``test-artifacts/browser/`` (or ``$LATEINT_TEST_ARTIFACTS/browser``).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
from playwright import sync_api
from servers import running

import lateint_lite as li
from lateint_lite.server import create_app
from lateint_lite.sources import read_documents

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("LATEINT_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
#: Flags for a sandboxed root container with no network: no GPU, no background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000


def chromium_path() -> str:
    """The system Chromium, or skip with the reason (.ci/run installs Debian's chromium)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH (Debian: apt-get install chromium; .ci/run does this)")


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory, real_encoder):
    path = tmp_path_factory.mktemp("browser") / "sample.lateint"
    with resources.as_file(resources.files("lateint_lite") / "data" / "sample.jsonl") as sample:
        docs = list(read_documents(str(sample)))
    with li.open(path, create=True, encoder=real_encoder) as idx:
        idx.add(docs)
        yield idx


@pytest.fixture(scope="module")
def page_url(sample_index):
    with running(create_app(sample_index)) as url:
        yield url


@pytest.fixture
def page(page_url):
    executable = chromium_path()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.set_default_timeout(WAIT_MS)
            tab.goto(page_url)
            yield tab
        finally:
            browser.close()


def search_for(page, query: str) -> list[str]:
    """Submit a query from the search box; the ids of the listed hits, best first."""
    page.fill("#query", query)
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.includes('result')")
    return page.locator("#results .hit-id").all_inner_texts()


@pytest.mark.model
def test_search_open_and_filter_in_a_real_browser(page, sample_index):
    sync_api.expect(page.locator("#index-summary")).to_contain_text(f"{len(sample_index)} documents")

    query = "why do my eyes water when I chop vegetables?"
    ids = search_for(page, query)
    assert ids == [h.id for h in sample_index.search(query, k=10)]
    assert ids[0] == "cook-3"
    marks = page.locator("#results li").first.locator("mark").all_inner_texts()
    top = sample_index.search(query, k=1)[0]
    marked = top.marked_snippet("\x02", "\x03").replace("\x03", "\x02").split("\x02")[1::2]
    assert marks and marks == marked  # the matches, marked as the library marks them
    assert all(top.text[s:e] in " ".join(marks) for s, e in top.highlights)
    page.screenshot(path=str(ARTIFACTS / "1-results.png"), full_page=True)

    page.locator("#results li").first.click()
    sync_api.expect(page.locator("#document")).to_be_visible()
    sync_api.expect(page.locator("#document-id")).to_have_text("cook-3")
    sync_api.expect(page.locator("#document-text")).to_have_text(sample_index.get("cook-3").text)
    page.screenshot(path=str(ARTIFACTS / "2-document.png"), full_page=True)

    page.fill("#filter-key", "topic")
    page.fill("#filter-value", "music")
    filtered = search_for(page, "sound")
    expected = [h.id for h in sample_index.search("sound", k=10, where={"topic": "music"})]
    assert filtered == expected and expected and all(i.startswith("music-") for i in filtered)
    chips = page.locator("#results .chip").all_inner_texts()
    assert "topic: music" in chips
    page.screenshot(path=str(ARTIFACTS / "3-filtered.png"), full_page=True)


@pytest.mark.model
def test_errors_show_on_the_page(page):
    page.fill("#filter-key", "year")
    page.select_option("#filter-op", "gt")
    page.fill("#filter-value", "true")  # booleans cannot be range-compared: the server says so
    page.fill("#query", "stars")
    page.press("#query", "Enter")
    sync_api.expect(page.locator("#status")).to_contain_text("InvalidInputError")
    sync_api.expect(page.locator("#status")).to_have_class("error")
