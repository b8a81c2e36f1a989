"""`luigi --module pipeline MasterTask` as a user runs it: exit codes and run records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_landing
from tests.test_bronze import CUSTOMERS_HEADER, PRODUCTS, SALES_HEADER

CUSTOMER_C1 = "C1,Ann,Lee,ann@example.com,4155550123,1 Main St,Boston,MA,New England,2024-01-01,2024-01-01T00:00:00Z\n"
LUIGI = str(Path(sys.executable).with_name("luigi"))


def luigi_cli(day: str, landing: Path, cwd: Path) -> subprocess.CompletedProcess:
    # Started outside the repository: the package must bring its own luigi.cfg.
    return subprocess.run([LUIGI, "--module", "pipeline", "MasterTask", "--date", day, "--landing-dir", str(landing),
                           "--local-scheduler"], cwd=cwd, capture_output=True, text=True, env=os.environ.copy(),
                          timeout=120, check=False)


def test_success_exits_zero_and_records_the_run(warehouse, query, tmp_path):
    landing = write_landing(tmp_path / "landing", "2026-11-20", {
        "crm_customers.csv": CUSTOMERS_HEADER + CUSTOMER_C1, "erp_products.csv": PRODUCTS,
        "erp_sales.csv": SALES_HEADER + "O1,C1,P1,2026-01-02,2,2.50\n"})
    done = luigi_cli("2026-11-20", landing, tmp_path)
    assert done.returncode == 0, done.stderr
    assert query("select trigger, status from meta.pipeline_runs") == [("cli", "success")]
    # Three bronze loads, three silver merges, the quality gate, three gold dimensions, the fact and
    # seven aggregates and marts.
    assert query("select count(*) from meta.table_updates") == [(18,)]
    assert query("select score from meta.quality_scores where table_name = '*'") == [(1,)]


def test_failed_task_exits_non_zero(warehouse, query, tmp_path):
    landing = write_landing(tmp_path / "landing", "2026-11-20", {
        "crm_customers.csv": CUSTOMERS_HEADER, "erp_products.csv": PRODUCTS,
        "erp_sales.csv": "order_id,customer\nO1,C1\n"})
    done = luigi_cli("2026-11-20", landing, tmp_path)
    assert done.returncode == 30  # luigi.cfg [retcode] task_failed
    (status, error), = query("select status, error from meta.pipeline_runs")
    assert status == "failed" and "ErpSalesRaw failed" in error and "erp_sales.csv:1:" in error


def test_missing_extract_is_missing_input_not_a_traceback(warehouse, query, tmp_path):
    (tmp_path / "landing").mkdir()
    done = luigi_cli("2026-11-21", tmp_path / "landing", tmp_path)
    assert done.returncode == 20  # luigi.cfg [retcode] missing_data
    assert "Traceback" not in done.stderr + done.stdout
    assert "LandingFile" in done.stderr + done.stdout
