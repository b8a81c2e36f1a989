"""How fast the console's pages render: `python -m console.bench [--browser] [--repeat N]`, on DATABASE_URL.

- AppTest: each page's script time in this process (after one pass over every
  page, as a running server has imported its modules), first with every
  cache cleared (the first visitor after a run waits for this) and then warm.
- ``--browser``: ``metalayer console`` on a free port and headless Chromium;
  the time from a click on a page's link until the page's last section shows
  and Streamlit reports the script done.

The end-to-end test uses the same server and browser helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from pipeline.core import db

APP = db.REPO_ROOT / "console" / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# page file -> (navigation label, text of the page's last section, or texts one of which it shows)
PAGES = {
    "overview": ("Overview", "Data freshness per source"),
    "runs": ("Runs", "Log of the run"),
    "quality": ("Data quality", "Download the"),
    "business": ("Business KPIs", "Cohort retention"),
    "lineage": ("Lineage", "never ran"),
    # without a login, without an ops password configured, logged in (the last tab's label)
    "operations": ("Operations", ("need an ops login", "no ops password is configured", "Backfill")),
    "anomalies": ("Anomalies", "The shaded band is the normal range"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def console_server(env: dict[str, str], log_path: Path, timeout: float = 90) -> Iterator[str]:
    """`metalayer console --port P` in its own process group; yields its URL once /_stcore/health answers."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "pipeline.cli", "console", "--port", str(port)],
            cwd=db.REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"metalayer console exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"metalayer console did not answer in {timeout:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def chromium(viewport: tuple[int, int] = (1400, 1000)):
    """A headless Debian Chromium page driven by Playwright, on a fresh profile."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="metalayer-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


# Drawn, checked in the page at every animation frame: on the expected path, the text of the page's last section
# shown, Streamlit's running indicator gone, no element still loading its code, every chart with its SVG or canvas.
# Returns the page's clock (performance.now()) at that frame, or false. One in-page check instead of Playwright's
# locator waits: those poll at 0, 20, 50, 100, 100 and then every 500 ms, which added up to 0.5 s to a figure.
RENDERED_JS = """([paths, texts]) => {
  const shown = element => element && element.getClientRects().length > 0
      && getComputedStyle(element).visibility !== 'hidden';
  const main = document.querySelector('[data-testid="stMain"]');
  const rendered = (paths === null || paths.includes(location.pathname.replace(/^\\/+|\\/+$/g, '')))
    && main && texts.some(text => main.innerText.includes(text))
    && !shown(document.querySelector('[data-testid="stStatusWidget"]'))
    && !document.querySelector('[data-testid="stSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stVegaLiteChart"], [data-testid="stGraphVizChart"]')]
        .every(chart => chart.querySelector('svg, canvas'));
  return rendered ? performance.now() : false;
}"""
CLICK_CLOCK_JS = """() => document.addEventListener('click', () => { window.metalayerClickedAt = performance.now(); },
                                          {capture: true, once: true})"""


def wait_rendered(
    page, text: str | tuple[str, ...], timeout_ms: float = 60_000, paths: set[str] | None = None
) -> float:
    """Until `text` (or one of several) shows, Streamlit's running indicator is gone and every element is drawn (on one of `paths`,
    if given); returns the page's clock in ms at that animation frame."""
    handle = page.wait_for_function(
        RENDERED_JS,
        arg=[sorted(paths) if paths is not None else None, [text] if isinstance(text, str) else list(text)],
        polling="raf",
        timeout=timeout_ms,
    )
    return float(handle.json_value())


def wait_prefetched(page, timeout_ms: float = 30_000) -> None:
    """Until the landing page's prefetch of the element code is done (no wait if this Streamlit has none)."""
    from console.prefetch import DONE_JS, module_names

    if module_names():
        page.wait_for_function(DONE_JS, timeout=timeout_ms)


def open_page(page, name: str, timeout_ms: float = 60_000) -> float:
    """Click a page's navigation link and wait until it is rendered; returns the seconds from the click to the
    frame that showed it, on the page's own clock."""
    label, last_text = PAGES[name]
    page.evaluate(CLICK_CLOCK_JS)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=label).click()
    # the default page (the first) lives at the root URL
    paths = {name, ""} if name == next(iter(PAGES)) else {name}
    rendered_at = wait_rendered(page, last_text, timeout_ms, paths)
    return (rendered_at - page.evaluate("() => window.metalayerClickedAt")) / 1000


def browser_times(repeat: int, log_dir: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    with (
        console_server(
            {"DATABASE_URL": db.Warehouse.from_environment().url}, log_dir / "console-bench-server.log"
        ) as url,
        chromium() as page,
    ):
        page.goto(url)
        wait_rendered(page, PAGES["overview"][1])
        # As a user reading the landing page: the first click comes once the browser has loaded the other pages'
        # element code (console/prefetch.py). Playwright's "networkidle" is no such signal: on a server's first
        # session it can fire while the landing page's script still runs, before the prefetch has started.
        wait_prefetched(page)
        for _ in range(repeat):
            for name in [*list(PAGES)[1:], "overview"]:
                times[name].append(round(open_page(page, name), 3))
    return times


def apptest_times(repeat: int) -> dict[str, dict[str, list[float]]]:
    from streamlit.testing.v1 import AppTest

    from console import auth, data

    if auth.configured_hash() is None:  # time the Operations page as ops see it, not its disabled notice
        os.environ[auth.PASSWORD_ENV] = secrets.token_urlsafe()
    # One pass first: module imports and the task graph are paid once per server process, not per page view.
    warm_up = AppTest.from_file(str(APP), default_timeout=120)
    warm_up.session_state[auth.SESSION_KEY] = True
    warm_up.run()
    for name in PAGES:
        warm_up.switch_page(f"views/{name}.py").run()
    times: dict[str, dict[str, list[float]]] = {}
    for name in PAGES:
        cold, warm = [], []
        for _ in range(repeat):
            at = AppTest.from_file(str(APP), default_timeout=120)
            at.session_state[auth.SESSION_KEY] = name == "operations"
            at.run()
            at.switch_page(f"views/{name}.py")
            data.clear_cache()
            started = time.perf_counter()
            at.run()
            cold.append(round(time.perf_counter() - started, 3))
            started = time.perf_counter()
            at.run()
            warm.append(round(time.perf_counter() - started, 3))
            if at.exception:
                raise RuntimeError(f"{name}: {at.exception[0].value}")
        times[name] = {"cold": cold, "warm": warm}
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time pages in headless Chromium")
    args = parser.parse_args(argv)
    from pipeline.bench import machine

    url = db.Warehouse.from_environment().url
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from gold.fact_sales")
        fact_rows = cur.fetchone()[0]
        cur.execute("select count(*) from gold.customer_clv")
        clv_rows = cur.fetchone()[0]
    report = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "fact_sales_rows": fact_rows,
        "customer_clv_rows": clv_rows,
        "apptest_seconds": apptest_times(args.repeat),
    }
    if args.browser:
        report["browser_seconds"] = browser_times(args.repeat, db.metalayer_home() / "logs")
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
