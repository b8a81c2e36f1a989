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

import io
import os
import shutil
import socket
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np
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
        "2026-11-21T09:00:00Z\n"
    ),
    "erp_products.csv": (SMALL / "2026-11-20" / "erp_products.csv").read_text(),
    "erp_sales.csv": (
        "order_id,customer_id,product_id,order_date,quantity,unit_price\n"
        "O12,C2,P1,2026-11-20,4,2.50\n"
        "O13,C4,P3,2026-11-21,1,10.00\n"
    ),
}


def build_console_landing(root: Path) -> Path:
    landing = root / "landing"
    shutil.copytree(SMALL, landing)
    return write_landing(landing, DAY2.isoformat(), DAY2_FILES)


def fill_console_warehouse(landing: Path) -> dict[str, str]:
    """The three runs of the module docstring; returns their run ids by name."""
    import luigi.configuration
    from luigi.task_register import Register

    from pipeline.operations.runner import run_pipeline

    # wait=True: a run's date lock is released as its connection's backend exits, a moment after
    # the run returns; the next run of the same date queues behind it instead of being refused.
    failed = run_pipeline(DAY1, landing=landing, trigger="test", wait=True)
    assert not failed.success, "the small fixture's quality score should fail the default gate"
    config = luigi.configuration.get_config()
    had = config.get("quality", "on_breach", None)
    config.set("quality", "on_breach", "warn")
    Register.clear_instance_cache()
    try:
        first = run_pipeline(DAY1, landing=landing, trigger="test", wait=True)
        second = run_pipeline(DAY2, landing=landing, trigger="cli", wait=True)
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
    from pipeline.core import db

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
    from pipeline.core import db

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


def chart_data(chart) -> pd.DataFrame:
    """The rows an altair chart was given (Streamlit sends them as Arrow beside the spec)."""
    import pyarrow as pa

    if not chart.proto.datasets:  # st.vega_lite_chart(data, spec): the data beside the spec, not a named dataset
        return pa.ipc.open_stream(chart.proto.data.data).read_all().to_pandas()
    (dataset,) = chart.proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()


def elements(at: AppTest, kind: str) -> list:
    """Elements AppTest has no accessor for (charts), by their type."""
    return [element for element in at.main if getattr(element, "type", None) == kind]


# ---------------------------------------------------------------- pages


def test_overview_shows_the_latest_run_kpis_with_changes_rows_and_freshness(filled):
    at = open_page("overview")
    url, day2 = filled["url"], filled["runs"]["day2"]
    shown = metrics(at)
    assert shown["Status"][0] == "success"
    tasks = run_sql(
        url, "select count(*) from meta.task_runs where run_id = %s and status in ('success', 'skipped')", (day2,)
    )[0][0]
    assert shown["Tasks done"][0] == f"{tasks} of {tasks}"
    # KPIs and their change against 2026-11-20, by hand (module docstring).
    assert shown["Revenue"] == ("425.00", "+20.00")
    assert shown["Orders"] == ("6", "+2")
    assert shown["Customers"] == ("3", "+0")
    assert shown["Average order value"] == ("70.83", "-30.42")
    # No CLV fit on three customers: the tile says so and shows historical CLV, 425.00 / 3 (was 405.00 / 3).
    assert shown["Average historical CLV"] == ("141.67", "+6.67")
    score = run_sql(
        url,
        "select score from meta.quality_scores where run_id = %s and table_name = '*' and dimension = 'overall'",
        (day2,),
    )[0][0]
    assert shown["Run quality score"][0] == f"{float(score) * 100:.2f}%"
    text = page_text(at)
    assert day2 in text and "SLA met" in text
    rows = frame_with(at, "row_count").set_index("table_name")["row_count"].to_dict()
    for table in (
        "silver.customers",
        "silver.products",
        "silver.sales",
        "silver.quarantine",
        "gold.fact_sales",
        "gold.dim_customer",
        "gold.dim_product",
    ):
        assert rows[table] == run_sql(url, f"select count(*) from {table}")[0][0], table  # noqa: S608
    assert rows["silver.sales"] == 6 and rows["gold.fact_sales"] == 6
    # Bronze: the lines of both days' files (the small fixture's and the three written here).
    assert rows["bronze.erp_sales_raw"] == 13 + 2 and rows["bronze.crm_customers_raw"] == 8 + 1
    freshness = frame_with(at, "source_name").set_index("source_name")
    assert sorted(freshness.index) == ["crm_customers", "erp_products", "erp_sales"]
    assert set(freshness["latest_extract_date"]) == {DAY2} and set(freshness["files"]) == {2}


def test_overview_reports_a_recorded_sla_miss(filled):
    url, day2 = filled["url"], filled["runs"]["day2"]
    run_sql(
        url,
        "insert into meta.sla_misses (run_id, run_date, message) values (%s, %s, %s)",
        (day2, DAY2, "gold not done within 180 minutes of the run's start"),
    )
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
    bars = chart_data(gantt).set_index("task_family")
    day2_tasks = run_sql(
        url,
        "select tasks.task_family, extract(epoch from tasks.started_at - runs.started_at), "
        "extract(epoch from tasks.finished_at - runs.started_at) from meta.task_runs as tasks "
        "inner join meta.pipeline_runs as runs using (run_id) where run_id = %s",
        (runs["day2"],),
    )
    assert len(bars) == len(day2_tasks)  # one bar per task of the latest run, from its start to its end
    for family, start, end in day2_tasks:
        assert bars.loc[family, "start_seconds"] == pytest.approx(float(start), abs=1e-3)
        assert bars.loc[family, "end_seconds"] == pytest.approx(float(end), abs=1e-3)
    at.multiselect(key="runs_status").set_value(["failed"]).run()
    assert list(frame_with(at, "tasks_failed")["run_id"]) == [runs["failed"]]
    assert at.selectbox(key="runs_pick").value == runs["failed"]
    tasks = frame_with(at, "rows_in").set_index("task_family")
    assert tasks.loc["SilverQualityGate", "status"] == "failed"
    # rows in and out per task are meta.task_runs' own; the sales file has 13 lines.
    assert tasks.loc["ErpSalesRaw", "rows_in"] == 13
    expected = dict(
        run_sql(
            url,
            "select task_family, rows_out from meta.task_runs where run_id = %s and rows_out is not null",
            (runs["failed"],),
        )
    )
    assert tasks["rows_out"].dropna().to_dict() == expected
    text = page_text(at)
    assert "QualityGateFailed: run quality score" in text  # the task's error, in its expander
    assert metrics(at)["Failed tasks"][0] == "1"
    log_file = run_sql(
        url, "select to_jsonb(r) ->> 'log_file' from meta.pipeline_runs r where run_id = %s", (runs["failed"],)
    )[0][0]
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
    expected = run_sql(
        url,
        "select table_name, rule_name, rows_checked, rows_failed from meta.quality_results "
        "where run_id = %s and rows_failed > 0 order by pass_rate, 1, 2",
        (runs["failed"],),
    )
    assert [tuple(row) for row in failing[["table_name", "rule_name", "rows_checked", "rows_failed"]].values] == [
        tuple(row) for row in expected
    ]
    # By hand (tests/test_silver.py): one phone of the seven customer rows checked fails.
    assert ("silver.customers", "phone_valid", 7, 1) in [tuple(row) for row in expected]
    latest = frame_with(at, "score").set_index("table")["score"]
    run_score = run_sql(
        url,
        "select score from meta.quality_scores where run_id = %s and table_name = '*' and dimension = 'overall'",
        (runs["day2"],),
    )[0][0]
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

    masked = pd.read_csv(
        io.BytesIO(
            data.csv_bytes(
                "quarantine",
                masked=True,
                drop=("matching_rows",),
                tables=["silver.customers"],
                rules=[],
                runs=[],
                limit=None,
            )
        )
    )
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
        ("P3", 310.0),
        ("P2", 100.0),
        ("P1", 15.0),
    ]
    regions = frame_with(at, "revenue_share")
    assert [(r, v) for r, v in regions[["region", "revenue"]].values] == [("New England", 315.0), ("Mountain", 110.0)]
    assert regions["revenue_share"].tolist() == pytest.approx([315 / 425, 110 / 425], abs=1e-6)
    customers = frame_with(at, "historical_clv")
    assert customers[["customer_id", "historical_clv"]].values.tolist() == [["C2", 310.0], ["C4", 110.0], ["C1", 5.0]]
    assert customers["email"].tolist() == ["b***@example.com", "d***@example.com", "a***@example.com"]
    assert customers["phone"].tolist()[1:] == ["***25", "***23"]
    text = page_text(at)
    for personal in (
        "bob.smith@example.com",
        "di.prince@example.com",
        "ann.lee@example.com",
        "+14155550125",
        "Smith",
        "Prince",
    ):
        assert personal not in text, personal
    assert "No predictions for this date" in text  # three customers are too few to fit
    segments = frame_with(at, "segment")
    assert segments[["segment", "customers"]].values.tolist() == [["not modelled", 3]]
    data = {tuple(sorted(chart_data(chart).columns)): chart_data(chart) for chart in elements(at, "vega_lite_chart")}
    monthly = next(frame for columns, frame in data.items() if "month_start" in columns)
    assert monthly[["region", "revenue"]].values.tolist() == [["Mountain", 110.0], ["New England", 315.0]]
    assert {str(day)[:10] for day in monthly["month_start"]} == {"2026-11-01"}
    cohorts = next(frame for columns, frame in data.items() if "retention_rate" in columns)
    # Every customer first bought in November 2026: one cohort of 3, month 0 only, retention 1.
    assert cohorts[
        ["cohort", "months_since_first", "cohort_size", "active_customers", "retention_rate"]
    ].values.tolist() == [["2026-11", 0, 3, 3, 1.0]]
    histogram = next(frame for columns, frame in data.items() if "bin_start" in columns)
    # Historical CLV 5, 110, 310; 99th percentile 110 + 0.98 x 200 = 306, bins of 15.3: 1, 8 and the last.
    assert histogram[["bin", "customers"]].values.tolist() == [[1, 1], [8, 1], [20, 1]]
    assert histogram["bin_start"].tolist() == pytest.approx([0, 7 * 15.3, 19 * 15.3])


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
    from pipeline import registry

    at = open_page("lineage")
    (chart,) = elements(at, "graphviz_chart")
    dot = chart.proto.spec
    families = {task.__name__ for task in registry.TASKS}
    table = frame_with(at, "task_family")
    assert set(table["task_family"]) == families
    assert set(table["status"]) == {"success"}  # the latest run of every task succeeded
    for family in families:
        assert f'"{family}" [label="{family}' in dot
    assert '"file:erp_sales" -> "ErpSalesRaw"' in dot and '"FactSales" -> "AggDailySales"' in dot
    assert '"CustomerClv" -> "BusinessKpis"' in dot and '"SilverQualityGate" -> "DimCustomer"' in dot
    assert dot.count('fillcolor="#c8e6c9"') == len(families)  # every task: success green
    assert set(table.loc[table["needs_previous_date"], "task_family"]) == {
        "SilverCustomers",
        "SilverProducts",
        "FactSales",
    }


def test_lineage_colours_a_failed_task_red_and_unrun_ones_white(warehouse, console_env, tmp_path):
    from pipeline.operations.runner import run_pipeline

    landing = tmp_path / "landing"
    shutil.copytree(SMALL, landing)
    assert not run_pipeline(DAY1, landing=landing, trigger="test").success  # fails at the quality gate
    at = open_page("lineage")
    dot = elements(at, "graphviz_chart")[0].proto.spec
    assert (
        '"SilverQualityGate" [label="SilverQualityGate\\nmeta.quality_scores\\n[failed]", fillcolor="#ffcdd2", '
        f'URL="runs?date={DAY1}&task=SilverQualityGate", target="_self"'
    ) in dot
    assert '"FactSales" [label="FactSales\\ngold.fact_sales\\n[blocked]' in dot  # never ran: the gate failed
    assert "fontsize=14" in dot and "fontsize=11" not in dot  # readable: 14 pt, >= 12 px once drawn
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
    from pipeline.core import db

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


def test_business_clv_predictions_segments_and_distribution_match_pandas(warehouse, console_env, tmp_path):
    from pipeline.operations.runner import run_pipeline
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=1, customers=2000, orders=6000)
    assert run_pipeline(date(2026, 11, 1), landing=landing, trigger="test").success
    clv = pd.DataFrame(
        run_sql(
            warehouse,
            "select customer_id, predicted_clv::float8, historical_clv::float8, p_alive::float8 from gold.customer_clv",
        ),
        columns=["customer_id", "predicted_clv", "historical_clv", "p_alive"],
    )
    predicted = clv.dropna(subset=["predicted_clv"])
    assert len(predicted) > 1000  # the models fit on this data

    at = open_page("business")
    assert "No predictions" not in page_text(at)
    segments = frame_with(at, "segment").set_index("segment")["customers"]
    buckets = pd.cut(
        clv["p_alive"],
        [-1, 0.25, 0.5, 0.75, 2],
        right=False,
        labels=["likely lost (< 25%)", "at risk (25-50%)", "cooling (50-75%)", "active (P(alive) >= 75%)"],
    ).value_counts()
    for label, count in buckets.items():
        assert segments.get(label, 0) == count, label
    assert segments.sum() == len(clv)

    histogram = next(
        chart_data(chart) for chart in elements(at, "vega_lite_chart") if "bin_start" in chart_data(chart).columns
    )
    upper = float(np.percentile(predicted["predicted_clv"], 99))  # linear, as percentile_cont
    expected_bins = np.clip(np.floor(predicted["predicted_clv"] / upper * 20) + 1, 1, 20).value_counts()
    assert dict(zip(histogram["bin"], histogram["customers"], strict=True)) == {
        int(b): int(n) for b, n in expected_bins.items()
    }

    top = frame_with(at, "email")
    expected_top = predicted.sort_values(
        ["predicted_clv", "historical_clv", "customer_id"], ascending=[False, False, True]
    ).head(20)
    assert top["customer_id"].tolist() == expected_top["customer_id"].tolist()
    assert top["predicted_clv"].tolist() == pytest.approx(expected_top["predicted_clv"].tolist())
    from console.ui import tile_money

    revenue = next(metric for metric in at.metric if metric.label == "Revenue")
    assert revenue.value == tile_money(clv["historical_clv"].sum())
    assert revenue.proto.help == f"{clv['historical_clv'].sum():,.2f}"  # the exact figure, on hover


# ---------------------------------------------------------------- roles, masking, login


def test_reader_role_reads_gold_and_meta_but_no_personal_column(filled):
    import psycopg2

    from console import data
    from pipeline.core import db

    # The console first: on a server that asks for passwords it sets METALAYER_READER_PASSWORD on the role.
    house = data.warehouse()
    assert house.reader_note is None and house.reader.engine.url.username == "metalayer_reader"
    reader = db.reader_url(filled["url"])
    with db.transaction(reader) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from gold.fact_sales")
        assert cur.fetchone() == (6,)
        cur.execute("select email from console.customer_masked where customer_id = 'C2'")
        assert cur.fetchone() == ("b***@example.com",)
    with db.transaction(filled["url"]) as conn, conn.cursor() as cur:
        cur.execute(
            """select table_schema || '.' || table_name, column_name,
                      has_column_privilege('metalayer_reader', format('%I.%I', table_schema, table_name),
                                           column_name, 'select')
               from information_schema.columns
               where (table_schema, table_name) in (('gold', 'dim_customer'), ('silver', 'customers'))"""
        )
        readable = {(table, column): allowed for table, column, allowed in cur.fetchall()}
    personal = {"first_name", "last_name", "email", "phone", "phone_raw", "address"}
    assert {key for key, allowed in readable.items() if not allowed} == {key for key in readable if key[1] in personal}
    assert ("silver.customers", "is_phone_valid") in readable and len(readable) > 20
    for statement in (
        "select email from gold.dim_customer",
        "select phone from silver.customers",
        "select record from silver.quarantine",
        "select * from bronze.crm_customers_raw",
        "select * from console.customer",
        "delete from meta.pipeline_runs",
        "create table gold.scratch (x int)",
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege), db.transaction(reader) as conn, conn.cursor() as cur:
            cur.execute(statement)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call (415) 555-0123 now", "call *** now"),
        ("415-555-0123, 415.555.0123, 4155550123", "***, ***, ***"),
        ("+1 415 555 0123 or 1-415-555-0123", "*** or ***"),
        ("mail Ann.Lee@Example.com please", "mail ***@Example.com please"),
        # dates, times, counts and run ids stay readable
        (
            "run 2026-11-21-20261122T050426-2c4866 at 2026-11-21 10:00:00: 1008000 rows",
            "run 2026-11-21-20261122T050426-2c4866 at 2026-11-21 10:00:00: 1008000 rows",
        ),
        # a run id whose random suffix starts with digits holds "050426-1234" (a phone number's shape) inside a word
        ("2026-11-20-20261205T151534-1234ab.log", "2026-11-20-20261205T151534-1234ab.log"),
        ("run 2026-11-20-20261205T151534-123456 failed", "run 2026-11-20-20261205T151534-123456 failed"),
        ("phone:415-555-0123; fax 415 555 0124.", "phone:***; fax ***."),
    ],
)
def test_mask_text_hides_emails_and_phone_numbers_only(warehouse, text, masked):
    assert run_sql(warehouse, "select console.mask_text(%s)", (text,)) == [(masked,)]


def test_money_on_tiles_stays_short():
    from console.ui import tile_change, tile_money

    assert [tile_money(v) for v in (425, 9_999.994, 12_345.6, 2_210_034.56, None)] == [
        "425.00",
        "9,999.99",
        "12,346",
        "2.21 M",
        "n/a",
    ]
    assert [tile_change(v) for v in (20, -30.42, -1_500_000, None)] == ["+20.00", "-30.42", "-1.50 M", None]


def test_password_hash_round_trip_and_bad_format():
    from console import auth

    stored = auth.hash_password("s3cret")
    assert stored.startswith("scrypt$16384$8$1$") and stored != auth.hash_password("s3cret")  # salted
    assert auth.verify_password("s3cret", stored) and not auth.verify_password("s3cret ", stored)
    with pytest.raises(auth.HashFormatError, match="python -m console.auth"):
        auth.verify_password("s3cret", "plain-text")


def test_login_throttle_waits_after_five_failures_and_doubles():
    from console.auth import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(4):
        throttle.failed("client")
    assert throttle.wait_seconds("client") == 0
    throttle.failed("client")  # the fifth
    assert throttle.wait_seconds("client") == 30
    now[0] = 31
    throttle.failed("client")
    assert throttle.wait_seconds("client") == 60
    assert throttle.wait_seconds("other client") == 0
    throttle.succeeded("client")
    assert throttle.wait_seconds("client") == 0


def test_five_failed_logins_make_the_next_wait_even_with_the_right_password(filled, console_env):
    from console import auth

    now = [1000.0]
    console_env.setattr(auth, "THROTTLE", auth.LoginThrottle(clock=lambda: now[0]))
    console_env.setenv(auth.HASH_ENV, auth.hash_password(OPS_PASSWORD))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for attempt in range(1, 6):
        login(at, f"wrong {attempt}")
        errors = " ".join(str(error.value) for error in at.sidebar.error)
        assert "Wrong password." in errors
        assert ("Further attempts wait 30 s" in errors) == (attempt == 5)
    login(at, OPS_PASSWORD)
    assert "Too many failed logins: try again in 30 s" in " ".join(str(e.value) for e in at.sidebar.error)
    assert not at.sidebar.success
    now[0] += 31
    login(at, OPS_PASSWORD)
    assert "Ops: logged in" in " ".join(str(s.value) for s in at.sidebar.success)


# ---------------------------------------------------------------- operations


def launch_buttons(at: AppTest) -> list[str]:
    return [button.label for button in at.button if button.label.startswith("Launch")]


def test_operations_are_disabled_without_an_ops_password(filled):
    at = open_page("operations")
    text = page_text(at)
    assert "Operations are disabled: no ops password is configured" in text
    assert "python -m console.auth" in text and "METALAYER_OPS_PASSWORD_HASH" in text
    assert launch_buttons(at) == []


def test_operations_refuse_without_a_login(filled, console_env):
    from console import auth

    console_env.setenv(auth.HASH_ENV, auth.hash_password(OPS_PASSWORD))
    at = open_page("operations")
    assert "need an ops login" in page_text(at) and launch_buttons(at) == []
    login(at, "not the password")
    open_page("operations", at)
    assert "need an ops login" in page_text(at) and launch_buttons(at) == []


def ops_page(console_env) -> AppTest:
    """The Operations page of a session logged in as ops."""
    from console import auth

    console_env.setenv(auth.PASSWORD_ENV, OPS_PASSWORD)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    login(at, OPS_PASSWORD)
    return open_page("operations", at)


def submit(at: AppTest, label: str) -> AppTest:
    next(button for button in at.button if button.label == label).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def follow(at: AppTest, launch_id: str, seconds: float = 120) -> AppTest:
    """Rerun the page, as its fragment does every 2 s, until the launched process ends."""
    from console.launcher import LAUNCHER

    deadline = time.monotonic() + seconds
    while LAUNCHER.get(launch_id).alive:
        assert time.monotonic() < deadline, LAUNCHER.get(launch_id).output_tail()
        time.sleep(1)
        at.run()
    return at.run()


def test_operations_rerun_launches_detached_and_shows_progress_until_it_ends(filled, console_env):

    url = filled["url"]
    at = ops_page(console_env)
    at.selectbox(key="ops_rerun_target").set_value("BusinessKpis")
    at.selectbox(key="ops_rerun_date").set_value(DAY2)
    at.checkbox(key="ops_rerun_downstream").uncheck()
    submit(at, "Launch rerun")
    assert "ops_launches" not in at.session_state  # a plan first, to confirm
    assert "Plan: rerun BusinessKpis for 2026-11-21 (no downstream)**: 1 task(s) over 1 date(s)" in page_text(at)
    planned = frame_with(at, "task")
    assert planned[["extract_date", "task"]].values.tolist()[0] == [DAY2, "BusinessKpis"]
    started = time.monotonic()
    submit(at, "Confirm launch")
    assert time.monotonic() - started < 10  # the page does not wait for the run
    launch_id = at.session_state["ops_launches"][0]
    assert "Launched rerun BusinessKpis for 2026-11-21 (no downstream)" in page_text(at)
    follow(at, launch_id)
    assert "rerun BusinessKpis for 2026-11-21 (no downstream): finished" in page_text(at)
    assert metrics(at)["Run status"][0] == "success"
    assert run_sql(url, "select run_date, trigger, status from meta.pipeline_runs where run_id = %s", (launch_id,)) == [
        (DAY2, "console", "success")
    ]
    # Only the invalidated task (and what is not complete yet) ran again, as the plan said.
    assert run_sql(url, "select task_family, status from meta.task_runs where run_id = %s", (launch_id,)) == [
        (family, "success") for family in planned["task"]
    ]
    # The run shows on the Runs page at once (the launch cleared the cache).
    open_page("runs", at)
    assert launch_id in frame_with(at, "tasks_failed")["run_id"].tolist()


def test_operations_backfill_runs_each_date_and_follows_them(filled, console_env):

    url = filled["url"]
    at = ops_page(console_env)
    at.selectbox(key="ops_backfill_start").set_value(DAY1)
    at.selectbox(key="ops_backfill_end").set_value(DAY2)
    before = run_sql(url, "select now()")[0][0]
    submit(at, "Launch backfill")
    submit(at, "Confirm launch")
    follow(at, at.session_state["ops_launches"][0])
    assert metrics(at)["Dates done"][0] == "2 of 2"
    assert run_sql(
        url,
        "select run_date, status from meta.pipeline_runs where trigger = 'console' and "
        "started_at >= %s order by run_date",
        (before,),
    ) == [(DAY1, "success"), (DAY2, "success")]


def test_operations_refuse_a_date_that_is_already_running(filled, console_env):
    from pipeline.core.runs import date_lock

    url = filled["url"]
    at = ops_page(console_env)
    holder = f"{DAY1}-holder-{uuid.uuid4().hex[:6]}"
    run_sql(
        url,
        "insert into meta.pipeline_runs (run_id, run_date, trigger, status, host, pid) "
        "values (%s, %s, 'cli', 'running', %s, %s)",
        (holder, DAY1, socket.gethostname(), os.getpid()),
    )
    try:
        with date_lock(url, DAY1, holder):
            at.selectbox(key="ops_run_date").set_value(DAY1)
            submit(at, "Launch run")
            assert "Every task is already complete" in page_text(at)
            submit(at, "Confirm launch")
    finally:
        run_sql(url, "delete from meta.pipeline_runs where run_id = %s", (holder,))
    text = page_text(at)
    assert f"Not launched: a run for {DAY1} is already in progress ({holder}, trigger cli)" in text
    assert "ops_launches" not in at.session_state  # nothing was launched


def test_launcher_refuses_a_date_its_own_launch_still_runs(filled):
    import subprocess
    from datetime import UTC, datetime

    from console.launcher import Action, Launch, Launcher, LaunchRefused

    launcher = Launcher()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        launcher._launches["earlier"] = Launch(
            launch_id="earlier",
            action=Action("backfill", start=DAY1, end=DAY2),
            run_id=None,
            command=["sleep"],
            log_path=Path("/dev/null"),
            started_at=datetime.now(UTC),
            process=sleeper,
        )
        with pytest.raises(LaunchRefused, match="still running"):
            launcher.launch(Action("rerun", start=DAY2, target="gold"), filled["url"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert launcher.active_for([DAY2]) is None


def test_without_the_reader_role_pages_read_as_the_pipeline_role_still_masked(warehouse, console_env, tmp_path):
    from sqlalchemy.engine import make_url

    from pipeline.operations.runner import run_pipeline

    landing = tmp_path / "landing"
    shutil.copytree(SMALL, landing)
    run_pipeline(DAY1, landing=landing, trigger="test")  # fails at the gate; silver and its quarantine stay
    database = make_url(warehouse).database
    run_sql(warehouse, f'revoke connect on database "{database}" from public, metalayer_reader')
    at = open_page("quality")
    assert "Read-only role unavailable" in " ".join(str(c.value) for c in at.sidebar.caption)
    text = frame_with(at, "line_number").to_csv()
    assert "e***@example.com" in text and "ed@example.com" not in text


# ---------------------------------------------------------------- loss and expected failures (tests/test_gate.py)


def test_overview_and_quality_show_the_quarantined_share_and_a_clean_error(
    warehouse, console_env, tmp_path, luigi_setting
):
    """Half the sales quarantined (run passes under on_breach = warn), then a file with a broken header."""
    from console import data
    from pipeline.operations.runner import run_pipeline
    from tests.test_gate import DAY, PRODUCTION_LIMIT, expected_shares_by_pandas, lossy_landing

    luigi_setting("quality", "max_quarantined_share", PRODUCTION_LIMIT)
    luigi_setting("quality", "on_breach", "warn")
    landing = lossy_landing(tmp_path)
    assert run_pipeline(DAY, landing=landing, trigger="test").success
    expected = expected_shares_by_pandas(landing)  # by table, from the landing files read with pandas
    lines = {
        table: len(pd.read_csv(landing / DAY.isoformat() / name))
        for table, name in (
            ("silver.customers", "crm_customers.csv"),
            ("silver.products", "erp_products.csv"),
            ("silver.sales", "erp_sales.csv"),
        )
    }

    at = open_page("overview")
    assert metrics(at)["Quarantined (worst table)"][0] == f"{expected['silver.sales'] * 100:.2f}%" == "50.00%"
    warnings = " ".join(str(warning.value) for warning in at.warning)
    assert "silver.sales lost 50.00% of its 10 input lines to quarantine, more than the 5.00%" in warnings
    at = open_page("quality", at)
    table = frame_with(at, "quarantined_share").set_index("table")
    for name, share in expected.items():
        assert table.loc[name, "quarantined_share"] == pytest.approx(share)
        assert table.loc[name, "lines_in"] == lines[name]
    lost = sum(expected[name] * lines[name] for name in lines)
    assert table.loc["run (all tables)", "quarantined_share"] == pytest.approx(lost / sum(lines.values()))
    assert table.loc["run (all tables)", "lines_quarantined"] == 5

    day = DAY.replace(day=DAY.day + 1)
    broken = write_landing(
        tmp_path / "broken",
        day.isoformat(),
        {
            "crm_customers.csv": (landing / DAY.isoformat() / "crm_customers.csv").read_text(),
            "erp_products.csv": (landing / DAY.isoformat() / "erp_products.csv").read_text(),
            "erp_sales.csv": "order_id,customer\nO1,C1\n",
        },
    )
    failed = run_pipeline(day, landing=broken, trigger="test")
    assert not failed.success
    path = (broken / day.isoformat() / "erp_sales.csv").resolve()
    (error,) = run_sql(warehouse, "select error from meta.pipeline_runs where run_id = %s", (failed.run_id,))[0]
    assert error.startswith(f"ErpSalesRaw failed: LandingFileError: {path}:1: ") and "\nWhat to do: " in error
    data.clear_cache()  # the data version is read at most every few seconds
    at = open_page("overview", at)
    assert metrics(at)["Status"][0] == "failed"
    shown = [str(code.value) for code in at.code]
    assert error in shown, shown  # the whole message, as recorded, with what to do
    assert not any("Traceback" in text or "Luigi Execution Summary" in text for text in shown)
    at = open_page("runs", at)
    errors = [str(element.value) for element in at.error]
    assert error.splitlines()[0] in errors  # the run's error
    # The grid opens on the date's failing task: its own error, file and line first.
    assert errors[0] == error.splitlines()[0].removeprefix("ErpSalesRaw failed: ")
    assert any(str(caption.value).startswith("What to do: ") for caption in at.caption)
    # The header mismatch side by side, on Runs and on Data quality, as the file and the contract have them.
    from pipeline.core.sources import SOURCES

    for page in ("runs", "quality"):
        at = open_page(page, at)
        headers = frame_with(at, "received")
        contract = list(SOURCES["erp_sales"].columns)
        assert headers["expected"].tolist() == contract, page
        assert headers["received"].tolist() == ["order_id", "customer"] + [""] * (len(contract) - 2), page
        assert headers["matches"].tolist() == [True] + [False] * (len(contract) - 1), page
    drift = frame_with(at, "action")  # meta.schema_drift on Data quality
    recorded = run_sql(
        warehouse,
        "select source_name, change, action, string_agg(column_name, ', ' order by "
        "column_name) from meta.schema_drift group by 1, 2, 3 order by 1, 2, 3",
    )
    assert sorted(map(tuple, drift[["source_name", "change", "action", "columns"]].values.tolist())) == sorted(recorded)


def test_quality_charts_share_one_axis_threshold_and_dimension_colours(filled):
    from console.ui import DIMENSION_COLOURS, QUARANTINED_SERIES
    from pipeline.core.config import quality

    at = open_page("quality")
    charts = elements(at, "vega_lite_chart")
    assert charts
    for chart in charts:
        spec = chart.proto.spec
        assert '"domain": [0, 1]' in spec.replace("[0.0, 1.0]", "[0, 1]") or '"domain":[0,1]' in spec
        assert f'"{QUARANTINED_SERIES}"' in spec and DIMENSION_COLOURS["validity"] in spec
    rules = [chart_data(chart) for chart in charts]
    shares = run_sql(
        filled["url"],
        "select sum(bronze_rejected + silver_quarantined)::float8 / sum(lines_in) "
        "from meta.quarantined_shares where run_id = %s",
        (filled["runs"]["day2"],),
    )[0][0]
    assert (
        any(
            frame.get("threshold") is not None and frame["threshold"].tolist() == [quality().threshold]
            for frame in rules
        )
        or str(quality().threshold) in charts[0].proto.spec
    )
    run_lines = next(
        frame for frame in rules if "dimension" in frame.columns and (frame["table"] == "run (all tables)").all()
    )
    latest = run_lines[
        (run_lines["dimension"] == QUARANTINED_SERIES) & (run_lines["run_date"] == run_lines["run_date"].max())
    ]
    assert latest["score"].tolist() == pytest.approx([shares])
    groups = frame_with(at, "quarantined_rows")
    expected = run_sql(
        filled["url"], "select source_table, source_file, rule_name, count(*) from silver.quarantine group by 1, 2, 3"
    )
    assert sorted(
        map(tuple, groups[["source_table", "source_file", "rule_name", "quarantined_rows"]].values.tolist())
    ) == sorted(expected)
    assert "ed@example.com" not in groups.to_csv()


# ---------------------------------------------------------------- ops truth: the date x task grid, root causes


def failed_and_missing_landing(tmp_path: Path) -> Path:
    """DAY1 from the small fixture (fails at the quality gate); DAY2 without its sales file."""
    landing = tmp_path / "landing"
    shutil.copytree(SMALL, landing)
    write_landing(
        landing, DAY2.isoformat(), {name: text for name, text in DAY2_FILES.items() if name != "erp_sales.csv"}
    )
    return landing


def test_grid_shows_blocked_and_missing_cells_and_the_cause_on_overview_and_runs(warehouse, console_env, tmp_path):
    from pipeline.operations.maintenance import date_graph
    from pipeline.operations.runner import run_pipeline

    landing = failed_and_missing_landing(tmp_path)
    console_env.setenv("METALAYER_LANDING_DIR", str(landing))
    failed = run_pipeline(DAY1, landing=landing, trigger="test")
    assert not failed.success
    graph = date_graph(DAY1, landing)  # family -> (task, families it needs on the date), from Luigi
    gate_error = run_sql(
        warehouse, "select error from meta.task_runs where run_id = %s and status = 'failed'", (failed.run_id,)
    )[0][0].strip()
    ran = dict(run_sql(warehouse, "select task_family, status from meta.task_runs where run_id = %s", (failed.run_id,)))

    at = open_page("overview")
    text = page_text(at)
    assert "2 extract date(s) not delivered" in text and f"{DAY2}, {DAY1}" in text
    assert f"SilverQualityGate failed: {gate_error.splitlines()[0]}" in text  # the root cause, first
    assert "landing file(s) missing" in text and "erp_sales.csv" in text
    assert "SLA met" not in text and "SLA not met" in text
    done = sum(status in ("success", "skipped") for status in ran.values())
    assert metrics(at)["Tasks done"][0] == f"{done} of {len(graph)}"
    assert [link.label for link in at.get("page_link")][:4] == [  # DAY2 never ran; DAY1 failed
        "Run this date",
        "Open in the date x task grid",
        "Rerun this date",
        "Open in the date x task grid",
    ]

    at = open_page("runs", at)
    cells = frame_with(at, "state").set_index("extract_date")
    assert list(cells.index) == [DAY2, DAY1]  # newest first
    for family, (_task, needs) in graph.items():
        if family in ran:
            expected = f"{'✓' if ran[family] == 'success' else '✗'} {ran[family]}"
        elif "SilverQualityGate" in needs:
            expected = "⊘ blocked"
        assert cells.loc[DAY1, family] == expected, family
    assert cells.loc[DAY1, "state"] == f"{done} of {len(graph)} done"
    assert cells.loc[DAY2, "ErpSalesRaw"] == "∅ missing" and cells.loc[DAY2, "CrmCustomersRaw"] == "· not run"
    for family, (_task, needs) in graph.items():  # everything that needs the sales file: blocked
        if "ErpSalesRaw" in needs:
            assert cells.loc[DAY2, family] == "⊘ blocked", family
    # The cell of the failing task opens its run and error; the query string holds the choice.
    assert at.selectbox(key="runs_cell_date").value == DAY2
    at.selectbox(key="runs_cell_date").set_value(DAY1).run()
    at.selectbox(key="runs_cell_task").set_value("SilverQualityGate").run()
    assert str(at.error[0].value) == gate_error.splitlines()[0]
    assert at.query_params["date"] in (DAY1.isoformat(), [DAY1.isoformat()])
    assert at.query_params["task"] in ("SilverQualityGate", ["SilverQualityGate"])
    assert at.selectbox(key="runs_pick").value == failed.run_id
    at.selectbox(key="runs_cell_task").set_value("FactSales").run()
    assert "Never ran: it needs" in page_text(at)


def test_operations_refuse_a_date_without_its_landing_files(filled, console_env):
    from console import data

    day3 = date(2026, 11, 22)
    folder = write_landing(filled["landing"], day3.isoformat(), {"crm_customers.csv": DAY2_FILES["crm_customers.csv"]})
    try:
        data.clear_cache()
        at = ops_page(console_env)
        picker = at.selectbox(key="ops_run_date")
        assert picker.options[0] == f"{day3} · missing · files missing: erp_products.csv, erp_sales.csv"
        assert f"{DAY2} · delivered · files present" in picker.options
        picker.set_value(day3)
        submit(at, "Launch run")
    finally:
        shutil.rmtree(folder / day3.isoformat())
    text = page_text(at)
    assert (
        f"Not launched: landing files missing in {filled['landing'].resolve()}: {day3}/erp_products.csv, "
        f"{day3}/erp_sales.csv"
    ) in text
    assert "Confirm launch" not in [button.label for button in at.button] and "ops_launches" not in at.session_state


def test_a_run_that_pulls_in_an_earlier_date_is_planned_and_recorded_as_its_own_run(warehouse, console_env, tmp_path):
    from console.launcher import Action, plan
    from pipeline.core.landing import extract_dates
    from pipeline.operations.maintenance import date_graph
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, DAY1, days=2, customers=300, orders=900)  # two dates that pass the gate, neither built
    day1, day2 = extract_dates(landing)
    console_env.setenv("METALAYER_LANDING_DIR", str(landing))
    console_env.setenv("DATABASE_URL", warehouse)
    planned = plan(Action("run", start=day2), landing)
    families = sorted(date_graph(day2, landing))
    assert planned.dates == [day1, day2] and planned.pulled_in == [day1]
    for day in (day1, day2):  # every task of both dates, as Luigi's graph has them
        assert sorted(task.task_family for task in planned.tasks if task.run_date == day) == families
    assert planned.launch_action == Action("backfill", start=day1, end=day2, on_missing="skip")

    at = ops_page(console_env)
    at.selectbox(key="ops_run_date").set_value(day2)
    submit(at, "Launch run")
    assert f"Earlier dates are pulled in: {day1}" in page_text(at)
    assert len(frame_with(at, "task")) == 2 * len(families)
    submit(at, "Confirm launch")
    follow(at, at.session_state["ops_launches"][0], seconds=240)
    assert run_sql(warehouse, "select run_date, trigger, status from meta.pipeline_runs order by started_at") == [
        (day1, "console", "success"),
        (day2, "console", "success"),
    ]  # one run per date, the pulled-in one first


def test_a_running_launch_can_be_cancelled(warehouse, console_env, tmp_path):
    from console import data
    from console.launcher import LAUNCHER

    landing = build_console_landing(tmp_path)
    console_env.setenv("METALAYER_LANDING_DIR", str(landing))
    console_env.setenv("DATABASE_URL", warehouse)
    at = ops_page(console_env)
    at.selectbox(key="ops_run_date").set_value(DAY1)
    submit(at, "Launch run")
    submit(at, "Confirm launch")
    launch_id = at.session_state["ops_launches"][0]
    deadline = time.monotonic() + 60
    while not run_sql(warehouse, "select 1 from meta.task_runs where run_id = %s", (launch_id,)):
        assert time.monotonic() < deadline and LAUNCHER.get(launch_id).alive, LAUNCHER.get(launch_id).output_tail()
        time.sleep(0.2)
    submit(at, "Cancel this launch")
    assert not LAUNCHER.get(launch_id).alive
    assert f"recorded as cancelled: `{launch_id}`" in page_text(at)
    assert run_sql(warehouse, "select status from meta.pipeline_runs where run_id = %s", (launch_id,)) == [
        ("cancelled",)
    ]
    assert run_sql(
        warehouse, "select count(*) from meta.task_runs where run_id = %s and status = 'running'", (launch_id,)
    ) == [(0,)]
    data.clear_cache()
    assert "cancelled" in page_text(open_page("overview", at))


def test_business_marks_the_partial_month_explains_kpis_and_keeps_filters_in_the_url(filled):
    at = open_page("business")
    at.button(key="business_kpi_check").click().run()
    text = page_text(at)
    # By hand (module docstring): 6 fact rows up to 2026-11-21, 6 orders, 3 customers, revenue 425.00, AOV 70.83.
    assert (
        "recomputed from the 6 fact rows up to that date: revenue 425.00 (sum of amount = quantity x unit "
        "price), orders 6 (distinct order_id), customers 3 (distinct customer_id), average order value 70.83"
    ) in text
    assert "from gold.fact_sales" in text  # the SQL itself
    monthly = next(
        chart_data(chart) for chart in elements(at, "vega_lite_chart") if "month_start" in chart_data(chart).columns
    )
    assert set(monthly["month"]) == {"2026-11 (partial, to 21)"}
    assert "The last month is partial" in text
    at.multiselect(key="business_regions").set_value(["Mountain"]).run()
    assert at.query_params["region"] in (["Mountain"], "Mountain")
    monthly = next(
        chart_data(chart) for chart in elements(at, "vega_lite_chart") if "month_start" in chart_data(chart).columns
    )
    assert monthly[["region", "revenue"]].values.tolist() == [["Mountain", 110.0]]


def test_quarantine_groups_count_rows_and_show_each_groups_first_five_lines(filled):
    """sql/console/quarantine_groups.sql against pandas on silver.quarantine itself."""
    from console import data
    from pipeline.core import db

    # The fixture's groups hold at most five lines: add one of eight, out of order and with a line-less row.
    lines = [41, 7, 300, 12, 9, 8, 1000, 2, None]
    with db.transaction(filled["url"]) as conn, conn.cursor() as cur:
        cur.execute(
            """insert into silver.quarantine (run_id, stage, source_table, source_file, line_number,
                           rule_name, reason, record)
                       select 'test-groups', 'silver', 'silver.sales', 'extra.csv', line, 'test_rule', 'test', '{}'
                       from unnest(%s::bigint[]) as line""",
            (lines,),
        )
    try:
        check_quarantine_groups(filled, data)
    finally:
        with db.transaction(filled["url"]) as conn, conn.cursor() as cur:
            cur.execute("delete from silver.quarantine where run_id = 'test-groups'")
        data.clear_cache()


def check_quarantine_groups(filled, data) -> None:
    everything = pd.DataFrame(
        run_sql(filled["url"], "select source_table, source_file, rule_name, line_number from silver.quarantine"),
        columns=["source_table", "source_file", "rule_name", "line_number"],
    )
    expected = {
        key: (len(group), ", ".join(str(int(n)) for n in sorted(group["line_number"].dropna())[:5]))
        for key, group in everything.groupby(["source_table", "source_file", "rule_name"], dropna=False)
    }
    groups = data.fetch("quarantine_groups", tables=[], rules=[], runs=[])
    shown = {
        (row.source_table, row.source_file, row.rule_name): (row.quarantined_rows, row.sample_lines or "")
        for row in groups.itertuples()
    }
    assert shown == expected and len(shown) >= 4
    assert shown[("silver.sales", "extra.csv", "test_rule")] == (9, "2, 7, 8, 9, 12")  # the first five, in order
    assert groups["quarantined_rows"].is_monotonic_decreasing


def test_prefetch_names_every_element_module_of_the_installed_streamlit_once_per_session(filled):
    from console import prefetch

    names = prefetch.module_names()
    # One module per element: a Streamlit that renames its chunks would turn the prefetch into a silent no-op.
    assert sorted(name.split(".")[0] for name in names) == sorted(prefetch.ELEMENTS)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()  # a session's first page
    scripts = [element.proto.body for element in at.get("html") if "static/js/index." in element.proto.body]
    assert len(scripts) == 1 and all(f'"{name}"' in scripts[0] for name in names)
    open_page("runs", at)  # the same session's next page: not again
    assert at.session_state[prefetch.SESSION_KEY] is True
    assert not [element for element in at.get("html") if "static/js/index." in element.proto.body]
