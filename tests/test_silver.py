"""Silver on a real PostgreSQL: a hand-checked fixture, the generator's manifest, conservation, idempotence."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import luigi.configuration
import pytest

from pipeline.operations.runner import run_pipeline

SMALL = Path(__file__).parent / "data" / "small"
SMALL_DAY = date(2026, 11, 20)


@contextmanager
def luigi_setting(section: str, option: str, value: str):
    config = luigi.configuration.get_config()
    had = config.has_option(section, option)
    old = config.get(section, option) if had else None
    config.set(section, option, value)
    try:
        yield
    finally:
        if had:
            config.set(section, option, old)
        else:
            config.remove_option(section, option)


def small_landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(SMALL, landing)
    return landing


# ---------------------------------------------------------------- the hand-checked fixture


def test_small_fixture_rows_quarantine_and_duplicates(warehouse, query, tmp_path):
    with luigi_setting("quality", "on_breach", "warn"):
        result = run_pipeline(SMALL_DAY, landing=small_landing(tmp_path), trigger="test")
    assert result.success, result.luigi_summary
    assert query(
        "select customer_id, first_name, last_name, email, phone, is_phone_valid, region, signup_date, "
        "_line_number from silver.customers order by 1"
    ) == [
        ("C1", "Ann", "Lee", "ann.lee@example.com", "+14155550123", True, "New England", date(2024, 1, 5), 2),
        ("C2", "Bob", "Smith", "bob@example.com", None, False, "New England", date(2024, 1, 6), 3),
        ("C4", "Di", "Prince", "di.prince@example.com", "+14155550125", True, "Mountain", date(2024, 1, 8), 6),
    ]
    assert query("select product_id, unit_cost, list_price from silver.products order by 1") == [
        ("P1", Decimal("1.00"), Decimal("2.50")),
        ("P2", Decimal("5.00"), Decimal("4.00")),
        ("P3", Decimal("3.00"), Decimal("10.00")),
    ]
    assert query(
        "select order_id, customer_id, quantity, unit_price, amount, order_size, order_date "
        "from silver.sales order by 1"
    ) == [
        ("O1", "C1", 2, Decimal("2.50"), Decimal("5.00"), "small", date(2026, 11, 1)),
        ("O10", "C1", 1, Decimal("0.00"), Decimal("0.00"), "small", date(2026, 11, 5)),
        ("O2", "C2", 30, Decimal("10.00"), Decimal("300.00"), "large", date(2026, 11, 2)),
        ("O3", "C4", 10, Decimal("10.00"), Decimal("100.00"), "medium", date(2026, 11, 2)),
    ]
    # Revenue by hand: 2 x 2.50 + 30 x 10.00 + 10 x 10.00 + 1 x 0.00 = 405.00
    assert query("select sum(amount) from silver.sales") == [(Decimal("405.00"),)]
    assert query(
        "select source_table, line_number, rule_name from silver.quarantine where stage = 'silver' order by 1, 2"
    ) == [
        ("silver.customers", 4, "email_valid"),
        ("silver.customers", 8, "customer_id_not_null"),
        ("silver.customers", 9, "signup_date_valid"),
        ("silver.sales", 5, "quantity_positive"),
        ("silver.sales", 6, "customer_exists"),
        ("silver.sales", 7, "product_exists"),
        ("silver.sales", 8, "order_date_not_in_future"),
        ("silver.sales", 9, "quantity_valid"),
        ("silver.sales", 11, "customer_exists"),
        ("silver.sales", 13, "order_id_unique"),
        ("silver.sales", 14, "unit_price_not_negative"),
    ]
    ((reason, record),) = query(
        "select reason, record from silver.quarantine where line_number = 4 and source_table = 'silver.customers'"
    )
    assert reason == "email is not a valid address: 'not-an-email'"
    assert record["email"] == "not-an-email" and record["failed_rules"] == ["email_valid"]
    load = dict(query("select source_name, load_id from meta.ingested_files"))
    assert query("select source_table, line_number, kind, duplicate_of from silver.duplicates order by 1, 2") == [
        ("silver.customers", 5, "superseded", f"line {load['crm_customers']}:6"),
        ("silver.customers", 7, "exact_duplicate", f"line {load['crm_customers']}:5"),
        ("silver.sales", 10, "exact_duplicate", f"line {load['erp_sales']}:2"),
    ]


def test_small_fixture_quality_scores_by_hand(warehouse, query, tmp_path):
    with luigi_setting("quality", "on_breach", "warn"):
        result = run_pipeline(SMALL_DAY, landing=small_landing(tmp_path), trigger="test")
    assert result.success
    scores = {
        (t, d): float(s)
        for t, d, s in query(
            "select table_name, dimension, score from meta.quality_scores where run_id = %s", (result.run_id,)
        )
    }
    # customers: 7 rows checked (the exact copy is not). completeness: 3 rules x 7 + volume 1 = 22 checks,
    # 1 failure; validity: 10 rules x 7 = 70 checks, 4 failures (email, phone, signup date, region);
    # timeliness: 1 check, 0 failures. Weights 1, 1, 0.5.
    customers = (21 / 22 + 66 / 70 + 0.5 * 1) / 2.5
    # products: 3 rows. completeness 3/3, validity 18/18, consistency 2/3 (P2 costs more than its price).
    products = (1 + 1 + 2 / 3) / 3
    # sales: 12 rows. completeness 73/73, uniqueness 11/12, validity 8 x 12 = 96 checks with 4 failures,
    # consistency 3 x 12 = 36 checks with 3 failures (no order is over a year before its customer's signup),
    # timeliness 1/1 (weight 0.5).
    sales = (1 + 11 / 12 + 92 / 96 + 33 / 36 + 0.5) / 4.5
    assert scores[("silver.customers", "completeness")] == pytest.approx(21 / 22, abs=1e-6)
    assert scores[("silver.customers", "validity")] == pytest.approx(66 / 70, abs=1e-6)
    assert scores[("silver.customers", "overall")] == pytest.approx(customers, abs=1e-6)
    assert scores[("silver.products", "overall")] == pytest.approx(products, abs=1e-6)
    assert scores[("silver.sales", "overall")] == pytest.approx(sales, abs=1e-6)
    run = (customers * 7 + products * 3 + sales * 12) / 22
    assert scores[("*", "overall")] == pytest.approx(run, abs=1e-6)
    assert query(
        "select rows_checked, rows_failed from meta.quality_results where run_id = %s "
        "and table_name = 'silver.customers' and rule_name = 'phone_valid'",
        (result.run_id,),
    ) == [(7, 1)]


def test_threshold_gate_fails_or_warns_as_configured(warehouse, query, tmp_path):
    landing = small_landing(tmp_path)
    failed = run_pipeline(SMALL_DAY, landing=landing, trigger="test")  # run score 0.9465 < 0.95
    assert not failed.success
    gate = next(t for t in failed.tasks if t["task_family"] == "SilverQualityGate")
    assert gate["status"] == "failed"
    assert "run quality score 94.65%" in gate["error"] and "worst rules: silver.products." in gate["error"]
    # Silver itself is committed; the failed gate keeps the run (and later layers) from passing.
    assert query("select count(*) from silver.sales") == [(4,)]
    with luigi_setting("quality", "threshold", "0.9"):
        assert run_pipeline(SMALL_DAY, landing=landing, trigger="test").success
    query("delete from meta.table_updates where target_table = 'meta.quality_scores' or target_table like 'gold.%%'")
    with luigi_setting("quality", "on_breach", "warn"):
        warned = run_pipeline(SMALL_DAY, landing=landing, trigger="test")
    assert warned.success
    assert next(t for t in warned.tasks if t["task_family"] == "SilverQualityGate")["message"].startswith("WARNING")


def test_fail_rule_stops_the_run_and_leaves_silver_unchanged(warehouse, query, tmp_path):
    rules = (Path(__file__).parent.parent / "sql" / "quality_rules.toml").read_text()
    strict = tmp_path / "rules.toml"
    strict.write_text(
        rules.replace(
            'name = "quantity_positive"\ndimension = "validity"\nseverity = "drop"',
            'name = "quantity_positive"\ndimension = "validity"\nseverity = "fail"',
        )
    )
    landing = small_landing(tmp_path)
    with luigi_setting("quality", "rules_file", str(strict)), luigi_setting("quality", "on_breach", "warn"):
        result = run_pipeline(SMALL_DAY, landing=landing, trigger="test")
    assert not result.success
    failed = next(t for t in result.tasks if t["status"] == "failed")
    assert failed["task_family"] == "SilverSales"
    assert "quantity_positive (1 rows)" in failed["error"]
    assert query("select count(*) from silver.sales") == [(0,)]
    assert query("select count(*) from silver.quarantine where source_table = 'silver.sales'") == [(0,)]
    assert query("select count(*) from meta.table_updates where target_table = 'silver.sales'") == [(0,)]
    # The evidence stays: the failing rule's result is recorded although the data rolled back.
    assert query("select rows_failed from meta.quality_results where rule_name = 'quantity_positive'") == [(1,)]


# ---------------------------------------------------------------- generated data

CUSTOMER_RULES = {
    "missing_required": ("customer_id_not_null", "email_not_null"),
    "malformed_email": ("email_valid",),
    "unparseable_date": ("signup_date_valid",),
}
SALES_RULES = {
    "unknown_customer": ("customer_exists",),
    "unknown_product": ("product_exists",),
    "zero_quantity": ("quantity_positive",),
    "negative_quantity": ("quantity_positive",),
    "negative_price": ("unit_price_not_negative",),
    "unparseable_date": ("order_date_valid",),
    "unparseable_amount": ("quantity_valid", "unit_price_valid"),
    "missing_required": ("order_id_not_null", "customer_id_not_null", "product_id_not_null"),
}
PRODUCT_RULES = {"missing_required": ("product_id_not_null",)}


def expected_per_rule(defects: dict, mapping: dict) -> dict[str, int]:
    expected: dict[str, int] = {}
    for kind, rules in mapping.items():
        key = "+".join(rules)
        expected[key] = expected.get(key, 0) + defects[kind]
    return expected


def quarantined_per_rule(query, table: str, extract_date: date, mapping: dict) -> dict[str, int]:
    found = dict(
        query(
            "select rule_name, count(*) from silver.quarantine where stage = 'silver' "
            "and source_table = %s and extract_date = %s group by 1",
            (table, extract_date),
        )
    )
    return {"+".join(rules): sum(found.get(r, 0) for r in rules) for rules in {tuple(v) for v in mapping.values()}}


def test_generated_data_quarantine_matches_manifest_exactly(warehouse, query, seed_landing):
    for offset in range(2):
        day = date(2026, 11, 20) + timedelta(days=offset)
        result = run_pipeline(day, landing=seed_landing, trigger="test")
        assert result.success, result.luigi_summary
        manifest = json.loads((seed_landing / day.isoformat() / "manifest.json").read_text())["files"]
        for table, name, mapping in (
            ("silver.customers", "crm_customers.csv", CUSTOMER_RULES),
            ("silver.sales", "erp_sales.csv", SALES_RULES),
            ("silver.products", "erp_products.csv", PRODUCT_RULES),
        ):
            defects = manifest[name]["defects"]
            assert quarantined_per_rule(query, table, day, mapping) == expected_per_rule(defects, mapping), table
            total_quarantined = query(
                "select count(*) from silver.quarantine where stage = 'silver' "
                "and source_table = %s and extract_date = %s",
                (table, day),
            )[0][0]
            assert total_quarantined == sum(expected_per_rule(defects, mapping).values())
            duplicates = dict(
                query(
                    "select kind, count(*) from silver.duplicates where source_table = %s "
                    "and extract_date = %s group by 1",
                    (table, day),
                )
            )
            exact = defects.get("exact_duplicate", 0) + defects.get("duplicate_order_line", 0)
            assert duplicates.get("exact_duplicate", 0) == exact, table
            assert duplicates.get("superseded", 0) == defects.get("customer_update", 0), table
        customers = manifest["crm_customers.csv"]
        phone = query(
            "select rows_failed from meta.quality_results where run_id = %s and rule_name = 'phone_valid'",
            (result.run_id,),
        )
        assert phone == [(customers["defects"]["invalid_phone"],)]
        if offset == 0:
            # Every kept customer: clean rows, plus the two kinds that are flagged or cleaned, not dropped.
            assert query("select count(*) from silver.customers") == [
                (customers["clean_rows"] + customers["defects"]["messy_name"] + customers["defects"]["invalid_phone"],)
            ]
            assert query("select count(*) from silver.sales") == [(manifest["erp_sales.csv"]["clean_rows"],)]


def conservation(query, table: str, source: str) -> list[tuple]:
    """Per load: bronze lines, and where each went, computed independently of the task's own check."""
    return query(
        """select files.load_id, files.rows_loaded,
                  (select count(*) from silver.{t} where _load_id = files.load_id)
                  + (select count(*) from silver.quarantine where stage = 'silver' and load_id = files.load_id)
                  + (select count(*) from silver.duplicates where load_id = files.load_id)
           from meta.ingested_files as files where files.source_name = %s order by 1""".replace("{t}", table),
        (source,),
    )


def test_conservation_holds_over_five_days(warehouse, query, tmp_path):
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=5, customers=2000, orders=3000)
    for offset in range(5):
        result = run_pipeline(date(2026, 11, 1) + timedelta(days=offset), landing=landing, trigger="test")
        assert result.success, result.luigi_summary
    for table, source in (("customers", "crm_customers"), ("products", "erp_products"), ("sales", "erp_sales")):
        rows = conservation(query, table, source)
        assert rows and all(loaded == placed for _load, loaded, placed in rows), (table, rows)
    # Delta updates changed customers: the newest version is what silver holds.
    assert query("select count(*) from silver.customers where _extract_date > '2026-11-01'")[0][0] > 0


def silver_snapshot(query) -> dict:
    return {
        table: query(f"select * from silver.{table} order by 1")  # noqa: S608 - fixed names
        for table in ("customers", "products", "sales")
    }


def test_reprocessing_a_date_changes_nothing(warehouse, query, seed_landing):
    assert run_pipeline(date(2026, 11, 20), landing=seed_landing, trigger="test").success
    before = silver_snapshot(query)
    quarantine = query(
        "select source_table, load_id, line_number, rule_name, reason from silver.quarantine order by 1, 2, 3"
    )
    query(
        "delete from meta.table_updates where target_table like 'silver.%%' "
        "or target_table like 'gold.%%' or target_table = 'meta.quality_scores'"
    )
    assert run_pipeline(date(2026, 11, 20), landing=seed_landing, trigger="test").success
    assert silver_snapshot(query) == before
    assert (
        query("select source_table, load_id, line_number, rule_name, reason from silver.quarantine order by 1, 2, 3")
        == quarantine
    )


def test_days_in_any_order_end_in_the_same_silver(warehouse, query, seed_landing, server_url):
    from pipeline.core import db

    # Load ids differ between the two databases (they count loads in the order the scheduler ran them);
    # every other column is compared.
    without_load_id = "select to_jsonb(t) - '_load_id' from silver.{} as t order by 1"
    tables = ("customers", "products", "sales")
    assert run_pipeline(date(2026, 11, 20), landing=seed_landing, trigger="test").success
    assert run_pipeline(date(2026, 11, 21), landing=seed_landing, trigger="test").success
    in_order = {table: query(without_load_id.format(table)) for table in tables}
    other = db.create_database("test_reverse_order", server_url)
    try:
        db.bootstrap(other)
        import os

        os.environ["DATABASE_URL"] = other
        assert run_pipeline(date(2026, 11, 21), landing=seed_landing, trigger="test").success
        assert run_pipeline(date(2026, 11, 20), landing=seed_landing, trigger="test").success
        with db.transaction(other) as conn, conn.cursor() as cur:
            reverse = {}
            for table in tables:
                cur.execute(without_load_id.format(table))
                reverse[table] = cur.fetchall()
    finally:
        os.environ["DATABASE_URL"] = warehouse
        db.drop_database("test_reverse_order", server_url)

    assert all(in_order[table] for table in tables)
    assert reverse == in_order


def test_a_row_breaking_several_drop_rules_is_quarantined_once_with_all_reasons(warehouse, query, tmp_path):
    from tests.conftest import write_landing

    landing = small_landing(tmp_path)
    sales = (landing / "2026-11-20" / "erp_sales.csv").read_text()
    write_landing(landing, "2026-11-20", {"erp_sales.csv": sales + "O12,C9,P9,2026-11-06,0,-1.00\n"})
    with luigi_setting("quality", "on_breach", "warn"):
        assert run_pipeline(SMALL_DAY, landing=landing, trigger="test").success
    ((rule, reason, failed),) = query(
        "select rule_name, reason, record->'failed_rules' from silver.quarantine where business_key = 'O12'"
    )
    assert failed == ["quantity_positive", "unit_price_not_negative", "customer_exists", "product_exists"]
    assert rule == "quantity_positive"
    assert reason == (
        "quantity is zero or negative: '0'; unit_price is negative (a zero price is a valid free "
        "item): '-1.00'; customer_id is not a known customer: 'C9'; product_id is not a known "
        "product: 'P9'"
    )
    # Counted once per rule in the results, once in the conservation.
    assert query("select count(*) from silver.quarantine where line_number = 15 and source_table = 'silver.sales'") == [
        (1,)
    ]


def test_empty_table_does_not_weigh_in_the_run_score(warehouse, query, tmp_path):
    from tests.conftest import write_landing
    from tests.test_bronze import CUSTOMERS_HEADER, PRODUCTS, SALES_HEADER

    landing = write_landing(
        tmp_path / "landing",
        "2026-11-20",
        {
            "crm_customers.csv": CUSTOMERS_HEADER,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": SALES_HEADER + "O1,C1,P1,2026-01-02,2,2.50\n",
        },
    )
    result = run_pipeline(SMALL_DAY, landing=landing, trigger="test")
    scores = {
        (t, d): (s, n)
        for t, d, s, n in query(
            "select table_name, dimension, score, rows_checked from meta.quality_scores where dimension = 'overall'"
        )
    }
    assert scores[("silver.customers", "overall")][1] == 0
    products, sales = scores[("silver.products", "overall")], scores[("silver.sales", "overall")]
    # sales: one line, its customer unknown: consistency 2 of 3 checks pass (an unknown customer has no signup
    # date to be before).
    assert float(sales[0]) == pytest.approx((1 + 1 + 1 + 2 / 3 + 0.5) / 4.5, abs=1e-6)
    assert float(scores[("*", "overall")][0]) == pytest.approx((float(products[0]) + float(sales[0])) / 2, abs=1e-6)
    # 0.963 >= 0.95: the averaged score passes; losing the only sales line is the share limit's business
    # (tests/test_gate.py; this suite's luigi.test.cfg lifts the limit).
    assert result.success


def test_customer_versions_keep_every_valid_version(warehouse, query, tmp_path):
    with luigi_setting("quality", "on_breach", "warn"):
        assert run_pipeline(SMALL_DAY, landing=small_landing(tmp_path), trigger="test").success
    # C1, C2 and both versions of C4 (lines 5 and 6); the exact copy (line 7) and the three
    # quarantined lines are not versions.
    assert query("select customer_id, email, _line_number from silver.customer_versions order by 3") == [
        ("C1", "ann.lee@example.com", 2),
        ("C2", "bob@example.com", 3),
        ("C4", "di@example.com", 5),
        ("C4", "di.prince@example.com", 6),
    ]
    query(
        "delete from meta.table_updates where target_table in ('silver.customers', 'silver.sales', "
        "'meta.quality_scores') or target_table like 'gold.%%'"
    )
    with luigi_setting("quality", "on_breach", "warn"):
        assert run_pipeline(SMALL_DAY, landing=small_landing(tmp_path / "again"), trigger="test").success
    assert query("select count(*) from silver.customer_versions") == [(4,)]


def test_a_merge_leaves_the_primary_key_and_a_summarized_load_index(warehouse, query, seed_landing):
    """A first load builds the primary key after its insert: it is there afterwards and still refuses a
    second row of a key. Each merge summarizes the load-id BRIN index (conservation reads the load by it)."""
    import psycopg2

    tables = ("customers", "products", "sales")
    for table in tables:  # autovacuum would summarize them too, some time later
        query(f"alter table silver.{table} set (autovacuum_enabled = false)")  # noqa: S608 - fixed names
    try:
        for day in (date(2026, 11, 20), date(2026, 11, 21)):  # a first load, then a merge into rows
            assert run_pipeline(day, landing=seed_landing, trigger="test", upto="silver").success
            for table in tables:
                assert query(
                    "select conname from pg_constraint where conrelid = %s::regclass and contype = 'p'",
                    (f"silver.{table}",),
                ) == [(f"{table}_pkey",)]
                assert query("select brin_summarize_new_values(%s::regclass)", (f"silver.{table}_load_idx",)) == [(0,)]
        with pytest.raises(psycopg2.errors.UniqueViolation):
            query("insert into silver.sales select * from silver.sales limit 1")
    finally:
        for table in tables:
            query(f"alter table silver.{table} reset (autovacuum_enabled)")  # noqa: S608
