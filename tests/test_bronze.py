"""Bronze on a real PostgreSQL: counts against the generator's manifest and an independent parser."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import luigi
import pytest

from pipeline.core import ingest
from pipeline.core.sources import SOURCES
from pipeline.operations.runner import run_pipeline
from pipeline.tasks_bronze import ErpSalesRaw
from tests.conftest import write_landing

DAY = date(2026, 11, 20)
CUSTOMERS_HEADER = "customer_id,first_name,last_name,email,phone,address,city,state,region,signup_date,updated_at\n"
PRODUCTS = "product_id,product_name,category,unit_cost,list_price,updated_at\nP1,Widget,Tools,1.00,2.50,2026-01-01\n"
SALES_HEADER = "order_id,customer_id,product_id,order_date,quantity,unit_price\n"


def reference_parse(path: Path, n_fields: int, max_lines: int = 100) -> tuple[dict[int, list[str]], dict[int, str]]:
    """The documented parsing rule, written independently of pipeline.core.ingest: line number -> fields / rule."""
    lines = path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    good: dict[int, list[str]] = {}
    bad: dict[int, str] = {}
    i = 1  # index 0 is the header
    while i < len(lines):
        raw = lines[i].removesuffix(b"\r")
        number = i + 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad[number] = "invalid_utf8"
            i += 1
            continue
        if "\x00" in text:
            bad[number] = "nul_byte"
            i += 1
            continue
        span = 1
        while text.count('"') % 2 and span < max_lines and i + span < len(lines):
            text += "\n" + lines[i + span].removesuffix(b"\r").decode("utf-8", "replace")
            span += 1
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error:
            rows = None
        if text.count('"') % 2 == 0 and rows is not None and len(rows) == 1 and len(rows[0]) == n_fields:
            good[number] = rows[0]
            i += span
        else:
            if span > 1 or text.count('"') % 2:
                bad[number] = "unbalanced_quote"
            elif rows is None:
                bad[number] = "bad_quoting"
            elif not raw.strip():
                bad[number] = "empty_line"
            else:
                bad[number] = "wrong_field_count"
            i += 1
    return good, bad


def bronze_rows(query, source_name: str, extract_date: date) -> dict[int, list[str | None]]:
    source = SOURCES[source_name]
    columns = ", ".join(source.columns)
    rows = query(
        f"select _line_number, {columns} from bronze.{source.bronze_table} "  # noqa: S608 - contract names
        "where _extract_date = %s",
        (extract_date,),
    )
    return {row[0]: list(row[1:]) for row in rows}


def test_seed_scale_counts_match_manifest_and_independent_parse(warehouse, query, seed_landing):
    result = run_pipeline(DAY, landing=seed_landing, trigger="test", upto="bronze")
    assert result.success, result.luigi_summary
    manifest = json.loads((seed_landing / DAY.isoformat() / "manifest.json").read_text())
    for source in SOURCES.values():
        name = f"{source.file_stem}.csv"
        expected = manifest["files"][name]
        ((loaded, rejected),) = query(
            "select rows_loaded, rows_rejected from meta.ingested_files where source_name = %s and extract_date = %s",
            (source.name, DAY),
        )
        # Every data record ends in bronze or in quarantine, exactly.
        assert loaded + rejected == expected["records"]
        assert rejected == sum(expected["broken_lines"].values())
        assert loaded == expected["loadable_records"]
        by_rule = dict(
            query(
                "select rule_name, count(*) from silver.quarantine where source_table = %s and extract_date = %s "
                "group by rule_name",
                (f"bronze.{source.bronze_table}", DAY),
            )
        )
        assert by_rule == {rule: n for rule, n in expected["broken_lines"].items() if n}

        # The whole table equals an independent parse of the file, line numbers included.
        path = seed_landing / DAY.isoformat() / name
        good, bad = reference_parse(path, len(source.columns))
        stored = bronze_rows(query, source.name, DAY)
        assert stored == {n: [v if v != "" else None for v in fields] for n, fields in good.items()}
        quarantined = dict(
            query(
                "select line_number, rule_name from silver.quarantine where source_table = %s and extract_date = %s",
                (f"bronze.{source.bronze_table}", DAY),
            )
        )
        assert quarantined == bad


def test_rejected_lines_carry_file_line_reason_and_raw_text(warehouse, query, tmp_path):
    sales = SALES_HEADER + 'O1,C1,P1,2026-01-02,2,2.50\nO2,C1,P1,2026-01-02,2\nO3,"C1,P1,2026-01-02,1,1.00\n'
    landing = write_landing(
        tmp_path,
        DAY.isoformat(),
        {"crm_customers.csv": CUSTOMERS_HEADER, "erp_products.csv": PRODUCTS, "erp_sales.csv": sales},
    )
    assert run_pipeline(DAY, landing=landing, trigger="test", upto="bronze").success
    rows = query(
        "select source_file, line_number, rule_name, reason, business_key, record->>'raw', stage "
        "from silver.quarantine order by line_number"
    )
    path = str(landing / DAY.isoformat() / "erp_sales.csv")
    assert rows == [
        (path, 3, "wrong_field_count", "expected 6 fields, found 5", "O2", "O2,C1,P1,2026-01-02,2", "bronze"),
        (
            path,
            4,
            "unbalanced_quote",
            "quote opened at column 4 does not close into a valid record within 100 lines",
            "O3",
            'O3,"C1,P1,2026-01-02,1,1.00',
            "bronze",
        ),
    ]
    assert query("select order_id, _line_number, unit_price from bronze.erp_sales_raw") == [("O1", 2, "2.50")]


@pytest.mark.parametrize(
    "header, sources, named",
    [
        ("order_id,customer_id,product_id,order_date,quantity\n", "", "missing required column(s) unit_price"),
        (
            "order_id,customer_id,product_id,order_date,quantity,unit_price,discount\n",
            '[sources.erp_sales]\nextra_columns = "fail"\n',
            "unknown column(s) 'discount'",
        ),
        ("order_id,order_id,product_id,order_date,quantity,unit_price\n", "", "missing required column(s) customer_id"),
    ],
)
def test_header_mismatch_fails_naming_file_and_columns_and_loads_nothing(
    warehouse, query, tmp_path, monkeypatch, header, sources, named
):
    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {
            "crm_customers.csv": CUSTOMERS_HEADER,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": header + "O1,C1,P1,2026-01-02,2,2.50,x\n",
        },
    )
    (tmp_path / "sources.toml").write_text(sources)
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(tmp_path / "sources.toml"))
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    assert not result.success
    failed = [t for t in result.tasks if t["status"] == "failed"]
    assert [t["task_family"] for t in failed] == ["ErpSalesRaw"]
    error = failed[0]["error"]
    assert str(landing / DAY.isoformat() / "erp_sales.csv") + ":1:" in error
    assert named in error
    assert query("select count(*) from bronze.erp_sales_raw_rows") == [(0,)]
    assert query("select count(*) from meta.ingested_files where source_name = 'erp_sales'") == [(0,)]
    assert query("select count(*) from silver.quarantine") == [(0,)]
    assert query("select count(*) from meta.table_updates where target_table = 'bronze.erp_sales_raw'") == [(0,)]
    assert query("select status from meta.pipeline_runs where run_id = %s", (result.run_id,)) == [("failed",)]
    # The drift that refused the file is kept although the load rolled back.
    assert ("failed",) in query("select action from meta.schema_drift where source_name = 'erp_sales'")


def test_extra_missing_and_renamed_columns_load_and_are_recorded_as_drift(warehouse, query, tmp_path, monkeypatch):
    """Default policy: an added column is kept in _extra, an absent optional column loads empty, a renamed
    column is mapped; each difference is a meta.schema_drift row, and no line is lost."""
    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {
            # phone and address absent (optional), cust_ref renamed, loyalty_tier and notes added
            "crm_customers.csv": "Cust_Ref,first_name,last_name,email,city,state,region,signup_date,updated_at,"
            "loyalty_tier,notes\n"
            "C1,Ann,Lee,ann@example.com,Boston,MA,New England,2026-01-01,2026-01-01 00:00:00,gold,\n"
            "C2,Bo,Ng,bo@example.com,Salem,OR,Pacific,2026-01-02,2026-01-02 00:00:00,,vip\n",
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": SALES_HEADER,
        },
    )
    (tmp_path / "sources.toml").write_text('[sources.crm_customers.rename]\n"cust_ref" = "customer_id"\n')
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(tmp_path / "sources.toml"))
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    assert result.success, result.error
    assert query(
        "select customer_id, phone, address, city, _extra from bronze.crm_customers_raw order by _line_number"
    ) == [("C1", None, None, "Boston", {"loyalty_tier": "gold"}), ("C2", None, None, "Salem", {"notes": "vip"})]
    assert sorted(
        query("select column_name, change, action from meta.schema_drift where source_name = 'crm_customers'")
    ) == [
        ("address", "missing", "empty"),
        ("loyalty_tier", "added", "kept"),
        ("notes", "added", "kept"),
        ("phone", "missing", "empty"),
    ]
    assert query("select rows_loaded, rows_rejected from meta.ingested_files where source_name = 'crm_customers'") == [
        (2, 0)
    ]


def test_ignored_extra_columns_are_not_stored(warehouse, query, tmp_path, monkeypatch):
    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {
            "crm_customers.csv": CUSTOMERS_HEADER,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": "discount,order_id,customer_id,product_id,order_date,quantity,unit_price\n"
            "5%,O1,C1,P1,2026-01-02,2,2.50\n",
        },
    )
    (tmp_path / "sources.toml").write_text('[defaults]\nextra_columns = "ignore"\n')
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(tmp_path / "sources.toml"))
    assert run_pipeline(DAY, landing=landing, trigger="test", upto="bronze").success
    assert query("select order_id, unit_price, _extra from bronze.erp_sales_raw") == [("O1", "2.50", None)]
    assert query("select column_name, action from meta.schema_drift") == [("discount", "ignored")]


def test_rerunning_a_date_loads_nothing_twice(warehouse, query, seed_landing):
    assert run_pipeline(DAY, landing=seed_landing, trigger="test", upto="bronze").success
    counts = query("select source_name, rows_loaded from meta.ingested_files order by 1")
    bronze_total = query("select count(*) from bronze.erp_sales_raw_rows")
    second = run_pipeline(DAY, landing=seed_landing, trigger="test", upto="bronze")
    assert second.success and second.tasks == []  # markers say done: nothing runs
    # Even with the markers gone (a forced rerun), the same files are recognised by sha256.
    query("delete from meta.table_updates")
    third = run_pipeline(DAY, landing=seed_landing, trigger="test", upto="bronze")
    assert third.success
    assert {t["status"] for t in third.tasks} == {"skipped"}
    assert query("select source_name, rows_loaded from meta.ingested_files order by 1") == counts
    assert query("select count(*) from bronze.erp_sales_raw_rows") == bronze_total
    assert query("select count(*) from meta.table_updates") == [(3,)]


class FailingAfterSql(ErpSalesRaw):
    """ErpSalesRaw that breaks after its COPY has run, before commit."""

    def execute(self, conn):
        stats = super().execute(conn)
        with conn.cursor() as cur:
            cur.execute("select count(*) from bronze.erp_sales_raw_rows")
            assert cur.fetchone()[0] > 0  # the data really was written inside the transaction
        raise RuntimeError(f"injected failure after {stats.rows_out} rows")


def test_task_failing_after_its_sql_leaves_neither_data_nor_marker(warehouse, query, seed_landing):
    task = FailingAfterSql(date=DAY, landing_dir=str(seed_landing), run_id="failing-run")
    ok = luigi.build([task], local_scheduler=True, log_level="ERROR")
    assert ok is False
    assert query("select count(*) from bronze.erp_sales_raw_rows") == [(0,)]
    assert query("select count(*) from meta.ingested_files") == [(0,)]
    assert query("select count(*) from silver.quarantine") == [(0,)]
    assert query("select count(*) from meta.table_updates") == [(0,)]
    ((status, error),) = query("select status, error from meta.task_runs where run_id = 'failing-run'")
    assert status == "failed" and "injected failure after" in error
    assert query("select status from meta.pipeline_runs where run_id = 'failing-run'") == [("failed",)]


EDGE_CASES = {
    # name: (sales file bytes, expected loaded order ids, expected rejected {line: rule})
    "bom_and_crlf": (
        b"\xef\xbb\xbf"
        + SALES_HEADER.replace("\n", "\r\n").encode()
        + b"O1,C1,P1,2026-01-02,2,2.50\r\nO2,C1,P1,2026-01-02,1,1.00\r\n",
        ["O1", "O2"],
        {},
    ),
    "no_final_newline": (
        SALES_HEADER.encode() + b"O1,C1,P1,2026-01-02,2,2.50\nO2,C1,P1,2026-01-02,1,1.00",
        ["O1", "O2"],
        {},
    ),
    "header_only": (SALES_HEADER.encode(), [], {}),
    "latin1_and_nul": (
        SALES_HEADER.encode() + b"O1,C1,P1,2026-01-02,2,2.50\nO2,Jos\xe9,P1,2026-01-02,1,1.00\n"
        b"O3,C1\x00,P1,2026-01-02,1,1.00\nO4,C1,P1,2026-01-02,1,1.00\n",
        ["O1", "O4"],
        {3: "invalid_utf8", 4: "nul_byte"},
    ),
    "blank_line_inside": (
        SALES_HEADER.encode() + b"O1,C1,P1,2026-01-02,2,2.50\n\nO2,C1,P1,2026-01-02,1,1.00\n",
        ["O1", "O2"],
        {3: "empty_line"},
    ),
    "quoted_fields_and_literal_quote": (
        SALES_HEADER.encode() + b'"O1","C1","P1","2026-01-02","2","2.50"\nO2,C"1,P1,2026-01-02,1,1.00\n'
        b'"O3",C1,P1,2026-01-02,1,"1.00"x\n',
        ["O1"],
        {3: "unbalanced_quote", 4: "bad_quoting"},
    ),
    "reordered_columns": (
        b"unit_price,quantity,order_date,product_id,customer_id,order_id\n2.50,2,2026-01-02,P1,C1,O1\n",
        ["O1"],
        {},
    ),
    "sql_injection_text": (
        SALES_HEADER.encode() + b"O1'); drop table bronze.erp_sales_raw_rows; --,C1,P1,x,1,1\n",
        ["O1'); drop table bronze.erp_sales_raw_rows; --"],
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_inputs_load_cleanly_or_quarantine_with_reason(warehouse, query, tmp_path, case):
    content, loaded, rejected = EDGE_CASES[case]
    landing = write_landing(
        tmp_path,
        DAY.isoformat(),
        {"crm_customers.csv": CUSTOMERS_HEADER, "erp_products.csv": PRODUCTS, "erp_sales.csv": content},
    )
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    assert result.success, result.luigi_summary
    assert sorted(r[0] for r in query("select order_id from bronze.erp_sales_raw")) == sorted(loaded)
    assert dict(query("select line_number, rule_name from silver.quarantine")) == rejected


def test_empty_file_is_an_error_naming_the_file(warehouse, query, tmp_path):
    landing = write_landing(
        tmp_path,
        DAY.isoformat(),
        {"crm_customers.csv": CUSTOMERS_HEADER, "erp_products.csv": PRODUCTS, "erp_sales.csv": b""},
    )
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    assert not result.success
    error = next(t["error"] for t in result.tasks if t["status"] == "failed")
    assert f"{landing / DAY.isoformat() / 'erp_sales.csv'}:1: the file is empty" in error


def test_multiline_record_keeps_embedded_newline_and_first_line_number(warehouse, query, tmp_path):
    customers = (
        CUSTOMERS_HEADER + 'C1,Ann,Lee,a@x.com,555,"12 Oak Ave\nBuilding B",Boston,MA,New England,'
        "2024-01-01,2024-01-01T00:00:00Z\nC2,Bo,Li,b@x.com,556,1 Elm St,Boston,MA,New England,2024-01-01,"
        "2024-01-01T00:00:00Z\n"
    )
    landing = write_landing(
        tmp_path,
        DAY.isoformat(),
        {"crm_customers.csv": customers, "erp_products.csv": PRODUCTS, "erp_sales.csv": SALES_HEADER},
    )
    assert run_pipeline(DAY, landing=landing, trigger="test", upto="bronze").success
    assert query("select customer_id, address, _line_number from bronze.crm_customers_raw order by 1") == [
        ("C1", "12 Oak Ave\nBuilding B", 2),
        ("C2", "1 Elm St", 4),
    ]
    assert query("select physical_lines, records from meta.ingested_files where source_name = 'crm_customers'") == [
        (3, 2)
    ]


def test_jsonl_customers_load_with_broken_lines_quarantined(warehouse, query, tmp_path):
    good = {
        "customer_id": "C1",
        "first_name": "Zoë",
        "last_name": "Nguyễn",
        "email": "z@x.com",
        "phone": "555",
        "address": "1 Main St",
        "city": "Boston",
        "state": "MA",
        "region": "New England",
        "signup_date": "2024-01-01",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    lines = [
        json.dumps(good, ensure_ascii=False),
        '{"customer_id": "C2", "first_name": ',
        "[1, 2]",
        json.dumps({**good, "customer_id": "C3", "loyalty": "gold"}),
        json.dumps({"customer_id": "C4"}),
    ]
    landing = write_landing(
        tmp_path,
        DAY.isoformat(),
        {"crm_customers.jsonl": "\n".join(lines) + "\n", "erp_products.csv": PRODUCTS, "erp_sales.csv": SALES_HEADER},
    )
    assert run_pipeline(DAY, landing=landing, trigger="test", upto="bronze").success
    # An unknown key is kept in _extra (sources.toml extra_columns = "keep", the default) and recorded as drift.
    assert query(
        "select customer_id, first_name, last_name, email, _line_number, _extra from bronze.crm_customers_raw "
        "order by 1"
    ) == [
        ("C1", "Zoë", "Nguyễn", "z@x.com", 1, None),
        ("C3", "Zoë", "Nguyễn", "z@x.com", 4, {"loyalty": "gold"}),
        ("C4", None, None, None, 5, None),
    ]
    assert dict(query("select line_number, rule_name from silver.quarantine")) == {2: "invalid_json", 3: "invalid_json"}
    assert query("select column_name, change, action, detail from meta.schema_drift") == [
        ("loyalty", "added", "kept", "stored in bronze _extra (1 line(s))")
    ]


def test_jsonl_unknown_keys_reject_the_line_when_extra_columns_fail(warehouse, query, tmp_path, monkeypatch):
    good = {"Customer_ID": "C1", "mail": "z@x.com", "updated_at": "2024-01-01T00:00:00"}
    lines = [json.dumps(good), json.dumps({**good, "customer_id": "C3", "loyalty": "gold"})]
    landing = write_landing(
        tmp_path / "landing",
        DAY.isoformat(),
        {"crm_customers.jsonl": "\n".join(lines) + "\n", "erp_products.csv": PRODUCTS, "erp_sales.csv": SALES_HEADER},
    )
    (tmp_path / "sources.toml").write_text(
        '[sources.crm_customers]\nextra_columns = "fail"\n[sources.crm_customers.rename]\n"mail" = "email"\n'
    )
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(tmp_path / "sources.toml"))
    assert run_pipeline(DAY, landing=landing, trigger="test", upto="bronze").success
    assert query("select customer_id, email from bronze.crm_customers_raw") == [("C1", "z@x.com")]
    assert query("select line_number, rule_name, reason from silver.quarantine") == [
        (2, "invalid_json", "keys 'Customer_ID' and 'customer_id' both give field customer_id")
    ]


def test_profile_matches_pandas(warehouse, query, seed_landing):
    import pandas as pd

    assert run_pipeline(DAY, landing=seed_landing, trigger="test", upto="bronze").success
    path = seed_landing / DAY.isoformat() / "erp_sales.csv"
    good, _bad = reference_parse(path, len(SOURCES["erp_sales"].columns))
    frame = pd.DataFrame(
        [[v if v != "" else None for v in row] for row in good.values()], columns=SOURCES["erp_sales"].columns
    )
    profile = query(
        "select column_name, row_count, null_count, distinct_count from meta.column_profiles "
        "inner join meta.ingested_files using (load_id) where source_name = 'erp_sales' order by ordinal"
    )
    expected = [(c, len(frame), int(frame[c].isna().sum()), int(frame[c].nunique())) for c in frame.columns]
    assert profile == expected


def test_chunk_boundaries_do_not_change_the_result(tmp_path):
    """Tiny COPY buffers force every line across chunk edges, multi-line records included."""
    path = tmp_path / "s.csv"
    path.write_text(
        CUSTOMERS_HEADER
        + "".join(
            f'C{i},A,B,a{i}@x.com,1,"{i} Oak\nApt {i}",C,MA,New England,2024-01-01,2024-01-01\n'
            if i % 3 == 0
            else f"C{i},A,B,a{i}@x.com,1,{i} Oak,C,MA,New England,2024-01-01,2024-01-01\n"
            for i in range(50)
        )
    )
    outputs = []
    for buffer_bytes in (7, 64, 1 << 20):
        rejects: list = []
        with path.open("rb") as fh:
            fh.readline()
            chunker = ingest.CsvChunker(
                fh, 11, 1, max_record_lines=100, buffer_bytes=buffer_bytes, on_reject=rejects.append
            )
            data = b"".join(chunker.chunks())
        rows = sorted(csv.reader(io.StringIO(data.decode(), newline="")), key=lambda row: int(row[-1]))
        outputs.append(rows)
        assert rejects == [] and len(rows) == 50
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("buffer_bytes", [4096, 65536])
def test_small_buffers_match_the_reference_parse_on_seed_files(seed_landing, buffer_bytes):
    """Unbalanced quotes and multi-line records near chunk edges pull lines across chunks."""
    for source in (SOURCES["crm_customers"], SOURCES["erp_sales"]):
        path = seed_landing / DAY.isoformat() / f"{source.file_stem}.csv"
        rejects: list = []
        with path.open("rb") as fh:
            fh.readline()
            chunker = ingest.CsvChunker(
                fh, len(source.columns), 1, max_record_lines=100, buffer_bytes=buffer_bytes, on_reject=rejects.append
            )
            data = b"".join(chunker.chunks())
        loaded = {int(row[-1]): row[:-2] for row in csv.reader(io.StringIO(data.decode(), newline=""))}
        good, bad = reference_parse(path, len(source.columns))
        assert loaded == good
        assert {r.line_number: r.rule_name for r in rejects} == bad
        assert chunker.stats.records == len(good) + len(bad)


def test_a_load_leaves_the_brin_index_summarized(warehouse, query, seed_landing):
    """The next stage reads a load by its id through the BRIN index: its pages are summarized in the
    load's transaction (unsummarized pages match every id, and the stage would read the whole table)."""
    tables = [f"bronze.{source.bronze_table}_rows" for source in SOURCES.values()]
    for table in tables:  # autovacuum would summarize them too, some time later
        query(f"alter table {table} set (autovacuum_enabled = false)")  # noqa: S608 - our table names
    try:
        result = run_pipeline(DAY, landing=seed_landing, trigger="test", upto="bronze")
        assert result.success, result.luigi_summary
        for table in tables:
            assert query("select count(*) > 0 from " + table)[0][0]  # noqa: S608
            assert query("select brin_summarize_new_values(%s::regclass)", (f"{table}_load_idx",)) == [(0,)]
    finally:
        for table in tables:
            query(f"alter table {table} reset (autovacuum_enabled)")  # noqa: S608
