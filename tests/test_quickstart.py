"""`make run`'s path: seed an empty landing dir, run, summarize; a second run reloads nothing."""

from __future__ import annotations

import json
import time
from datetime import date

from pipeline.quickstart import quickstart


def test_quickstart_seeds_runs_and_is_idempotent(warehouse, query, tmp_path):
    printed: list[str] = []
    landing = tmp_path / "landing"
    first = quickstart(landing, today=date(2026, 11, 22), printer=printed.append)
    assert first.success
    manifest = json.loads((landing / "2026-11-22" / "manifest.json").read_text())
    assert manifest["files"]["erp_sales.csv"]["records"] >= 10_000
    output = "\n".join(printed)
    assert "SUCCESS" in output and "bronze.erp_sales_raw" in output and "make console" in output
    assert "quality score" in output and "silver.sales" in output and "top failing rules" in output
    # The task table's columns line up whatever the longest task name (CustomerPurchaseSummary).
    table = output.split("\n  task ", 1)[1].split("\n\n")[0].splitlines()
    header = "  task " + table[0]
    rows = [line for line in table[1:] if not line.startswith("      ")]
    assert any(line.startswith("  CustomerPurchaseSummary ") for line in rows)
    assert {line.index(" success ") for line in rows} == {header.index(" status ")}
    loaded = query("select source_name, rows_loaded from meta.ingested_files order by 1")
    assert dict(loaded)["erp_sales"] == manifest["files"]["erp_sales.csv"]["loadable_records"]

    started = time.perf_counter()
    second = quickstart(landing, today=date(2026, 11, 23), printer=printed.append)
    assert second.success and second.tasks == []  # nothing re-run, nothing reloaded
    assert time.perf_counter() - started < 10
    assert query("select source_name, rows_loaded from meta.ingested_files order by 1") == loaded
    assert not (landing / "2026-11-23").exists()  # the newest existing extract was rerun, not a new one made


def test_a_missing_extract_is_named_in_the_summary(warehouse, query, tmp_path):
    from pipeline.operations.runner import format_summary, run_pipeline

    (tmp_path / "landing").mkdir()
    result = run_pipeline(date(2026, 11, 21), landing=tmp_path / "landing", trigger="test")
    assert not result.success and result.luigi_status == "MISSING_EXT"
    summary = format_summary(result)
    assert f"missing input: {tmp_path / 'landing' / '2026-11-21' / 'crm_customers.csv'}" in summary
    assert "Nothing to do" not in summary
    assert query("select status, error like 'missing input: %%' from meta.pipeline_runs") == [("failed", True)]
