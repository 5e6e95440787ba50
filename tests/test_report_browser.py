"""The HTML report in a real headless Chromium (Debian's ``chromium`` package).

The browser is driven over the Chrome DevTools Protocol on ``--remote-debugging-pipe``
(file descriptors 3/4, NUL-separated JSON): no Python or npm dependency, no port. It records
every console message (``Runtime.consoleAPICalled``), uncaught exception
(``Runtime.exceptionThrown``) and browser log entry (``Log.entryAdded``: failed loads, CSP
violations, broken images), asks the page about its sections and images, and takes a
full-page screenshot, kept as a test artifact (its path is printed; run ``pytest -s``).

Skipped with a reason when chromium is missing; with ``S2KIT_CI=1`` that is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from s2kit.compare import compare_products
from s2kit.report import write_report
from tests.support.l2a_rasters import make_demo_run

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
]


def find_chromium() -> str:
    exe = os.environ.get("S2KIT_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if exe is None:
        msg = "chromium not installed (Debian: apt-get install chromium)"
        if os.environ.get("S2KIT_CI") == "1":
            pytest.fail(f"required in CI: {msg}")
        pytest.skip(msg)
    return exe


class Chromium:
    """A headless Chromium driven over --remote-debugging-pipe."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:  # in the child: commands on fd 3, replies on fd 4
            r, w = os.dup(to_child_r), os.dup(from_child_w)  # out of the way of 3 and 4 first
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=fds,
            pass_fds=(3, 4),  # kept open by subprocess after fds() has run
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()
        self.stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def _reader(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._inbox.put(json.loads(msg))

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while self._next not in self._replies:
            self._pump(deadline, f"reply to {method}")
        reply = self._replies.pop(self._next)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for ev in self.events[seen:]:
                if ev["method"] == method:
                    return ev
            seen = len(self.events)
            self._pump(deadline, method)

    def _pump(self, deadline: float, what: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"chromium: no {what} in time; stderr: {self.stderr[-5:]}")
        try:
            msg = self._inbox.get(timeout=left)
        except queue.Empty:
            return
        if msg is None:
            raise AssertionError(f"chromium exited; stderr: {self.stderr[-5:]}")
        if "id" in msg:
            self._replies[msg["id"]] = msg
        else:
            self.events.append(msg)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = self._inbox.get(timeout=max(end - time.monotonic(), 0.01))
            except queue.Empty:
                return
            if msg is None:
                return
            if "id" in msg:
                self._replies[msg["id"]] = msg
            else:
                self.events.append(msg)

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)


def open_page(exe: str, url: str, screenshot: Path, width: int = 1280) -> dict[str, Any]:
    """Load *url*; return console/log problems, page facts and write a full-page screenshot."""
    with tempfile.TemporaryDirectory(prefix="s2kit-chromium-") as profile:
        browser = Chromium(exe, Path(profile))
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log"):
                browser.send(f"{domain}.enable", session=session)
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            browser.send("Page.navigate", {"url": url}, session=session)
            browser.wait_event("Page.loadEventFired")
            facts = browser.send(
                "Runtime.evaluate",
                {
                    "expression": """JSON.stringify({
                        title: document.title,
                        sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
                        images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
                        noQuicklook: document.querySelectorAll('.noql').length,
                        scripts: document.scripts.length,
                        height: document.documentElement.scrollHeight})""",
                    "returnByValue": True,
                },
                session=session,
            )["result"]["value"]
            page = json.loads(facts)
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": min(int(page["height"]), 16000),
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
                session=session,
            )
            shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            browser.drain(0.5)  # late log entries (e.g. a broken image decoded after load)
        finally:
            browser.close()
    problems = []
    for ev in browser.events:
        m, p = ev["method"], ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            problems.append(
                f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}"
            )
        elif m == "Runtime.exceptionThrown":
            problems.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            e = p["entry"]
            problems.append(f"log {e.get('level')} ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
    page["problems"] = problems
    return page


def test_probe_catches_console_errors_and_broken_images(tmp_path: Path) -> None:
    """The harness itself: a page with a console.error and a broken image must be caught."""
    exe = find_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        "<img src='data:image/png;base64,AAAA'><script>console.error('boom')</script></body></html>"
    )
    page = open_page(exe, bad.as_uri(), tmp_path / "bad.png")
    assert any("boom" in p for p in page["problems"]), page
    assert page["images"] == [[True, 0, 0]]  # broken: decoded to nothing


def test_report_renders_without_console_errors(tmp_path: Path) -> None:
    exe = find_chromium()
    demo = make_demo_run(tmp_path / "batch", n=3, crash=2, real_rasters=1)
    # an ESA-like pair so the comparison section has content (synthetic rasters, see test_compare)
    from tests.support.l2a_rasters import derive_metadata, pattern, write_l2a_rasters
    from tests.support.safe_trees import build_l2a_tree

    off = build_l2a_tree(tmp_path / "official", "33XWJ")
    loc = derive_metadata(
        build_l2a_tree(tmp_path / "local", "33XWJ"), drop_offsets=True, sen2cor_gipp_version="0290"
    )
    write_l2a_rasters(off)
    write_l2a_rasters(loc, {b: pattern(64, b) + 0.01 for b in ("B02", "B03", "B04")})
    run = Path(str(demo["run"]))
    (run / "compare").mkdir()
    (run / "compare" / "33XWJ.json").write_text(json.dumps(compare_products(loc, off)))

    result = write_report(run, tmp_path / "report.html")
    shot = Path(os.environ.get("S2KIT_SCREENSHOT_DIR", str(tmp_path))) / "report-screenshot.png"
    page = open_page(exe, result.html.as_uri(), shot)
    print(f"\nreport screenshot: {shot}")

    assert page["problems"] == []
    assert page["scripts"] == 0
    assert page["sections"] == [
        "summary",
        "provenance",
        "failures",
        "times",
        "resources",
        "quicklooks",
        "comparison",
    ]
    assert page["title"] == f"s2kit report: {run.name}"
    # one real quicklook, decoded by the browser; the placeholder product shows its reason
    assert len(page["images"]) == 1 and page["images"][0][0] and page["images"][0][1] > 0
    assert page["noQuicklook"] == 1
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
