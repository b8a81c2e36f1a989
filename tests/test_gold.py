"""Gold dimensions on a real PostgreSQL: SCD2 scenarios, and pandas recomputations from silver."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd

from pipeline.operations.runner import run_pipeline
from tests.conftest import write_landing
from tests.test_bronze import CUSTOMERS_HEADER, PRODUCTS, SALES_HEADER

UTC = UTC


def customer(cid: str, city: str, updated: str, email: str | None = None) -> str:
    return (
        f"{cid},Ann,Lee,{email or cid.lower() + '@example.com'},4155550123,1 Main St,{city},MA,New England,"
        f"2024-01-01,{updated}T00:00:00Z\n"
    )


def day(landing, extract_date: str, customers: str, sales: str = "") -> None:
    write_landing(
        landing,
        extract_date,
        {
            "crm_customers.csv": CUSTOMERS_HEADER + customers,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": SALES_HEADER + sales,
        },
    )


def scd2_landing(tmp_path):
    landing = tmp_path / "landing"
    day(
        landing,
        "2026-11-01",
        customer("C1", "Boston", "2024-01-01") + customer("C2", "Boston", "2024-01-01"),
        sales="S1,C1,P1,2023-12-01,1,2.50\nS2,C1,P1,2024-01-10,1,2.50\nS3,C1,P1,2024-01-20,2,2.50\n"
        "S4,C1,P1,2024-03-05,1,2.50\nS5,C2,P1,2024-01-01,4,2.50\n",
    )
    # C1 moves; C2 is re-sent unchanged (same instant), and again with a later updated_at but the same attributes.
    day(
        landing,
        "2026-11-02",
        customer("C1", "Denver", "2024-02-01")
        + customer("C2", "Boston", "2024-01-01")
        + customer("C2", "Boston", "2024-01-20"),
    )
    # C1 moves back to Boston, and a version from before the Denver one arrives late.
    day(landing, "2026-11-03", customer("C1", "Boston", "2024-03-01") + customer("C1", "Austin", "2024-01-15"))
    return landing


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


EXPECTED_C1 = [
    ("Boston", ts("2024-01-01"), ts("2024-01-15"), False),
    ("Austin", ts("2024-01-15"), ts("2024-02-01"), False),
    ("Denver", ts("2024-02-01"), ts("2024-03-01"), False),
    ("Boston", ts("2024-03-01"), None, True),
]


def dimension(query) -> dict[str, list[tuple]]:
    rows = query(
        "select customer_id, city, valid_from, valid_to, is_current from gold.dim_customer "
        "order by customer_id, valid_from"
    )
    result: dict[str, list[tuple]] = {}
    for customer_id, *rest in rows:
        result.setdefault(customer_id, []).append(tuple(rest))
    return result


def run_days(landing, days):
    for extract_date in days:
        result = run_pipeline(extract_date, landing=landing, trigger="test")
        assert result.success, result.luigi_summary


def test_scd2_change_no_change_late_arrival_and_change_back(warehouse, query, tmp_path):
    landing = scd2_landing(tmp_path)
    run_days(landing, [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)])
    dim = dimension(query)
    assert dim["C1"] == EXPECTED_C1
    assert dim["C2"] == [("Boston", ts("2024-01-01"), None, True)]  # an unchanged customer gets no new version
    assert (
        query("select count(*) from gold.dim_customer where is_current group by customer_id having count(*) > 1") == []
    )


def test_scd2_reprocessing_keeps_keys_and_rows(warehouse, query, tmp_path):
    landing = scd2_landing(tmp_path)
    run_days(landing, [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)])
    before = query("select * from gold.dim_customer order by customer_key")
    query(
        "delete from meta.table_updates where target_table like 'gold.%%' or target_table like 'silver.%%' "
        "or target_table = 'meta.quality_scores'"
    )
    run_days(landing, [date(2026, 11, 2)])
    assert query("select * from gold.dim_customer order by customer_key") == before


def test_scd2_any_order_of_dates_gives_the_same_dimension(warehouse, query, tmp_path):
    landing = scd2_landing(tmp_path)
    run_days(landing, [date(2026, 11, 3), date(2026, 11, 1), date(2026, 11, 2)])
    assert dimension(query)["C1"] == EXPECTED_C1


def test_dimensions_match_pandas_on_generated_data(warehouse, query, tmp_path):
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=3, customers=2000, orders=3000)
    run_days(landing, [date(2026, 11, 1) + timedelta(days=n) for n in range(3)])

    columns = ["customer_id", "first_name", "last_name", "email", "phone", "city", "state", "region"]
    versions = pd.DataFrame(
        query(
            f"select {', '.join(columns)}, updated_at, _extract_date, _load_id, _line_number "  # noqa: S608
            "from silver.customer_versions"
        ),
        columns=[*columns, "updated_at", "_extract_date", "_load_id", "_line_number"],
    )
    versions = versions.sort_values(["customer_id", "updated_at", "_extract_date", "_load_id", "_line_number"])
    versions = versions.drop_duplicates(["customer_id", "updated_at"], keep="last")
    versions["hash"] = ["|".join("" if v is None else str(v) for v in row) for row in versions[columns[1:]].values]
    versions["changed"] = versions.groupby("customer_id")["hash"].shift() != versions["hash"]
    expected = versions[versions["changed"]].copy()
    expected["valid_to"] = expected.groupby("customer_id")["updated_at"].shift(-1)
    expected_rows = sorted(
        (
            r.customer_id,
            r.city,
            r.updated_at.to_pydatetime(),
            None if pd.isna(r.valid_to) else r.valid_to.to_pydatetime(),
        )
        for r in expected.itertuples()
    )
    actual = sorted(query("select customer_id, city, valid_from, valid_to from gold.dim_customer"))
    assert actual == expected_rows
    assert query("select count(*) from gold.dim_customer where is_current") == [(versions.customer_id.nunique(),)]
    # The hash is md5 over the tracked attributes joined with '|' (nulls skipped, as concat_ws does).
    c_id, stored = query("select customer_id, attribute_hash from gold.dim_customer limit 1")[0]
    row = query(
        f"select {', '.join(columns[1:])} from gold.dim_customer where customer_id = %s and "  # noqa: S608
        "attribute_hash = %s",
        (c_id, stored),
    )[0]
    assert stored == hashlib.md5("|".join(v for v in row if v is not None).encode()).hexdigest()  # noqa: S324

    products = query("select product_id, product_name, list_price from silver.products order by 1")
    assert query("select product_id, product_name, list_price from gold.dim_product order by 1") == products
    order_dates = {d for (d,) in query("select distinct order_date from silver.sales")}
    extract_dates = {date(2026, 11, 1) + timedelta(days=n) for n in range(3)}
    dim_dates = dict(query("select date, date_key from gold.dim_date"))
    assert set(dim_dates) == order_dates | extract_dates
    assert all(key == int(d.strftime("%Y%m%d")) for d, key in dim_dates.items())
    weekends = {d for (d,) in query("select date from gold.dim_date where is_weekend")}
    assert weekends == {d for d in dim_dates if d.isoweekday() >= 6}


def test_fact_takes_the_version_valid_at_the_order_date_even_when_it_arrives_late(warehouse, query, tmp_path):
    landing = scd2_landing(tmp_path)
    run_days(landing, [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)])
    cities = dict(
        query(
            "select fact_sales.order_id, dim_customer.city || ' ' || dim_customer.valid_from::date "
            "from gold.fact_sales inner join gold.dim_customer using (customer_key)"
        )
    )
    assert cities == {
        "S1": "Boston 2024-01-01",  # older than every version: the first one
        "S2": "Boston 2024-01-01",
        "S3": "Austin 2024-01-15",  # the Austin version arrived two days after the order line
        "S4": "Boston 2024-03-01",
        "S5": "Boston 2024-01-01",
    }


def test_fact_matches_pandas_and_has_no_orphans(warehouse, query, tmp_path):
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=3, customers=2000, orders=3000)
    run_days(landing, [date(2026, 11, 1) + timedelta(days=n) for n in range(3)])
    sales = pd.DataFrame(
        query("select order_id, customer_id, order_date, amount from silver.sales"),
        columns=["order_id", "customer_id", "order_date", "amount"],
    )
    fact = pd.DataFrame(
        query("select order_id, customer_key, order_date, amount from gold.fact_sales"),
        columns=["order_id", "customer_key", "order_date", "amount"],
    )
    assert len(fact) == len(sales) and set(fact.order_id) == set(sales.order_id)
    assert fact.amount.sum() == sales.amount.sum()  # revenue to the cent (Decimal)
    assert query("""select count(*) from gold.fact_sales
                    where customer_key not in (select customer_key from gold.dim_customer)
                       or product_key not in (select product_key from gold.dim_product)
                       or date_key not in (select date_key from gold.dim_date)""") == [(0,)]
    # The version valid at the end of the order date, computed with pandas.
    dim = pd.DataFrame(
        query("select customer_key, customer_id, valid_from from gold.dim_customer"),
        columns=["customer_key", "customer_id", "valid_from"],
    )
    orders = sales.assign(day_end=pd.to_datetime(sales.order_date).dt.tz_localize("UTC") + pd.Timedelta(days=1))
    dim["valid_from"] = pd.to_datetime(dim.valid_from, utc=True)
    picked = pd.merge_asof(
        orders.sort_values("day_end"),
        dim.sort_values("valid_from"),
        left_on="day_end",
        right_on="valid_from",
        by="customer_id",
        allow_exact_matches=False,
    )
    first = dim.sort_values("valid_from").groupby("customer_id").customer_key.first()
    picked["expected"] = picked.customer_key.fillna(picked.customer_id.map(first)).astype("int64")
    merged = picked[["order_id", "expected"]].merge(fact[["order_id", "customer_key"]], on="order_id")
    assert (merged.expected == merged.customer_key).all()


def test_aggregates_match_pandas_and_revenue_is_conserved(warehouse, query, tmp_path):
    from decimal import ROUND_HALF_UP, Decimal

    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=3, customers=2000, orders=3000)
    run_days(landing, [date(2026, 11, 1) + timedelta(days=n) for n in range(3)])
    # Recomputed from silver (sales) and the customer versions, not from gold's own tables.
    sales = pd.DataFrame(
        query("select order_id, customer_id, product_id, order_date, quantity, amount from silver.sales"),
        columns=["order_id", "customer_id", "product_id", "order_date", "quantity", "amount"],
    )
    keys = pd.DataFrame(
        query(
            "select fact_sales.order_id, dim_customer.region from gold.fact_sales "
            "inner join gold.dim_customer using (customer_key)"
        ),
        columns=["order_id", "region"],
    )
    frame = sales.merge(keys, on="order_id")
    assert len(frame) == len(sales)

    daily = (
        frame.groupby(["order_date", "region"])
        .agg(
            orders=("order_id", "size"),
            customers=("customer_id", "nunique"),
            quantity=("quantity", "sum"),
            revenue=("amount", "sum"),
        )
        .reset_index()
    )
    expected = sorted(
        (r.order_date, r.region, r.orders, r.customers, r.quantity, r.revenue) for r in daily.itertuples()
    )
    assert (
        sorted(query("select order_date, region, orders, customers, quantity, revenue from gold.agg_daily_sales"))
        == expected
    )

    frame["month_start"] = frame.order_date.map(lambda d: d.replace(day=1))
    monthly = (
        frame.groupby(["month_start", "region"])
        .agg(orders=("order_id", "size"), customers=("customer_id", "nunique"), revenue=("amount", "sum"))
        .reset_index()
    )
    assert sorted(
        query("select month_start, region, orders, customers, revenue from gold.agg_monthly_sales")
    ) == sorted((r.month_start, r.region, r.orders, r.customers, r.revenue) for r in monthly.itertuples())

    regional = frame.groupby("region").agg(
        customers=("customer_id", "nunique"), orders=("order_id", "size"), revenue=("amount", "sum")
    )
    total = regional.revenue.sum()
    for region, customers, orders, revenue, aov, share in query("select * from gold.customer_analytics"):
        row = regional.loc[region]
        assert (customers, orders, revenue) == (row.customers, row.orders, row.revenue)
        assert aov == (row.revenue / row.orders).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert share == (row.revenue / total).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)

    products = frame.groupby("product_id").agg(
        total_orders=("order_id", "size"),
        quantity=("quantity", "sum"),
        customers=("customer_id", "nunique"),
        revenue=("amount", "sum"),
    )
    for product_id, orders, quantity, customers, revenue, price in query(
        "select product_id, total_orders, total_quantity_sold, customers, revenue, average_unit_price "
        "from gold.product_analytics"
    ):
        row = products.loc[product_id]
        assert (orders, quantity, customers, revenue) == (row.total_orders, row.quantity, row.customers, row.revenue)
        assert price == (row.revenue / row.quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    # Revenue is the same at every level.
    levels = query("""select (select sum(amount) from silver.sales), (select sum(amount) from gold.fact_sales),
                             (select sum(revenue) from gold.agg_daily_sales),
                             (select sum(revenue) from gold.agg_monthly_sales),
                             (select sum(revenue) from gold.customer_analytics),
                             (select sum(revenue) from gold.product_analytics)""")[0]
    assert len(set(levels)) == 1 and levels[0] == sales.amount.sum()
    kpis = query("select orders, customers, revenue from gold.business_kpis where run_date = '2026-11-03'")
    in_range = sales[sales.order_date <= date(2026, 11, 3)]
    assert kpis == [(len(in_range), in_range.customer_id.nunique(), in_range.amount.sum())]

    # The last run reports, per aggregate, the rows it holds (the pandas group counts).
    reported = dict(
        query("""select distinct on (task_family) task_family, rows_out from meta.task_runs
                             where task_family in ('AggDailySales', 'AggMonthlySales', 'CustomerAnalytics',
                                                   'ProductAnalytics')
                             order by task_family, started_at desc""")
    )
    assert reported == {
        "AggDailySales": len(daily),
        "AggMonthlySales": len(monthly),
        "CustomerAnalytics": len(regional),
        "ProductAnalytics": len(products),
    }


def test_cohort_retention_by_hand_and_against_pandas(warehouse, query, tmp_path):
    from decimal import Decimal

    landing = tmp_path / "landing"
    customers = (
        customer("C1", "Boston", "2024-01-01")
        + customer("C2", "Boston", "2024-01-01")
        + customer("C3", "Boston", "2024-01-01")
    )
    # C1 and C2 first buy in January (cohort of 2), C3 in February (cohort of 1).
    # C1 buys again in February and April, C3 in March.
    sales = (
        "S1,C1,P1,2024-01-05,1,2.50\nS2,C2,P1,2024-01-20,2,2.50\nS3,C1,P1,2024-02-03,1,2.50\n"
        "S4,C3,P1,2024-02-10,1,2.50\nS5,C1,P1,2024-04-30,4,2.50\nS6,C3,P1,2024-03-01,1,2.50\n"
    )
    day(landing, "2026-11-01", customers, sales)
    run_days(landing, [date(2026, 11, 1)])
    assert query(
        "select cohort_month, months_since_first, cohort_size, active_customers, retention_rate, revenue "
        "from gold.cohort_retention order by 1, 2"
    ) == [
        (date(2024, 1, 1), 0, 2, 2, Decimal("1.000000"), Decimal("7.50")),
        (date(2024, 1, 1), 1, 2, 1, Decimal("0.500000"), Decimal("2.50")),
        (date(2024, 1, 1), 3, 2, 1, Decimal("0.500000"), Decimal("10.00")),
        (date(2024, 2, 1), 0, 1, 1, Decimal("1.000000"), Decimal("2.50")),
        (date(2024, 2, 1), 1, 1, 1, Decimal("1.000000"), Decimal("2.50")),
    ]


def test_cohort_matrix_matches_pandas_on_generated_data(warehouse, query, tmp_path):
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=2, customers=2000, orders=3000)
    run_days(landing, [date(2026, 11, 1), date(2026, 11, 2)])
    sales = pd.DataFrame(
        query("select customer_id, order_date, amount from silver.sales"),
        columns=["customer_id", "order_date", "amount"],
    )
    sales["month"] = pd.to_datetime(sales.order_date).dt.to_period("M")
    sales["cohort"] = sales.groupby("customer_id").month.transform("min")
    sales["since"] = (sales.month - sales.cohort).apply(lambda offset: offset.n)
    sizes = sales.groupby("cohort").customer_id.nunique()
    matrix = sales.groupby(["cohort", "since"]).agg(active=("customer_id", "nunique"), revenue=("amount", "sum"))
    expected = sorted(
        (c.to_timestamp().date(), int(s), int(sizes[c]), int(r.active), r.revenue) for (c, s), r in matrix.iterrows()
    )
    assert (
        sorted(
            query(
                "select cohort_month, months_since_first, cohort_size, active_customers, revenue "
                "from gold.cohort_retention"
            )
        )
        == expected
    )
    assert query("select count(*) from gold.cohort_retention where months_since_first = 0 and retention_rate <> 1") == [
        (0,)
    ]


def test_customer_clv_summary_and_predictions_match_an_independent_computation(warehouse, query, tmp_path):
    import numpy as np

    from pipeline.clv import models as clv
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 1), days=1, customers=2000, orders=6000)
    run_days(landing, [date(2026, 11, 1)])
    sales = pd.DataFrame(
        query("select customer_id, order_date, amount from silver.sales"),
        columns=["customer_id", "order_date", "amount"],
    )
    rfm = clv.rfm_from_transactions(
        sales.customer_id,
        pd.to_datetime(sales.order_date),
        sales.amount.astype(float),
        pd.Timestamp("2026-11-01"),
        time_unit="weeks",
    )
    stored = pd.DataFrame(
        query(
            "select customer_id, frequency, recency, t, monetary_value, historical_clv, "
            "expected_purchases, p_alive, expected_avg_spend, predicted_clv "
            "from gold.customer_clv where as_of_date = '2026-11-01' order by customer_id"
        ),
        columns=[
            "customer_id",
            "frequency",
            "recency",
            "t",
            "monetary_value",
            "historical_clv",
            "expected_purchases",
            "p_alive",
            "expected_avg_spend",
            "predicted_clv",
        ],
    ).set_index("customer_id")
    assert list(stored.index) == list(rfm.index)
    assert (stored.frequency.to_numpy() == rfm.frequency.to_numpy()).all()
    assert np.allclose(stored.recency.astype(float), rfm.recency, atol=1e-4)
    assert np.allclose(stored.t.astype(float), rfm["T"], atol=1e-4)
    assert np.allclose(stored.monetary_value.astype(float), rfm.monetary_value, atol=0.005)
    # Historical CLV: total spend to the as-of date.
    totals = sales.groupby("customer_id").amount.sum()
    assert (stored.historical_clv == totals.loc[stored.index]).all()

    models = dict(query("select model, params from gold.clv_model where as_of_date = '2026-11-01'"))
    assert set(models) == {"bg_nbd", "gamma_gamma"} and models["bg_nbd"] and models["gamma_gamma"]
    bg, gg = clv.BGNBDParams(**models["bg_nbd"]), clv.GammaGammaParams(**models["gamma_gamma"])
    x, t_x, big_t = rfm.frequency.to_numpy(float), rfm.recency.to_numpy(), rfm["T"].to_numpy()
    assert np.allclose(stored.p_alive.astype(float), clv.p_alive(bg, x, t_x, big_t), atol=2e-6)
    assert np.allclose(
        stored.expected_purchases.astype(float), clv.expected_purchases(bg, 365 / 7, x, t_x, big_t), atol=2e-6
    )
    predicted = clv.predicted_clv(
        bg, gg, x, t_x, big_t, rfm.monetary_value.to_numpy(), 12, 1.10 ** (30 / 365) - 1, time_unit=30 / 7
    )
    assert np.allclose(stored.predicted_clv.astype(float), predicted, atol=0.01, equal_nan=True)
    # Null only for repeat customers whose repeat days were all free items (no spend to model).
    no_spend = (rfm.frequency > 0) & (rfm.monetary_value == 0)
    assert (stored.predicted_clv.isna().to_numpy() == no_spend.to_numpy()).all()


def test_customer_clv_on_too_little_data_warns_and_leaves_predictions_null(warehouse, query, tmp_path):
    landing = tmp_path / "landing"
    day(landing, "2026-11-01", customer("C1", "Boston", "2024-01-01"), sales="S1,C1,P1,2024-01-05,1,2.50\n")
    result = run_pipeline(date(2026, 11, 1), landing=landing, trigger="test")
    assert result.success
    assert query("select frequency, historical_clv, predicted_clv, p_alive from gold.customer_clv") == [
        (0, Decimal("2.50"), None, None)
    ]
    ((params, message),) = query("select params, message from gold.clv_model where model = 'bg_nbd'")
    assert params is None and "BG/NBD needs at least" in message
    task = next(t for t in result.tasks if t["task_family"] == "CustomerClv")
    assert task["message"].startswith("WARNING")


def test_business_kpis_by_hand(warehouse, query, tmp_path):
    landing = tmp_path / "landing"
    customers = customer("C1", "Boston", "2024-01-01") + customer("C2", "Boston", "2024-01-01")
    # C1 buys on two days (one recent), C2 once long ago: revenue 2.50 + 5.00 + 10.00 = 17.50 over 3 lines.
    sales = "S1,C1,P1,2026-01-05,1,2.50\nS2,C1,P1,2026-10-20,2,2.50\nS3,C2,P1,2025-06-01,4,2.50\n"
    day(landing, "2026-11-01", customers, sales)
    assert run_pipeline(date(2026, 11, 1), landing=landing, trigger="test").success
    ((orders, buyers, active, revenue, aov, repeat, historical, predicted, score),) = query(
        "select orders, customers, active_customers, revenue, average_order_value, repeat_purchase_rate, "
        "average_historical_clv, average_predicted_clv, quality_score from gold.business_kpis"
    )
    assert (orders, buyers, active, revenue) == (3, 2, 1, Decimal("17.50"))
    assert aov == Decimal("5.83")  # 17.50 / 3
    assert repeat == Decimal("0.500000")  # C1 of C1, C2
    assert historical == Decimal("8.75")  # (7.50 + 10.00) / 2
    assert predicted is None  # two customers: too few to fit
    assert score == query("select score from meta.quality_scores where table_name = '*'")[0][0]


def gold_snapshot(query, as_of: date) -> dict:
    """Gold without surrogate keys (they count rows in arrival order): facts carry their version."""
    return {
        "dim_customer": query(
            "select customer_id, city, email, attribute_hash, is_current, valid_from, valid_to "
            "from gold.dim_customer order by 1, 6"
        ),
        "fact_sales": query(
            "select f.order_id, f.customer_id, c.valid_from, p.product_id, f.date_key, f.quantity, "
            "f.amount from gold.fact_sales f inner join gold.dim_customer c using (customer_key) "
            "inner join gold.dim_product p using (product_key) order by 1"
        ),
        "dim_product": query("select product_id, product_name, list_price from gold.dim_product order by 1"),
        "dim_date": query("select * from gold.dim_date order by 1"),
        "agg_daily_sales": query("select * from gold.agg_daily_sales order by order_date, region"),
        "agg_monthly_sales": query("select * from gold.agg_monthly_sales order by month_start, region"),
        "customer_analytics": query("select * from gold.customer_analytics order by 1"),
        "product_analytics": query(
            "select product_id, total_orders, total_quantity_sold, customers, revenue, "
            "average_unit_price from gold.product_analytics order by 1"
        ),
        "cohort_retention": query("select * from gold.cohort_retention order by cohort_month, months_since_first"),
        "customer_clv": query("select * from gold.customer_clv where as_of_date = %s order by customer_id", (as_of,)),
        "clv_model": query(
            "select model, params, n_customers from gold.clv_model where as_of_date = %s order by 1", (as_of,)
        ),
        "business_kpis": query(
            "select orders, customers, active_customers, revenue, average_order_value, "
            "repeat_purchase_rate, average_historical_clv, average_predicted_clv "
            "from gold.business_kpis where run_date = %s",
            (as_of,),
        ),
    }


def test_any_sequence_of_runs_and_reprocessing_ends_in_the_same_gold(warehouse, query, server_url, tmp_path):
    import os

    from pipeline.core import db
    from pipeline.sample.generate import generate

    landing = tmp_path / "landing"
    first = date(2026, 11, 1)
    dates = [first + timedelta(days=n) for n in range(5)]
    generate(landing, first, days=5, customers=1500, orders=3000)
    run_days(landing, dates)  # daily runs, in order
    in_order = gold_snapshot(query, dates[-1])
    # The aggregates caught up incrementally after the first day, and equal a recompute from the whole fact.
    assert all(runs[0] == "full" and set(runs[1:]) == {"changes"} for runs in catch_up_modes(query).values())
    assert_incremental_tables_equal_recompute(query)

    other = db.create_database("test_gold_any_order", server_url)
    try:
        db.bootstrap(other)
        os.environ["DATABASE_URL"] = other
        # The last date first (it brings the earlier ones), then a reprocessing of a middle date.
        run_days(landing, [dates[-1]])
        with db.transaction(other) as conn, conn.cursor() as cur:
            cur.execute("delete from meta.table_updates where update_id like %s", (f"%{dates[2]:%Y_%m_%d}%",))
        run_days(landing, [dates[2], dates[-1]])

        def other_query(text, params=None):
            with db.transaction(other) as conn, conn.cursor() as cur:
                cur.execute(text, params)
                return cur.fetchall()

        shuffled = gold_snapshot(other_query, dates[-1])
        assert_incremental_tables_equal_recompute(other_query)
    finally:
        os.environ["DATABASE_URL"] = warehouse
        db.drop_database("test_gold_any_order", server_url)
    for table in in_order:
        assert shuffled[table] == in_order[table], table


# The tables kept incrementally, each recomputed here from the whole fact the obvious way (count(distinct),
# window functions), independently of the pipeline's SQL: after any run they must hold exactly this.
RECOMPUTED = {
    "agg_daily_sales": """
        select to_char(order_date, 'YYYYMMDD')::integer, region, count(*), count(distinct customer_id),
               sum(quantity), sum(amount), order_date
        from gold.fact_sales group by order_date, region order by order_date, region""",
    "agg_monthly_sales": """
        select region, count(*), count(distinct customer_id), sum(quantity), sum(amount),
               date_trunc('month', order_date)::date as month_start
        from gold.fact_sales group by month_start, region order by month_start, region""",
    "customer_analytics": """
        select region, count(distinct customer_id), count(*), sum(amount), round(sum(amount) / count(*), 2),
               round(sum(amount) / sum(sum(amount)) over (), 6)
        from gold.fact_sales group by region order by region""",
    "product_analytics": """
        select p.product_key, p.product_id, p.product_name, p.category, count(*), sum(f.quantity),
               count(distinct f.customer_id), sum(f.amount), round(sum(f.amount) / nullif(sum(f.quantity), 0), 2)
        from gold.fact_sales f inner join gold.dim_product p using (product_key)
        group by p.product_key order by p.product_key""",
    "cohort_retention": """
        with months as (
            select customer_id, date_trunc('month', order_date)::date as month, amount,
                   min(date_trunc('month', order_date)::date) over (partition by customer_id) as cohort
            from gold.fact_sales),
        sizes as (select cohort, count(distinct customer_id) as size from months group by cohort)
        select (extract(year from age(month, cohort)) * 12 + extract(month from age(month, cohort)))::integer,
               sizes.size, count(distinct customer_id), round(count(distinct customer_id)::numeric / sizes.size, 6),
               sum(amount), months.cohort
        from months inner join sizes using (cohort)
        group by months.cohort, month, sizes.size order by months.cohort, 1""",
    "customer_purchase_summary": """
        select customer_id, count(*), count(distinct order_date),
               sum(amount) filter (where order_date = first_date), sum(amount), first_date, max(order_date)
        from (select *, min(order_date) over (partition by customer_id) as first_date from gold.fact_sales) as f
        group by customer_id, first_date order by customer_id""",
}
ORDER_BY = {
    "agg_daily_sales": "order_date, region",
    "agg_monthly_sales": "month_start, region",
    "customer_analytics": "region",
    "product_analytics": "product_key",
    "cohort_retention": "cohort_month, months_since_first",
    "customer_purchase_summary": "customer_id",
}


def assert_incremental_tables_equal_recompute(query) -> None:
    for table, recompute in RECOMPUTED.items():
        kept = query(f"select * from gold.{table} order by {ORDER_BY[table]}")  # noqa: S608
        assert kept == query(recompute), table


def catch_up_modes(query) -> dict[str, list[str]]:
    """Per incremental task family, the catch-up mode of each successful run, oldest first."""
    modes: dict[str, list[str]] = {}
    for family, message in query(
        "select task_family, message from meta.task_runs where status = 'success' "
        "and task_family in ('AggDailySales', 'AggMonthlySales', 'CustomerAnalytics', "
        "'ProductAnalytics', 'CohortRetention') order by task_run_id"
    ):
        mode = "full" if message.startswith("recomputed") else "changes" if message.startswith("caught up") else "none"
        modes.setdefault(family, []).append(mode)
    return modes


PRODUCTS_2 = (
    "product_id,product_name,category,unit_cost,list_price,updated_at\n"
    "P1,Widget,Tools,1.00,2.50,2026-01-01\nP2,Gadget,Tools,2.00,4.00,2026-01-01\n"
)


def region_customer(cid: str, city: str, state: str, region: str, updated: str) -> str:
    return (
        f"{cid},Ann,Lee,{cid.lower()}@example.com,4155550123,1 Main St,{city},{state},{region},2024-01-01,"
        f"{updated}T00:00:00Z\n"
    )


def fact_change_landing(tmp_path):
    """Three days in which order lines move between customers, products and dates, cohorts move, regions
    change by a late version and in place, and a product is renamed."""
    landing = tmp_path / "landing"

    def extract(day_: str, customers: str, sales: str, products: str = PRODUCTS_2) -> None:
        write_landing(
            landing,
            day_,
            {
                "crm_customers.csv": CUSTOMERS_HEADER + customers,
                "erp_products.csv": products,
                "erp_sales.csv": SALES_HEADER + sales,
            },
        )

    extract(
        "2026-11-01",
        region_customer("C1", "Boston", "MA", "New England", "2024-01-01")
        + region_customer("C2", "Boston", "MA", "New England", "2024-01-01")
        + region_customer("C3", "Seattle", "WA", "Pacific", "2024-01-01"),
        "S1,C1,P1,2024-02-10,1,2.50\nS2,C1,P1,2024-03-05,2,2.50\nS3,C2,P1,2024-02-10,1,2.50\n"
        "S4,C3,P2,2024-04-01,3,4.00\n",
    )
    # S2 moves to C2, P2 and January (C2's cohort moves to January); C1 buys P2 in January (C1's cohort
    # moves too); a late version puts C3 in Mountain from March, so S4 changes region; P2 is renamed.
    extract(
        "2026-11-02",
        region_customer("C3", "Denver", "CO", "Mountain", "2024-03-01"),
        "S2,C2,P2,2024-01-20,5,4.00\nS5,C1,P2,2024-01-15,1,4.00\n",
        products=PRODUCTS_2.replace("P2,Gadget,", "P2,Gadget Pro,").replace(",2026-01-01\n", ",2026-02-01\n"),
    )
    # C1's first version is re-sent for the same instant with another region: it changes in place (same key).
    extract(
        "2026-11-03",
        region_customer("C1", "New York", "NY", "Mid-Atlantic", "2024-01-01"),
        "S3,C2,P1,2024-02-10,1,2.50\n",
    )
    return landing


def test_incremental_aggregates_follow_every_kind_of_fact_change(warehouse, query, tmp_path):
    """After every day the incremental tables equal a recompute from the whole fact."""
    landing = fact_change_landing(tmp_path)
    for extract_date in (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)):
        run_days(landing, [extract_date])
        assert_incremental_tables_equal_recompute(query)

    modes = catch_up_modes(query)
    assert all(runs == ["full", "changes", "changes"] for runs in modes.values()), modes
    # The changes really happened (so the equality above covered them).
    assert query("select order_id, customer_id, region, order_date from gold.fact_sales order by 1") == [
        ("S1", "C1", "Mid-Atlantic", date(2024, 2, 10)),
        ("S2", "C2", "New England", date(2024, 1, 20)),
        ("S3", "C2", "New England", date(2024, 2, 10)),
        ("S4", "C3", "Mountain", date(2024, 4, 1)),
        ("S5", "C1", "Mid-Atlantic", date(2024, 1, 15)),
    ]
    assert query(
        "select cohort_month, months_since_first, cohort_size, active_customers from gold.cohort_retention "
        "order by 1, 2"
    ) == [(date(2024, 1, 1), 0, 2, 2), (date(2024, 1, 1), 1, 2, 2), (date(2024, 4, 1), 0, 1, 1)]
    assert query("select product_name from gold.product_analytics where product_id = 'P2'") == [("Gadget Pro",)]
    # Reprocessing a date changes no fact, so the aggregates have nothing to catch up.
    query(
        "delete from meta.table_updates where target_table like 'gold.%%' or target_table like 'silver.%%' "
        "or target_table = 'meta.quality_scores'"
    )
    run_days(landing, [date(2026, 11, 2)])
    assert_incremental_tables_equal_recompute(query)
    assert all(runs[-1] == "none" for runs in catch_up_modes(query).values())


def test_incremental_aggregates_catch_up_over_several_batches(warehouse, query, tmp_path):
    """The third day first runs the second day's facts: the aggregates then apply two batches at once, with
    C1 in both (a new line, then a region change), and still equal a recompute."""
    landing = fact_change_landing(tmp_path)
    run_days(landing, [date(2026, 11, 1), date(2026, 11, 3)])
    assert_incremental_tables_equal_recompute(query)
    messages = query("select message from meta.task_runs where task_family = 'CustomerAnalytics' order by task_run_id")
    assert [m for (m,) in messages][-1].startswith("caught up with the fact: 2 batches")


def test_clv_and_kpis_from_the_purchase_summary_equal_those_from_the_fact(warehouse, query, tmp_path):
    from pipeline.core import db
    from pipeline.sample.generate import generate
    from pipeline.tasks_gold import purchase_summary_covers

    landing = tmp_path / "landing"
    first = date(2026, 11, 1)
    dates = [first + timedelta(days=n) for n in range(3)]
    generate(landing, first, days=3, customers=1500, orders=3000)
    run_days(landing, dates)
    rfm = db.sql_text("gold/customer_rfm.sql")
    for as_of in (dates[-1], date(2027, 6, 30)):
        from_summary = query(rfm, {"date": as_of, "from_summary": True})
        assert len(from_summary) > 500
        assert from_summary == query(rfm, {"date": as_of, "from_summary": False})
    kpis = db.sql_text("gold/business_kpis.sql")
    read_kpis = "select * from gold.business_kpis where run_date = %s"
    query(kpis, {"date": dates[-1], "from_summary": True})
    summary_kpis = query(read_kpis, (dates[-1],))
    query(kpis, {"date": dates[-1], "from_summary": False})
    assert query(read_kpis, (dates[-1],)) == summary_kpis and summary_kpis[0][0] > 2500

    # The first date has later order lines now: its CLV and KPIs come from the fact, and equal what the
    # daily run computed from the summary (the later extracts changed no line dated on or before it).
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        assert purchase_summary_covers(cur, dates[-1]) and not purchase_summary_covers(cur, first)
    clv_rows = "select * from gold.customer_clv where as_of_date = %s order by customer_id"
    before = query(clv_rows, (first,)), query(read_kpis, (first,))
    query("delete from meta.table_updates where update_id like 'CustomerClv%%' or update_id like 'BusinessKpis%%'")
    result = run_pipeline(first, landing=landing, trigger="test")
    assert result.success
    assert {t["task_family"]: t["message"] for t in result.tasks}["BusinessKpis"] == "from the fact"
    assert (query(clv_rows, (first,)), query(read_kpis, (first,))) == before


def test_float8_arrays_round_trip_through_binary_copy(warehouse, query):
    import numpy as np
    from psycopg2 import sql

    from pipeline.core import db
    from pipeline.tasks_gold import copy_in_float8, copy_out_float8

    values = np.array([0.0, -1.5, 1 / 3, 1e300, np.nan, 123456789.123456789])
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("create temp table numbers (ordinal float8, value float8)")
        copy_in_float8(cur, "numbers", {"ordinal": np.arange(len(values), dtype=float), "value": values})
        cur.execute("select value from numbers order by ordinal")
        stored = [row[0] for row in cur.fetchall()]
        copy_in_float8(cur, "numbers", {"ordinal": np.array([]), "value": np.array([])})  # nothing, no error
        back = copy_out_float8(cur, sql.SQL("select ordinal, value from numbers where value <> 'NaN' order by ordinal"))
        exact = copy_out_float8(
            cur, sql.SQL("select 0.1::numeric(4, 2) as a, 2::integer as b, 12.3333333333333333 as c")
        )
        empty = copy_out_float8(cur, sql.SQL("select 1.0 as a where false"))
    assert np.array_equal(np.array(stored, dtype=float), values, equal_nan=True)
    assert np.array_equal(back["value"], values[~np.isnan(values)]) and list(back) == ["ordinal", "value"]
    # numeric -> float8 in PostgreSQL is correctly rounded, as float() of the text is.
    assert (exact["a"][0], exact["b"][0], exact["c"][0]) == (0.1, 2.0, float("12.3333333333333333"))
    assert len(empty["a"]) == 0


def test_numeric_columns_copied_in_binary_are_the_floats_correctly_rounded(warehouse):
    """copy_in_binary's Numeric: each float rounded to numeric(p, s), halves away from zero, exactly as
    Python's Decimal rounds its exact binary value, on random values of every size CLV writes and on
    the edges; PostgreSQL's own float8 -> numeric cast agrees but where it rounds twice (first to 15
    digits); NaN and infinities arrive as NaN; a value too large for the column is refused by name."""
    from decimal import ROUND_HALF_UP
    from decimal import Decimal as D

    import numpy as np
    import pytest

    from pipeline.core import db
    from pipeline.tasks_gold import Numeric, copy_in_binary

    rng = np.random.default_rng(7)
    random = rng.standard_normal(20_000) * 10.0 ** rng.integers(-8, 8, 20_000)
    ties = np.array([0.5, 2.5, 0.125, 1.375, 0.005, 1.005, 2.675])  # exact halves, and decimal ones that are not
    edges = np.array([0.0, -0.0, -0.5, 1e-9, -1e-9, 0.000004999, 99999999.994, -99999999.994, 1234.5678])
    values = np.concatenate([random, ties, edges])
    columns = {"a": (values, 16, 2), "b": (values, 14, 6), "c": (values / 1e8, 7, 6)}
    specials = np.array([np.nan, np.inf, -np.inf])
    with db.transaction(warehouse) as conn, conn.cursor() as cur:
        cur.execute("create temp table numbers (ordinal float8, a numeric, b numeric, c numeric)")
        copy_in_binary(
            cur,
            "numbers",
            {
                "ordinal": np.arange(len(values) + 3, dtype=float),
                **{name: Numeric(np.concatenate([v, specials]), p, s) for name, (v, p, s) in columns.items()},
            },
        )
        cur.execute("select a, b, c from numbers order by ordinal")
        stored = cur.fetchall()
        copy_in_binary(cur, "numbers", {"ordinal": np.array([]), "a": Numeric(np.array([]), 16, 2)})  # no error
        cur.execute("create temp table floats (ordinal float8, value float8)")
        copy_in_binary(cur, "floats", {"ordinal": np.arange(len(values), dtype=float), "value": values})
        cur.execute(
            "select count(*) from floats join numbers using (ordinal) where b is distinct from value::numeric(14, 6)"
        )
        postgres_differs = cur.fetchone()[0]
        cur.execute("create temp table narrow (p numeric)")
        with pytest.raises(ValueError, match=r"p: 12\.5 does not fit numeric\(7, 6\)"):
            copy_in_binary(cur, "narrow", {"p": Numeric(np.array([0.5, 12.5]), 7, 6)})
    for index, (name, (v, _, scale)) in enumerate(columns.items()):
        expected = [D(float(x)).quantize(D(1).scaleb(-scale), rounding=ROUND_HALF_UP) for x in v]
        assert [row[index] for row in stored[: len(values)]] == expected, name
    assert all(str(value) == "NaN" for row in stored[len(values) :] for value in row)
    assert [str(row[0]) for row in stored[len(random) : len(random) + len(ties)]] == [
        "0.50", "2.50", "0.13", "1.38", "0.01", "1.00", "2.67"
    ]  # fmt: skip
    assert postgres_differs < len(values) // 500  # its rounding to 15 digits first, a few in a thousand


def test_full_refresh_recomputes_an_incremental_table_from_the_whole_fact(warehouse, query, tmp_path):
    import luigi

    from pipeline.tasks_gold import AggDailySales

    landing = fact_change_landing(tmp_path)
    run_days(landing, [date(2026, 11, 1), date(2026, 11, 2)])
    query("update gold.agg_daily_sales set orders = orders + 100")  # a table gone wrong by hand
    task = AggDailySales(date=date(2026, 11, 2), landing_dir=str(landing), full_refresh=True)
    query("delete from meta.table_updates where update_id = %s", (task.task_id,))
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert_incremental_tables_equal_recompute(query)
    assert catch_up_modes(query)["AggDailySales"][-1] == "full"


def test_tuning_knobs_reach_the_tasks_sessions(warehouse, query, reliability_landing, luigi_setting):
    """luigi.cfg [tuning]: the repository's values are the defaults, and a task's transaction uses what is set
    (PostgreSQL refuses a value it cannot parse, naming the setting)."""
    import configparser

    from pipeline.core.config import tuning
    from pipeline.core.db import REPO_ROOT
    from pipeline.operations.runner import run_pipeline

    shipped = configparser.ConfigParser()
    shipped.read(REPO_ROOT / "luigi.cfg")
    defaults = {name: str(param._default) for name, param in tuning.get_params()}
    assert {key: value.replace(".0", "") for key, value in defaults.items()} == dict(shipped["tuning"])

    luigi_setting("tuning", "gold_work_mem", "plenty")
    result = run_pipeline(date(2026, 11, 20), landing=reliability_landing, trigger="test")
    assert not result.success
    (error,) = query("select error from meta.task_runs where run_id = %s and status = 'failed'", (result.run_id,))[0]
    assert 'invalid value for parameter "work_mem": "plenty"' in error
    assert (
        query(
            "select count(*) from meta.task_runs where run_id = %s and task_family like 'Silver%%' "
            "and status = 'success'",
            (result.run_id,),
        )[0][0]
        == 4
    )  # silver ran with its own settings
