"""End to end: `metalayer console` on a free port, every page in headless Debian Chromium (Playwright).

The warehouse holds the seed-scale sample data `make run` loads (10,000
customers and 10,000 sales lines, two extract dates). Screenshots of every page
go to build/test-artifacts/console-e2e/ (git-ignored; METALAYER_TEST_ARTIFACTS
moves them).
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

OPS_PASSWORD = "e2e ops password"  # noqa: S105 - the test's own
DAYS = (date(2026, 11, 20), date(2026, 11, 21))
ARTIFACTS = Path(os.environ.get("METALAYER_TEST_ARTIFACTS") or REPO_ROOT / "build" / "test-artifacts") / "console-e2e"

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(),
    reason="needs Debian's chromium (scripts/system-deps.sh, run by `make test`)",
)


@pytest.fixture(scope="module")
def sample_warehouse(server_url, seed_landing):
    from pipeline.core import db
    from pipeline.operations.runner import run_pipeline

    name = f"test_console_e2e_{uuid.uuid4().hex[:8]}"
    url = db.create_database(name, server_url)
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        db.bootstrap(url)
        for day in DAYS:
            result = run_pipeline(day, landing=seed_landing, trigger="test")
            assert result.success, result.luigi_summary
    finally:
        os.environ.pop("DATABASE_URL") if saved is None else os.environ.__setitem__("DATABASE_URL", saved)
    yield url
    db.drop_database(name, server_url)


def one(url: str, text: str, params=None):
    from pipeline.core import db

    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(text, params)
        return cur.fetchone()


def test_every_page_in_headless_chromium_and_a_rerun_from_the_console(sample_warehouse, seed_landing):
    from playwright.sync_api import expect

    from console.bench import PAGES, chromium, console_server, open_page, wait_prefetched, wait_rendered
    from console.graph import task_graph
    from console.prefetch import module_names
    from console.ui import tile_money

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": sample_warehouse,
        "METALAYER_LANDING_DIR": str(seed_landing),
        "METALAYER_OPS_PASSWORD": OPS_PASSWORD,
    }
    revenue, orders = one(
        sample_warehouse, "select revenue, orders from gold.business_kpis where run_date = %s", (DAYS[1],)
    )
    latest_run = one(sample_warehouse, "select run_id from meta.pipeline_runs order by started_at desc limit 1")[0]
    expected = {  # page -> texts it must show (beside its last section, which open_page waits for)
        "overview": [
            "Latest run",
            latest_run,
            "SLA met",
            "Key figures",
            tile_money(revenue),
            f"{orders:,}",
            "Average predicted CLV",
            "Rows per layer",
        ],
        "runs": [
            "Dates and tasks",
            "Every extract date is delivered",
            "Task timeline",
            "Rows in and out per task",
            latest_run,
        ],
        "quality": ["Scores over time", "Failing rules of a run", "quarantined row(s) match", "are masked"],
        "business": [
            "Revenue by month and region",
            "Top products",
            "Regional analytics",
            "P(alive) segments",
            "Top 20 customers by predicted CLV",
            "Names, e-mail addresses and phone numbers are masked",
        ],
        "lineage": ["Derived from Luigi"],
        "operations": ["Reruns and backfills need an ops login"],
        "anomalies": ["Anomalies per extract date", "A metric against its baseline"],
    }
    page_errors: list[str] = []
    with console_server(env, ARTIFACTS / "server.log") as url, chromium((1400, 2400)) as page:
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        main = page.locator('[data-testid="stMain"]')

        def check(name: str) -> None:
            for text in expected[name]:  # the page may still be drawing its sections: wait for each
                main.get_by_text(text).filter(visible=True).first.wait_for(timeout=30_000)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            page.screenshot(path=ARTIFACTS / f"{list(PAGES).index(name) + 1:02d}-{name}.png", full_page=True)

        page.goto(url)
        wait_rendered(page, PAGES["overview"][1])
        check("overview")
        # console/prefetch.py: the landing page has the browser load the chart and widget code of the other pages
        page.wait_for_function(
            """names => names.every(name => performance.getEntriesByType('resource')
                                      .some(entry => entry.name.endsWith('/static/js/' + name)))""",
            arg=list(module_names()),
            timeout=30_000,
        )
        wait_prefetched(page)  # and the modules they import
        for name in list(PAGES)[1:]:
            open_page(page, name)
            check(name)
        assert "No predictions" not in main.inner_text()  # the CLV models fit on the sample data
        graph = page.locator('[data-testid="stGraphVizChart"] svg')
        open_page(page, "lineage")
        lineage = task_graph()
        # the drawing may still be (re)drawn after the page's last text shows: wait for its nodes
        expect(graph.locator("g.node")).to_have_count(len(lineage.nodes), timeout=30_000)  # files and tasks
        expect(graph.locator("text", has_text="[success]")).to_have_count(len(lineage.task_families), timeout=30_000)

        # Log in as ops, then rerun MasterTask for the latest date from the Operations page.
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_label("Ops password").fill(OPS_PASSWORD)
        sidebar.get_by_role("button", name="Log in").click()
        sidebar.get_by_text("Ops: logged in").wait_for(timeout=30_000)
        open_page(page, "operations")
        page.get_by_role("tab", name="Rerun").click()
        main.get_by_role("button", name="Launch rerun").click()
        main.get_by_text("Plan: rerun MasterTask for 2026-11-21").wait_for(timeout=60_000)
        page.screenshot(path=ARTIFACTS / "08-operations-plan.png", full_page=True)
        main.get_by_role("button", name="Confirm launch").click()
        main.get_by_text("Launched rerun MasterTask for 2026-11-21").wait_for(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "08-operations-launched.png", full_page=True)
        finished = main.get_by_text("rerun MasterTask for 2026-11-21: finished")
        # While the finished fragment hands over to the full-page rerun, Streamlit briefly shows the old status
        # box (stale) beside the new one: wait for either, then for the page to settle on exactly one.
        finished.first.wait_for(timeout=240_000)
        expect(finished).to_have_count(1, timeout=30_000)
        page.screenshot(path=ARTIFACTS / "09-operations-finished.png", full_page=True)
    assert not page_errors, page_errors
    run_id, status, tasks = one(
        sample_warehouse,
        """
        select runs.run_id, runs.status, count(tasks.*)
        from meta.pipeline_runs as runs left join meta.task_runs as tasks using (run_id)
        where runs.trigger = 'console' group by 1, 2""",
    )
    assert status == "success" and run_id.startswith("2026-11-21") and tasks >= 18  # every task ran again
    assert sorted(path.name for path in ARTIFACTS.glob("*.png"))[: len(PAGES)] == [
        f"{index:02d}-{name}.png" for index, name in enumerate(PAGES, start=1)
    ]
