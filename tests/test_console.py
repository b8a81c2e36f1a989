"""The Streamlit console with AppTest, on a warehouse filled by the pipeline from a small known fixture.

The fixture is tests/data/small (2026-11-20) and a second day written here
(2026-11-21). Three runs: 2026-11-20 fails at the quality gate (its score,
0.934, is under the 0.95 threshold), 2026-11-20 again with on_breach = warn,
then 2026-11-21. Expected figures after them, by hand:

fact_sales   O1  C1 P1 2026-11-01    5.00     O2  C2 P3 2026-11-02  300.00
             O3  C4 P2 2026-11-02  100.00     O10 C1 P1 2026-11-05    0.00
             O12 C2 P1 2026-11-20   10.00     O13 C4 P3 2026-11-21   10.00
KPIs         2026-11-20: 4 orders, 3 customers, revenue 405.00, AOV 101.25
             2026-11-21: 6 orders, 3 customers, revenue 425.00, AOV 70.83
             changes: +2 orders, +0 customers, +20.00 revenue, -30.42 AOV
regions      New England (C1, C2) 315.00; Mountain (C4) 110.00
products     P3 Gizmo 310.00, P2 Gadget 100.00, P1 Widget 15.00
CLV          3 customers: too few to fit, so historical CLV: C2 310.00, C4 110.00, C1 5.00, mean 141.67
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO_ROOT, write_landing

SMALL = REPO_ROOT / "tests" / "data" / "small"
DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)
APP = str(REPO_ROOT / "console" / "app.py")
OPS_PASSWORD = "correct horse battery staple"  # noqa: S105 - the tests' own

DAY2_FILES = {
    "crm_customers.csv": (
        "customer_id,first_name,last_name,email,phone,address,city,state,region,signup_date,updated_at\n"
        "C2,Bob,Smith,bob.smith@example.com,555-CALL-NOW,2 Oak Ave,Boston,MA,New England,2024-01-06,"
        "2026-11-21T09:00:00Z\n"),
    "erp_products.csv": (SMALL / "2026-11-20" / "erp_products.csv").read_text(),
    "erp_sales.csv": ("order_id,customer_id,product_id,order_date,quantity,unit_price\n"
                      "O12,C2,P1,2026-11-20,4,2.50\n"
                      "O13,C4,P3,2026-11-21,1,10.00\n"),
}


def build_console_landing(root: Path) -> Path:
    landing = root / "landing"
    shutil.copytree(SMALL, landing)
    return write_landing(landing, DAY2.isoformat(), DAY2_FILES)


def fill_console_warehouse(landing: Path) -> dict[str, str]:
    """The three runs of the module docstring; returns their run ids by name."""
    import luigi.configuration
    from luigi.task_register import Register

    from pipeline.runner import run_pipeline

    failed = run_pipeline(DAY1, landing=landing, trigger="test")
    assert not failed.success, "the small fixture's quality score should fail the default gate"
    config = luigi.configuration.get_config()
    had = config.get("quality", "on_breach", None)
    config.set("quality", "on_breach", "warn")
    Register.clear_instance_cache()
    try:
        first = run_pipeline(DAY1, landing=landing, trigger="test")
        second = run_pipeline(DAY2, landing=landing, trigger="cli")
    finally:
        if had is None:
            config.remove_option("quality", "on_breach")
        else:
            config.set("quality", "on_breach", had)
        Register.clear_instance_cache()
    assert first.success and second.success, (first.luigi_summary, second.luigi_summary)
    return {"failed": failed.run_id, "day1": first.run_id, "day2": second.run_id}


@pytest.fixture(scope="module")
def console_db(server_url, tmp_path_factory):
    """A database filled from the fixture once for this module; DATABASE_URL is set per test."""
    from pipeline import db

    name = f"test_console_{uuid.uuid4().hex[:8]}"
    url = db.create_database(name, server_url)
    landing = build_console_landing(tmp_path_factory.mktemp("console"))
    saved = {key: os.environ.get(key) for key in ("DATABASE_URL", "METALAYER_LANDING_DIR")}
    os.environ["DATABASE_URL"], os.environ["METALAYER_LANDING_DIR"] = url, str(landing)
    try:
        db.bootstrap(url)
        runs = fill_console_warehouse(landing)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    yield {"url": url, "landing": landing, "runs": runs}
    db.drop_database(name, server_url)


# ---------------------------------------------------------------- helpers

def run_sql(url: str, text: str, params=None) -> list[tuple]:
    from pipeline import db

    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(text, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def console_env(monkeypatch):
    """A clean console state for each test: no ops password, no cached results, no login failures."""
    from console import auth, data

    for name in (auth.HASH_ENV, auth.PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    data.clear_cache()
    auth.THROTTLE.reset()
    yield monkeypatch
    data.clear_cache()
    auth.THROTTLE.reset()


@pytest.fixture
def filled(console_db, console_env):
    console_env.setenv("DATABASE_URL", console_db["url"])
    console_env.setenv("METALAYER_LANDING_DIR", str(console_db["landing"]))
    return console_db


def open_page(name: str, at: AppTest | None = None) -> AppTest:
    """Run the app (first time) and show console/views/<name>.py; fail on any exception."""
    if at is None:
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
    at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def login(at: AppTest, password: str) -> AppTest:
    at.sidebar.text_input(key="ops_password").input(password)
    at.sidebar.form_submit_button[0].click()
    at.run()
    return at


def page_text(at: AppTest) -> str:
    """Everything a person can read on the page, tables included."""
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error", "success", "code"):
        parts += [str(element.value) for element in getattr(at, kind)]
    parts += [f"{metric.label}: {metric.value} {metric.delta}" for metric in at.metric]
    parts += [frame.value.to_csv() for frame in at.dataframe]
    parts += [str(status.label) for status in at.status]
    return "\n".join(parts)


def metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {metric.label: (metric.value, metric.delta) for metric in at.metric}


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def elements(at: AppTest, kind: str) -> list:
    """Elements AppTest has no accessor for (charts), by their type."""
    return [element for element in at.main if getattr(element, "type", None) == kind]


# ---------------------------------------------------------------- pages

def test_overview_shows_the_latest_run_kpis_with_changes_rows_and_freshness(filled):
    at = open_page("overview")
    url, day2 = filled["url"], filled["runs"]["day2"]
    shown = metrics(at)
    assert shown["Status"][0] == "success"
    tasks = run_sql(url, "select count(*) from meta.task_runs where run_id = %s and status in ('success', 'skipped')",
                    (day2,))[0][0]
    assert shown["Tasks done"][0] == f"{tasks} of {tasks}"
    # KPIs and their change against 2026-11-20, by hand (module docstring).
    assert shown["Revenue"] == ("425.00", "+20.00")
    assert shown["Orders"] == ("6", "+2")
    assert shown["Customers"] == ("3", "+0")
    assert shown["Average order value"] == ("70.83", "-30.42")
    # No CLV fit on three customers: the tile says so and shows historical CLV, 425.00 / 3 (was 405.00 / 3).
    assert shown["Average historical CLV"] == ("141.67", "+6.67")
    score = run_sql(url, "select score from meta.quality_scores where run_id = %s and table_name = '*' "
                         "and dimension = 'overall'", (day2,))[0][0]
    assert shown["Run quality score"][0] == f"{float(score) * 100:.2f}%"
    text = page_text(at)
    assert day2 in text and "SLA met" in text
    rows = frame_with(at, "row_count").set_index("table_name")["row_count"].to_dict()
    for table in ("silver.customers", "silver.products", "silver.sales", "silver.quarantine", "gold.fact_sales",
                  "gold.dim_customer", "gold.dim_product"):
        assert rows[table] == run_sql(url, f"select count(*) from {table}")[0][0], table  # noqa: S608
    assert rows["silver.sales"] == 6 and rows["gold.fact_sales"] == 6
    # Bronze: the lines of both days' files (the small fixture's and the three written here).
    assert rows["bronze.erp_sales_raw"] == 13 + 2 and rows["bronze.crm_customers_raw"] == 8 + 1
    freshness = frame_with(at, "source_name").set_index("source_name")
    assert sorted(freshness.index) == ["crm_customers", "erp_products", "erp_sales"]
    assert set(freshness["latest_extract_date"]) == {DAY2} and set(freshness["files"]) == {2}


def test_overview_reports_a_recorded_sla_miss(filled):
    url, day2 = filled["url"], filled["runs"]["day2"]
    run_sql(url, "insert into meta.sla_misses (run_id, run_date, message) values (%s, %s, %s)",
            (day2, DAY2, "gold not done within 180 minutes of the run's start"))
    try:
        text = page_text(open_page("overview"))
    finally:
        run_sql(url, "delete from meta.sla_misses where run_id = %s", (day2,))
    assert "SLA missed" in text and "gold not done within 180 minutes" in text and "SLA met" not in text


def test_runs_history_filters_timeline_task_rows_errors_and_log(filled):
    url, runs = filled["url"], filled["runs"]
    at = open_page("runs")
    history = frame_with(at, "tasks_failed")
    assert list(history["run_id"]) == [runs["day2"], runs["day1"], runs["failed"]]  # newest first
    (gantt,) = elements(at, "vega_lite_chart")
    assert '"x2"' in gantt.proto.spec and "started_at" in gantt.proto.spec and "ended_at" in gantt.proto.spec
    at.multiselect(key="runs_status").set_value(["failed"]).run()
    assert list(frame_with(at, "tasks_failed")["run_id"]) == [runs["failed"]]
    assert at.selectbox(key="runs_pick").value == runs["failed"]
    tasks = frame_with(at, "rows_in").set_index("task_family")
    assert tasks.loc["SilverQualityGate", "status"] == "failed"
    # rows in and out per task are meta.task_runs' own; the sales file has 13 lines.
    assert tasks.loc["ErpSalesRaw", "rows_in"] == 13
    expected = dict(run_sql(url, "select task_family, rows_out from meta.task_runs where run_id = %s "
                                 "and rows_out is not null", (runs["failed"],)))
    assert tasks["rows_out"].dropna().to_dict() == expected
    text = page_text(at)
    assert "QualityGateFailed: run quality score" in text  # the task's error, in its expander
    assert metrics(at)["Failed tasks"][0] == "1"
    log_file = run_sql(url, "select to_jsonb(r) ->> 'log_file' from meta.pipeline_runs r where run_id = %s",
                       (runs["failed"],))[0][0]
    if log_file:  # runs record their log file (operations issue)
        assert any(runs["failed"] in str(code.value) for code in at.code)
    at.multiselect(key="runs_status").set_value(["failed", "success"]).run()
    at.multiselect(key="runs_trigger").set_value(["cli"]).run()
    assert list(frame_with(at, "tasks_failed")["run_id"]) == [runs["day2"]]
    at.date_input(key="runs_dates").set_value((DAY1, DAY1)).run()
    assert "No run matches these filters" in page_text(at)


def test_quality_scores_failing_rules_and_masked_quarantine(filled):
    url, runs = filled["url"], filled["runs"]
    at = open_page("quality")
    assert not at.exception
    at.selectbox(key="quality_run").set_value(runs["failed"]).run()
    failing = frame_with(at, "rows_failed")
    expected = run_sql(url, "select table_name, rule_name, rows_checked, rows_failed from meta.quality_results "
                            "where run_id = %s and rows_failed > 0 order by pass_rate, 1, 2", (runs["failed"],))
    assert [tuple(row) for row in failing[["table_name", "rule_name", "rows_checked", "rows_failed"]].values] == [
        tuple(row) for row in expected]
    # By hand (tests/test_silver.py): one phone of the seven customer rows checked fails.
    assert ("silver.customers", "phone_valid", 7, 1) in [tuple(row) for row in expected]
    latest = frame_with(at, "score").set_index("table")["score"]
    run_score = run_sql(url, "select score from meta.quality_scores where run_id = %s and table_name = '*' and "
                             "dimension = 'overall'", (runs["day2"],))[0][0]
    assert latest["run (all tables)"] == pytest.approx(float(run_score))

    quarantine = frame_with(at, "line_number")
    # The silver quarantine of tests/test_silver.py: 3 customer lines and 8 sales lines.
    assert len(quarantine) == 11 and "11 quarantined row(s) match" in page_text(at)
    text = quarantine.to_csv()
    for personal in ("ed@example.com", "flo@example.com", "4155550126", "415.555.0124", "5 Ash St"):
        assert personal not in text, personal
    assert "e***@example.com" in text and "***26" in text
    at.multiselect(key="quarantine_rules").set_value(["customer_exists"]).run()
    rows = frame_with(at, "line_number")
    assert sorted(rows["line_number"]) == [6, 11] and set(rows["source_table"]) == {"silver.sales"}
    assert "2 quarantined row(s) match" in page_text(at)


def test_quarantine_csv_holds_every_matching_row_masked_unless_ops(filled):
    from console import data

    masked = pd.read_csv(__import__("io").BytesIO(data.csv_bytes(
        "quarantine", masked=True, drop=("matching_rows",), tables=["silver.customers"], rules=[], runs=[],
        limit=None)))
    assert sorted(masked["line_number"]) == [4, 8, 9] and "matching_rows" not in masked.columns
    assert "ed@example.com" not in masked.to_csv() and "e***@example.com" in masked.to_csv()
    plain = data.csv_bytes("quarantine", masked=False, tables=["silver.customers"], rules=[], runs=[], limit=None)
    assert b"ed@example.com" in plain


def test_business_kpis_products_regions_clv_and_cohorts_masked(filled):
    at = open_page("business")
    shown = metrics(at)
    assert shown["Revenue"][0] == "425.00" and shown["Orders"][0] == "6"
    assert shown["Average order value"][0] == "70.83"
    products = frame_with(at, "total_quantity_sold")
    assert [(p, r) for p, r in products[["product_id", "revenue"]].values] == [
        ("P3", 310.0), ("P2", 100.0), ("P1", 15.0)]
    regions = frame_with(at, "revenue_share")
    assert [(r, v) for r, v in regions[["region", "revenue"]].values] == [("New England", 315.0), ("Mountain", 110.0)]
    assert regions["revenue_share"].tolist() == pytest.approx([315 / 425, 110 / 425], abs=1e-6)
    customers = frame_with(at, "historical_clv")
    assert customers[["customer_id", "historical_clv"]].values.tolist() == [
        ["C2", 310.0], ["C4", 110.0], ["C1", 5.0]]
    assert customers["email"].tolist() == ["b***@example.com", "d***@example.com", "a***@example.com"]
    assert customers["phone"].tolist()[1:] == ["***25", "***23"]
    text = page_text(at)
    for personal in ("bob.smith@example.com", "di.prince@example.com", "ann.lee@example.com", "+14155550125",
                     "Smith", "Prince"):
        assert personal not in text, personal
    assert "No predictions for this date" in text  # three customers are too few to fit
    segments = frame_with(at, "segment")
    assert segments[["segment", "customers"]].values.tolist() == [["not modelled", 3]]
    specs = [chart.proto.spec for chart in elements(at, "vega_lite_chart")]
    assert any("month_start" in spec for spec in specs) and any("retention_rate" in spec for spec in specs)


def test_ops_login_unmasks_personal_data(filled, console_env):
    console_env.setenv("METALAYER_OPS_PASSWORD", OPS_PASSWORD)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    login(at, OPS_PASSWORD)
    assert "Ops: logged in" in "\n".join(str(s.value) for s in at.sidebar.success)
    open_page("business", at)
    customers = frame_with(at, "historical_clv")
    assert customers["email"].tolist() == ["bob.smith@example.com", "di.prince@example.com", "ann.lee@example.com"]
    assert customers["phone"].tolist()[1:] == ["+14155550125", "+14155550123"]
    open_page("quality", at)
    assert "ed@example.com" in frame_with(at, "line_number").to_csv()


def test_lineage_graph_comes_from_luigi_and_shows_latest_status(filled):
    from pipeline.tasks_bronze import BRONZE_TASKS
    from pipeline.tasks_gold import GOLD_TASKS
    from pipeline.tasks_silver import SILVER_TASKS, SilverQualityGate

    at = open_page("lineage")
    (chart,) = elements(at, "graphviz_chart")
    dot = chart.proto.spec
    families = {task.__name__ for task in (*BRONZE_TASKS, *SILVER_TASKS, SilverQualityGate, *GOLD_TASKS)}
    table = frame_with(at, "task_family")
    assert set(table["task_family"]) == families
    assert set(table["status"]) == {"success"}  # the latest run of every task succeeded
    for family in families:
        assert f'"{family}" [label="{family}' in dot
    assert '"file:erp_sales" -> "ErpSalesRaw"' in dot and '"FactSales" -> "AggDailySales"' in dot
    assert '"CustomerClv" -> "BusinessKpis"' in dot and '"SilverQualityGate" -> "DimCustomer"' in dot
    assert dot.count('fillcolor="#c8e6c9"') == len(families)  # every task: success green
    assert set(table.loc[table["needs_previous_date"], "task_family"]) == {"SilverCustomers", "SilverProducts",
                                                                         "FactSales"}


def test_lineage_colours_a_failed_task_red_and_unrun_ones_white(warehouse, console_env, tmp_path):
    from pipeline.runner import run_pipeline

    landing = tmp_path / "landing"
    shutil.copytree(SMALL, landing)
    assert not run_pipeline(DAY1, landing=landing, trigger="test").success  # fails at the quality gate
    at = open_page("lineage")
    dot = elements(at, "graphviz_chart")[0].proto.spec
    assert '"SilverQualityGate" [label="SilverQualityGate\\nmeta.quality_scores\\n[failed]", fillcolor="#ffcdd2"]' in dot
    assert '"FactSales" [label="FactSales\\ngold.fact_sales\\n[never ran]' in dot
    assert '[success]", fillcolor="#c8e6c9"' in dot  # bronze and silver ran


def test_every_page_guides_on_a_fresh_database(warehouse, console_env):
    at = None
    for name in ("overview", "runs", "quality", "business"):
        at = open_page(name, at)
        assert "No pipeline run is recorded in this warehouse yet" in page_text(at), name
        assert "make run" in page_text(at)
    at = open_page("lineage", at)
    assert "[never ran]" in elements(at, "graphviz_chart")[0].proto.spec
    assert "No pipeline run is recorded" in page_text(at)


def test_every_page_guides_on_a_database_without_the_schema(server_url, console_env):
    from pipeline import db

    name = f"test_console_empty_{uuid.uuid4().hex[:8]}"
    url = db.create_database(name, server_url)
    console_env.setenv("DATABASE_URL", url)
    try:
        at = None
        for page in ("overview", "runs", "quality", "business", "lineage"):
            at = open_page(page, at)
            text = page_text(at)
            assert "no MetaLayer schema yet" in text or "No pipeline run is recorded" in text, page
        assert "metalayer db bootstrap" in page_text(open_page("overview", at))
    finally:
        db.drop_database(name, server_url)
