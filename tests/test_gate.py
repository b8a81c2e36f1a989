"""The quality gate sees loss, and expected failures read as one clear message.

Real runs on the embedded PostgreSQL. The fixture day (2026-11-20): four clean
customers, two clean products and ten sales lines of which five have a negative
quantity (dropped by `quantity_positive`). The rules average to a run score above
the 0.95 threshold, yet half the sales are lost: the gate must fail on the loss.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_landing

DAY = date(2026, 11, 20)
CUSTOMERS = (
    "customer_id,first_name,last_name,email,phone,address,city,state,region,signup_date,updated_at\n"
    "C1,Ann,Lee,ann@example.com,4155550123,1 Main St,Boston,MA,New England,2024-01-01,2024-01-01T00:00:00Z\n"
    "C2,Bob,Smith,bob@example.com,4155550124,2 Oak Ave,Boston,MA,New England,2024-01-02,2024-01-02T00:00:00Z\n"
    "C3,Cy,Park,cy@example.com,4155550125,3 Elm St,Denver,CO,Mountain,2024-01-03,2024-01-03T00:00:00Z\n"
    "C4,Di,Prince,di@example.com,4155550126,4 Pine Rd,Denver,CO,Mountain,2024-01-04,2024-01-04T00:00:00Z\n"
)
PRODUCTS = (
    "product_id,product_name,category,unit_cost,list_price,updated_at\n"
    "P1,Widget,Tools,1.00,2.50,2024-01-01T00:00:00Z\n"
    "P2,Gizmo,Toys,3.00,10.00,2024-01-01T00:00:00Z\n"
)
SALES_HEADER = "order_id,customer_id,product_id,order_date,quantity,unit_price\n"
PRODUCTION_LIMIT = "0.05"


@pytest.fixture(autouse=True)
def production_limit(luigi_setting):
    """luigi.cfg's limit (tests/luigi.test.cfg turns it off for the rest of the suite)."""
    luigi_setting("quality", "max_quarantined_share", PRODUCTION_LIMIT)


def half_lost_sales() -> str:
    lines = [f"O{n},C{n % 4 + 1},P{n % 2 + 1},2026-11-{n + 1:02d},{-2 if n % 2 else 2},2.50\n" for n in range(1, 11)]
    return SALES_HEADER + "".join(lines)


def lossy_landing(root: Path) -> Path:
    return write_landing(
        root / "landing",
        DAY.isoformat(),
        {"crm_customers.csv": CUSTOMERS, "erp_products.csv": PRODUCTS, "erp_sales.csv": half_lost_sales()},
    )


def expected_shares_by_pandas(landing: Path) -> dict[str, float]:
    """The share another way: read each landing file with pandas and apply the contract's checks by hand."""
    folder = landing / DAY.isoformat()
    sales = pd.read_csv(folder / "erp_sales.csv")
    customers = pd.read_csv(folder / "crm_customers.csv")
    products = pd.read_csv(folder / "erp_products.csv")
    lost_sales = (sales["quantity"] <= 0).sum()
    return {
        "silver.sales": lost_sales / len(sales),
        "silver.customers": 0 / len(customers),
        "silver.products": 0 / len(products),
    }


def test_gate_fails_a_run_that_quarantines_half_its_sales(warehouse, query, tmp_path):
    from pipeline.operations.runner import format_summary, run_pipeline

    landing = lossy_landing(tmp_path)
    result = run_pipeline(DAY, landing=landing, trigger="test")
    assert not result.success
    # The averaged score alone would pass: the loss is what fails the run.
    score = float(query("select score from meta.quality_scores where table_name = '*' and dimension = 'overall'")[0][0])
    assert score >= 0.95
    gate = next(t for t in result.tasks if t["task_family"] == "SilverQualityGate")
    assert gate["status"] == "failed"
    assert gate["error"].startswith(
        "QualityGateFailed: silver.sales quarantined "
        "50.00% of its 10 input lines, more than the 5.00% of [quality] "
        "max_quarantined_share (5: 0 broken, 5 dropped by rules; most by "
        "quantity_positive 5); run quality score 99.13% over 16 rows"
    )
    assert "\nWhat to do: " in gate["error"] and "Traceback" not in gate["error"]
    # Silver is committed, gold is not built on it.
    assert query("select count(*) from silver.sales") == [(5,)]
    assert query("select count(*) from meta.table_updates where target_table like 'gold.%%'") == [(0,)]

    stored = {
        table: (lines, bronze, dropped, float(share), bool(breach))
        for table, lines, bronze, dropped, share, breach in query(
            "select table_name, lines_in, bronze_rejected, silver_quarantined, quarantined_share, "
            "is_breach from meta.quarantined_shares where run_id = %s",
            (result.run_id,),
        )
    }
    assert stored == {
        "silver.customers": (4, 0, 0, 0.0, False),
        "silver.products": (2, 0, 0, 0.0, False),
        "silver.sales": (10, 0, 5, 0.5, True),
    }
    expected = expected_shares_by_pandas(landing)
    assert {table: row[3] for table, row in stored.items()} == pytest.approx(expected)

    (error,) = query("select error from meta.pipeline_runs where run_id = %s", (result.run_id,))[0]
    assert error.startswith("SilverQualityGate failed: QualityGateFailed: silver.sales quarantined 50.00%")
    summary = format_summary(result)
    assert "FAILED:\n  SilverQualityGate failed: QualityGateFailed: silver.sales quarantined 50.00%" in summary
    assert "Luigi Execution Summary" not in summary and "Traceback" not in summary
    quality = summary.split("\n  quality score ", 1)[1]
    sales_line = next(line for line in quality.splitlines() if line.strip().startswith("silver.sales"))
    assert sales_line.split()[3:5] == ["50.00%", "10"] and sales_line.endswith("over the limit")


def test_on_breach_warn_passes_the_same_run_and_shows_the_share(warehouse, query, tmp_path, luigi_setting):
    from pipeline.operations.runner import format_summary, run_pipeline

    luigi_setting("quality", "on_breach", "warn")
    result = run_pipeline(DAY, landing=lossy_landing(tmp_path), trigger="test")
    assert result.success, result.error
    gate = next(t for t in result.tasks if t["task_family"] == "SilverQualityGate")
    assert gate["message"].startswith("WARNING: silver.sales quarantined 50.00% of its 10 input lines")
    quality = format_summary(result).split("\n  quality score ", 1)[1].split("\n\n")[0]
    rows = {
        line.split()[0]: line.split()[1:]
        for line in quality.splitlines()
        if line.strip().startswith(("run ", "silver."))
    }
    assert rows["silver.sales"][2:4] == ["50.00%", "10"] and rows["silver.sales"][4:] == ["over", "the", "limit"]
    assert rows["silver.customers"][2:] == ["0.00%", "4"]
    assert rows["run"][2:] == [f"{5 / 16 * 100:.2f}%", "16"]  # 5 of the date's 16 input lines
    assert "limit 5.00% per table" in quality
    assert query("select count(*) from gold.fact_sales") == [(5,)]


def test_share_counts_broken_lines_and_drops_not_duplicates(warehouse, query, tmp_path, luigi_setting):
    """Bronze rejects and silver drops are loss, exact copies and superseded versions are not: checked
    against the quarantine and duplicate tables read with pandas."""
    from pipeline.operations.runner import run_pipeline

    luigi_setting("quality", "on_breach", "warn")
    sales = SALES_HEADER + "".join(
        [
            "O1,C1,P1,2026-11-02,2,2.50\n",
            "O1,C1,P1,2026-11-02,2,2.50\n",  # exact copy: a duplicate, not loss
            "O2,C2,P1,2026-11-02,2,2.50,extra\n",  # wrong field count: rejected by bronze
            "O3,C3,P2,2026-11-03,-1,10.00\n",  # negative quantity: dropped by silver
            "O4,C4,P2,2026-11-04,1,-10.00\n",  # negative price: dropped by silver
            "O5,C1,P9,2026-11-05,1,2.50\n",  # unknown product: dropped by silver
            "O6,C2,P1,2026-11-06,3,2.50\n",
            "O7,C3,P1,2026-11-07,4,2.50\n",
        ]
    )
    customers = CUSTOMERS + (
        "C1,Ann,Lee,ann.lee@example.com,4155550123,1 Main St,Boston,MA,New England,2024-01-01,2024-02-01T00:00:00Z\n"
    )  # a newer version of C1: supersedes, not loss
    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {"crm_customers.csv": customers, "erp_products.csv": PRODUCTS, "erp_sales.csv": sales},
    )
    result = run_pipeline(DAY, landing=landing, trigger="test")
    assert result.success, result.error

    def frame(text: str, columns: list[str], params=None) -> pd.DataFrame:
        return pd.DataFrame(query(text, params), columns=columns)

    quarantine = frame("select source_table, stage, load_id from silver.quarantine", ["source_table", "stage", "load"])
    duplicates = frame("select source_table, kind from silver.duplicates", ["source_table", "kind"])
    files = frame("select source_name, physical_lines from meta.ingested_files", ["source_name", "physical_lines"])
    stored = frame(
        "select table_name, lines_in, quarantined_share::float8 from meta.quarantined_shares where run_id = %s",
        ["table_name", "lines_in", "share"],
        (result.run_id,),
    ).set_index("table_name")
    assert sorted(duplicates.itertuples(index=False, name=None)) == [
        ("silver.customers", "superseded"),
        ("silver.sales", "exact_duplicate"),
    ]
    lines = files.set_index("source_name")["physical_lines"]  # one line per record in these files
    lost = quarantine.assign(table=quarantine["source_table"].replace({"bronze.erp_sales_raw": "silver.sales"}))
    lost = lost.groupby("table").size()
    assert lost.to_dict() == {"silver.sales": 4}
    assert stored.loc["silver.sales", "lines_in"] == lines["erp_sales"] == 8
    assert stored.loc["silver.sales", "share"] == pytest.approx(4 / 8)
    assert stored.loc["silver.customers", "share"] == 0 and stored.loc["silver.customers", "lines_in"] == 5
    assert stored.loc["silver.products", "share"] == 0


# ---------------------------------------------------------------- expected failures read cleanly


def metalayer_run(landing: Path, *extra: str) -> subprocess.CompletedProcess:
    """`metalayer run` in a subprocess, with the tests' settings and luigi.cfg's loss limit."""
    config = landing.parent / "luigi.cfg"
    settings = Path(os.environ["LUIGI_CONFIG_PATH"]).read_text()
    assert "\nmax_quarantined_share = 1.0\n" in settings
    config.write_text(
        settings.replace("\nmax_quarantined_share = 1.0\n", f"\nmax_quarantined_share = {PRODUCTION_LIMIT}\n")
    )
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "run",
        "--date",
        DAY.isoformat(),
        "--landing",
        str(landing),
        "--trigger",
        "test",
        *extra,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # noqa: S603
        env={**os.environ, "LUIGI_CONFIG_PATH": str(config)},
    )


def test_a_header_contract_violation_is_one_message_without_a_traceback(warehouse, query, tmp_path):
    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {"crm_customers.csv": CUSTOMERS, "erp_products.csv": PRODUCTS, "erp_sales.csv": "order_id,customer\nO1,C1\n"},
    )
    path = (landing / DAY.isoformat() / "erp_sales.csv").resolve()
    done = metalayer_run(landing)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "Luigi Execution Summary" not in output, output
    assert f"{path}:1: " in output
    (error,) = query("select error from meta.pipeline_runs")[0]
    assert error.startswith(f"ErpSalesRaw failed: LandingFileError: {path}:1: "), error
    reason = error.split(f"{path}:1: ", 1)[1].splitlines()[0]
    assert reason and reason in output  # the file, line 1 and the reason, as recorded
    assert "\nWhat to do: " in error and error == error.strip()
    (task_error,) = query("select error from meta.task_runs where status = 'failed'")[0]
    assert task_error == error.removeprefix("ErpSalesRaw failed: ")  # no traceback behind it
    # One message in the output: the progress line, then the summary's FAILED section.
    assert output.count(f"{path}:1: {reason}") == 2, output
    assert f"FAILED:\n  ErpSalesRaw failed: LandingFileError: {path}:1: {reason}\n  What to do: " in done.stdout


def test_plain_luigi_prints_the_message_not_a_traceback(warehouse, query, tmp_path):
    """`luigi --module pipeline MasterTask` (no run summary): Luigi's own log line carries the message."""
    from tests.conftest import REPO_ROOT

    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {"crm_customers.csv": CUSTOMERS, "erp_products.csv": PRODUCTS, "erp_sales.csv": "order_id,customer\nO1,C1\n"},
    )
    path = (landing / DAY.isoformat() / "erp_sales.csv").resolve()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "luigi",
            "--module",
            "pipeline",
            "MasterTask",
            "--date",  # noqa: S603
            DAY.isoformat(),
            "--landing-dir",
            str(landing),
            "--local-scheduler",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ.copy(),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 30, output  # luigi.cfg [retcode] task_failed
    assert "Traceback" not in output, output
    assert f"LandingFileError: {path}:1: " in output and "What to do: " in output


def test_a_quality_gate_breach_from_the_cli_has_no_traceback(warehouse, query, tmp_path):
    done = metalayer_run(lossy_landing(tmp_path))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert "QualityGateFailed: silver.sales quarantined 50.00%" in output
    assert "What to do: see the quarantined lines" in done.stdout


def test_a_fail_severity_rule_reads_as_the_rule_and_what_to_do(warehouse, query, tmp_path, luigi_setting):
    from pipeline.operations.runner import format_summary, run_pipeline
    from tests.conftest import REPO_ROOT

    rules = (REPO_ROOT / "sql" / "quality_rules.toml").read_text()
    strict = tmp_path / "rules.toml"
    drop = 'name = "quantity_positive"\ndimension = "validity"\nseverity = "drop"'
    assert drop in rules
    strict.write_text(rules.replace(drop, drop.replace('"drop"', '"fail"')))
    luigi_setting("quality", "rules_file", str(strict))
    result = run_pipeline(DAY, landing=lossy_landing(tmp_path), trigger="test")
    assert not result.success
    assert result.error.startswith(
        "SilverSales failed: QualityRuleFailed: silver.sales for 2026-11-20: fail-severity "
        "rule(s) broken: quantity_positive (5 rows)"
    )
    assert "\nWhat to do: the rule and how many rows broke it are in meta.quality_results" in result.error
    assert query("select error from meta.pipeline_runs") == [(result.error,)]
    assert "Traceback" not in format_summary(result)


def test_an_unexpected_error_keeps_its_traceback_in_the_log_and_names_the_task(warehouse, query, tmp_path, monkeypatch):
    """An unexpected error: the summary names the task and the message; the traceback is in the log."""
    from pipeline.operations.runner import format_summary, run_pipeline
    from pipeline.tasks_silver import SilverQualityGate

    def broken(self, conn):
        raise KeyError("injected: not an expected failure")

    monkeypatch.setattr(SilverQualityGate, "execute", broken)
    result = run_pipeline(DAY, landing=lossy_landing(tmp_path), trigger="test")
    assert not result.success
    assert result.error == "SilverQualityGate failed: KeyError: 'injected: not an expected failure'"
    assert query("select error from meta.pipeline_runs") == [(result.error,)]
    (task_error,) = query("select error from meta.task_runs where status = 'failed'")[0]
    assert task_error.startswith(result.error.removeprefix("SilverQualityGate failed: ") + "\n\nTraceback")
    assert "FAILED:\n  SilverQualityGate failed: KeyError" in format_summary(result)
    log = Path(result.log_file).read_text()
    assert "Traceback" in log and "injected: not an expected failure" in log


def test_failure_text_of_expected_and_unexpected_errors():
    from pipeline.base import ExpectedFailure, failure_text, recorded_error
    from pipeline.core.ingest import LandingFileError
    from pipeline.tasks_silver import QualityGateFailed

    landing = LandingFileError(Path("/landing/2026-11-20/erp_sales.csv"), 1, "header lacks quantity")
    text = failure_text(landing)
    assert text.startswith("LandingFileError: /landing/2026-11-20/erp_sales.csv:1: header lacks quantity\nWhat to do: ")
    assert recorded_error(landing) == text
    gate = failure_text(QualityGateFailed("\nx\n\nmore"))
    assert gate.startswith("QualityGateFailed: x\nmore\nWhat to do: see the")
    assert failure_text(ExpectedFailure("bad", hint="do this")) == "ExpectedFailure: bad\nWhat to do: do this"
    try:
        raise ValueError("boom")
    except ValueError as exc:
        unexpected = exc
    assert failure_text(unexpected) == "ValueError: boom"
    assert recorded_error(unexpected).startswith("ValueError: boom\n\nTraceback (most recent call last):")


def test_the_default_limit_is_five_percent_and_documented():
    import configparser

    from pipeline.core.config import quality
    from tests.conftest import REPO_ROOT

    parser = configparser.ConfigParser()
    parser.read_file(io.StringIO((REPO_ROOT / "luigi.cfg").read_text()))
    assert parser.get("quality", "max_quarantined_share") == PRODUCTION_LIMIT
    assert quality.max_quarantined_share._default == 0.05
