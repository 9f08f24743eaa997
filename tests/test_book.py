"""The book: build it from the smoke-executed notebooks and check it in a real browser.

Marker ``book``. The build copies book/ to a temporary folder, drops the notebooks
executed by the session's smoke run into its executed/ folder and runs
``jupyter-book build -W -n --keep-going`` (any warning fails). Every chapter of _toc.yml
is then opened in headless Chromium (/usr/bin/chromium, driven by Playwright, served from
127.0.0.1) to check that the theme's CSS applies, images load, equations are typeset by
the local MathJax and nothing is requested from another host. Screenshots go to
build/screenshots/. Without /usr/bin/chromium the browser tests skip, or fail when the
CI environment variable is set.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.book

BOOK = REPO / "book"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}


def toc_pages() -> list[str]:
    """Document names of the root and every chapter listed in book/_toc.yml."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(str(Path(entry["file"]).with_suffix("")))
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages


PAGES = toc_pages()


@dataclass
class BuiltBook:
    source: Path
    html: Path
    returncode: int
    log: str


@pytest.fixture(scope="session")
def built_book(smoke_run, tmp_path_factory) -> BuiltBook:
    mathjax = BOOK / "_static" / "mathjax" / "tex-mml-chtml.js"
    if not mathjax.is_file():
        pytest.fail(f"{mathjax} is missing: run `make mathjax` first")
    root = tmp_path_factory.mktemp("book")
    source = root / "book"
    shutil.copytree(
        BOOK, source, ignore=shutil.ignore_patterns("_build", "executed", "__pycache__")
    )
    executed = source / "executed"
    executed.mkdir()
    for nb in sorted(smoke_run.executed_dir.glob("*.ipynb")):
        if not nb.name.endswith(".FAILED.ipynb"):
            shutil.copy2(nb, executed / nb.name)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jupyter_book), "build", str(source), "-W", "-n", "--keep-going"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return BuiltBook(source, source / "_build" / "html", proc.returncode, proc.stdout + proc.stderr)


def test_book_builds_without_warnings(built_book):
    assert built_book.returncode == 0, built_book.log[-6000:]
    assert "WARNING" not in built_book.log, built_book.log[-6000:]
    for page in PAGES:
        assert (built_book.html / f"{page}.html").is_file(), f"{page}.html was not written"


def test_built_html_references_no_remote_scripts_or_styles(built_book):
    if built_book.returncode:
        pytest.fail("the book did not build (see test_book_builds_without_warnings)")
    import re

    remote = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//", re.I)
    offenders = {
        str(p.relative_to(built_book.html)): remote.findall(p.read_text(encoding="utf-8"))
        for p in built_book.html.rglob("*.html")
    }
    assert not {k: v for k, v in offenders.items() if v}


# ------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def site(built_book):
    """Serve the built HTML on 127.0.0.1 (an ephemeral port) for the session."""
    if built_book.returncode:
        pytest.fail("the book did not build (see test_book_builds_without_warnings)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; the browser check is required in CI")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        yield context
        context.close()


PAGE_STATE_JS = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));

  const sidebar = document.querySelector('.bd-sidebar-primary');
  const sideStyle = sidebar ? getComputedStyle(sidebar) : null;
  const sheets = [...document.querySelectorAll('link[rel="stylesheet"]')].map(link => {
    let rules = -1;
    try { rules = link.sheet ? link.sheet.cssRules.length : -1; } catch (e) { rules = -2; }
    return {href: link.href, rules};
  });

  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, textarea, .highlight')
       .forEach(el => el.remove());
  const text = clone.textContent;
  const mathNodes = [...document.querySelectorAll('.math')];
  return {
    bodyFont: getComputedStyle(document.body).fontFamily,
    sidebar: sideStyle && {display: sideStyle.display, position: sideStyle.position,
                           width: sidebar.getBoundingClientRect().width},
    sheets,
    images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    mjx: document.querySelectorAll('mjx-container').length,
    mathNodes: mathNodes.length,
    untypeset: mathNodes.filter(el => !el.querySelector('mjx-container')).length,
    rawDelimiters: ['$$', '\\\\(', '\\\\)', '\\\\[', '\\\\]', '\\\\begin{']
                     .filter(d => text.includes(d)),
  };
}
"""


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS


@pytest.mark.parametrize("page_name", PAGES)
def test_page_renders_in_chromium(browser_context, site, page_name):
    page = browser_context.new_page()
    remote, failed, bad_status, js_errors = [], [], [], []

    def route(r):
        if _is_local(r.request.url):
            r.continue_()
        else:
            remote.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
    page.on("response", lambda res: res.status >= 400 and bad_status.append(res.url))
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    try:
        page.goto(site + f"{page_name}.html", wait_until="load")
        page.wait_for_load_state("networkidle")
        state = page.evaluate(PAGE_STATE_JS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{page_name.replace('/', '_')}.png"))
    finally:
        page.close()

    assert not remote, f"{page_name}: requests to non-local URLs {remote}"
    assert not failed, f"{page_name}: failed requests {failed}"
    assert not bad_status, f"{page_name}: HTTP errors for {bad_status}"
    assert not js_errors, f"{page_name}: JavaScript errors {js_errors}"

    # theme CSS applied: the book theme's sticky flex sidebar and its system font stack
    # (a browser without the stylesheet shows a static block and Times New Roman)
    assert state["sidebar"], f"{page_name}: no .bd-sidebar-primary element"
    assert state["sidebar"]["position"] == "sticky", state["sidebar"]
    assert state["sidebar"]["display"] == "flex" and state["sidebar"]["width"] > 100
    assert "times" not in state["bodyFont"].lower(), state["bodyFont"]
    unloaded = [s["href"] for s in state["sheets"] if s["rules"] <= 0]
    assert state["sheets"] and not unloaded, f"{page_name}: stylesheets not applied {unloaded}"
    assert any("sphinx-book-theme" in s["href"] for s in state["sheets"])

    broken = [img["src"][:120] for img in state["images"] if img["width"] <= 0]
    assert not broken, f"{page_name}: broken images {broken}"

    assert state["untypeset"] == 0, f"{page_name}: {state['untypeset']} equations not typeset"
    assert not state["rawDelimiters"], f"{page_name}: raw TeX {state['rawDelimiters']}"
    if page_name == PAGES[0]:  # intro.md always holds equations, so MathJax is always tested
        assert state["mjx"] >= 1 and state["mathNodes"] >= 1, state
