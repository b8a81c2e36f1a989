"""A real company's exports (tests/data/realworld), in formats the generator never writes, through a whole run.

Every figure is computed a second way with pandas and the standard library
from the same files, read with the fixture's own settings.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pipeline.core.sources import SourceConfigError, parse_source_settings, vocabulary_key
from pipeline.operations.runner import run_pipeline

FIXTURE = Path(__file__).parent / "data" / "realworld"
DAY = date(1998, 6, 30)
FOLDER = FIXTURE / "landing" / DAY.isoformat()
NEW_YORK = ZoneInfo("America/New_York")
REGIONS = {
    "west": "West",
    "w": "West",
    "northeast": "Northeast",
    "north east": "Northeast",
    "ne": "Northeast",
    "south": "South",
    "midwest": "Midwest",
    "mid west": "Midwest",
    "emea": "EMEA",
    "europe": "EMEA",
}


@pytest.fixture
def realworld(warehouse, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURE / "landing", landing)
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(FIXTURE / "sources.toml"))
    result = run_pipeline(DAY, landing=landing, trigger="test")
    assert result.success, result.error
    return result


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(FOLDER / name, dtype=str, keep_default_na=False)


def local_instant(text: str) -> datetime:
    """The fixture's timestamps as an instant: zone-less ones are New York wall-clock time."""
    value = datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=NEW_YORK)).astimezone(UTC)


def test_every_line_loads_and_nothing_is_quarantined(realworld, query):
    assert query("select count(*) from silver.quarantine") == [(0,)]
    customers, products, sales = read("crm_customers.csv"), read("erp_products.csv"), read("erp_sales.csv")
    assert query("select source_name, rows_loaded, rows_rejected from meta.ingested_files order by 1") == [
        ("crm_customers", len(customers), 0),
        ("erp_products", len(products), 0),
        ("erp_sales", len(sales), 0),
    ]
    # One customer is sent twice (a later version): a superseded duplicate, not a loss.
    assert query("select count(*) from silver.customers") == [(customers["cust_id"].nunique(),)]
    assert query("select source_table, kind, count(*) from silver.duplicates group by 1, 2") == [
        ("silver.customers", "superseded", len(customers) - customers["cust_id"].nunique())
    ]
    assert query("select count(*) from silver.products") == [(len(products),)]
    assert query("select count(*) from silver.sales") == [(len(sales),)]
    assert query("select count(*) from gold.fact_sales") == [(len(sales),)]


def test_timestamps_without_a_zone_are_read_in_the_source_time_zone(realworld, query):
    customers = read("crm_customers.csv")
    newest = (
        customers.assign(instant=customers["updated_at"].map(local_instant))
        .sort_values("instant")
        .groupby("cust_id")
        .tail(1)
    )
    expected = {row.cust_id: row.instant for row in newest.itertuples()}
    assert dict(query("select customer_id, updated_at from silver.customers")) == expected
    products = read("erp_products.csv")
    assert dict(query("select product_id, updated_at from silver.products")) == {
        row.product_id: local_instant(row.updated_at) for row in products.itertuples()
    }


def test_history_from_1997_with_timestamps_as_order_dates_loads_with_its_revenue(realworld, query):
    sales = read("erp_sales.csv")
    sales["order_date"] = sales["order_date"].str[:10].map(date.fromisoformat)
    sales["amount"] = sales["quantity"].map(lambda q: Decimal(q).to_integral_exact()) * sales["unit_price"].map(Decimal)
    assert min(sales["order_date"]) < date(1997, 3, 1)
    assert dict(query("select order_id, order_date from silver.sales")) == dict(
        zip(sales["line_id"], sales["order_date"], strict=True)
    )
    assert query("select sum(amount) from gold.fact_sales") == [(sum(sales["amount"]),)]
    by_month = sales.groupby(sales["order_date"].map(lambda d: d.replace(day=1)))["amount"].sum()
    assert dict(query("select month_start, sum(revenue) from gold.agg_monthly_sales group by 1")) == dict(by_month)


def test_the_business_regions_map_through_its_vocabulary(realworld, query):
    customers = read("crm_customers.csv").drop_duplicates("cust_id", keep="last")
    expected = {row.cust_id: REGIONS[vocabulary_key(row.region)] for row in customers.itertuples()}
    assert dict(query("select customer_id, region from silver.customers")) == expected
    assert dict(query("select customer_id, region from gold.dim_customer where is_current")) == expected
    assert {r for (r,) in query("select region from gold.dim_customer")} == {
        "West",
        "Northeast",
        "South",
        "Midwest",
        "EMEA",
    }


def test_renamed_and_added_columns_are_mapped_kept_and_recorded(realworld, query):
    customers, sales = read("crm_customers.csv"), read("erp_sales.csv")
    kept = query("select _line_number, _extra from bronze.crm_customers_raw order by 1")
    assert kept == [
        (i + 2, {"loyalty_tier": tier} if tier else None) for i, tier in enumerate(customers["loyalty_tier"])
    ]
    assert query("select _extra ->> 'channel', count(*) from bronze.erp_sales_raw group by 1 order by 1") == sorted(
        sales["channel"].value_counts().items()
    )
    assert sorted(query("select source_name, column_name, change, action from meta.schema_drift")) == [
        ("crm_customers", "loyalty_tier", "added", "kept"),
        ("erp_sales", "channel", "added", "kept"),
    ]


def test_a_second_run_of_the_date_changes_nothing(realworld, query, monkeypatch, tmp_path):
    from tests.conftest import table_checksums

    before = {**table_checksums(query, "silver"), **table_checksums(query, "gold")}
    query("delete from meta.table_updates where target_table not like 'bronze.%%'")
    assert run_pipeline(DAY, landing=tmp_path / "landing", trigger="test").success
    after = {**table_checksums(query, "silver"), **table_checksums(query, "gold")}
    assert after == before


def test_without_its_settings_the_same_files_are_refused_or_flagged_not_silently_loaded(
    warehouse, query, tmp_path, monkeypatch
):
    """The default contract does not know cust_id: the customers file is refused, with the fix in the message."""
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURE / "landing", landing)
    monkeypatch.delenv("METALAYER_SOURCES_FILE", raising=False)
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    assert not result.success
    error = query("select error from meta.task_runs where task_family = 'CrmCustomersRaw'")[0][0]
    assert "missing required column(s) customer_id, email" in error
    assert "[sources.crm_customers.rename]" in error


@pytest.mark.parametrize(
    "text, message",
    [
        ('[sources.crm_customers]\ntime_zone = "Mars/Olympus"\n', "time_zone 'Mars/Olympus' is not an IANA time zone"),
        ('[sources.crm_customers.rename]\n"cust" = "client_id"\n', "'client_id' is not a column of the contract"),
        ('[sources.crm_customers]\nextra_columns = "drop"\n', "extra_columns must be one of keep, ignore, fail"),
        (
            '[sources.crm_customers.vocabularies.region]\nWest = ["North West"]\nNorthwest = ["north-west"]\n',
            "'north-west' would mean both 'West' and 'Northwest'",
        ),
        ("[sources.crm]\n", "unknown source(s) crm"),
        ('[sources.erp_sales]\nepoch_columns = ["order_date"]\n', "only timestamp columns (none in this source)"),
        ('[sources.erp_products]\nepoch_columns = ["list_price"]\n', "only timestamp columns (updated_at)"),
    ],
)
def test_a_wrong_sources_file_names_the_file_section_and_key(text, message):
    with pytest.raises(SourceConfigError) as error:
        parse_source_settings(text, "x/sources.toml")
    assert str(error.value).startswith("x/sources.toml: ")
    assert message in str(error.value)


def test_metalayer_run_on_the_fixture_exits_0_with_nothing_quarantined(warehouse, tmp_path):
    """The command a user types, in a fresh process, with the settings from the environment."""
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURE / "landing", landing)
    metalayer = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "metalayer"
    done = subprocess.run(
        [str(metalayer), "run", "--date", DAY.isoformat(), "--landing", str(landing)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "METALAYER_SOURCES_FILE": str(FIXTURE / "sources.toml")},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr


def test_clv_on_the_company_history_is_the_plain_maximum_likelihood_fit(realworld, query):
    """Summary from pandas over the file, fit with no penalty: gold holds exactly that fit, recorded as plain."""
    import numpy as np

    from pipeline.clv import models as clv

    sales = read("erp_sales.csv")
    sales["order_date"] = sales["order_date"].str[:10].map(date.fromisoformat)
    sales["amount"] = sales["quantity"].astype(float).astype(int) * sales["unit_price"].astype(float)
    per_day = (
        sales.groupby(["customer_id", "order_date"], as_index=False)["amount"]
        .sum()
        .sort_values(["customer_id", "order_date"])
    )
    first = per_day.groupby("customer_id").head(1)
    summary = per_day.groupby("customer_id").agg(
        days=("order_date", "count"), first=("order_date", "min"), last=("order_date", "max"), revenue=("amount", "sum")
    )
    summary["frequency"] = summary["days"] - 1
    summary["recency"] = (summary["last"] - summary["first"]).map(lambda d: d.days) / 7
    summary["t"] = summary["first"].map(lambda d: (DAY - d).days) / 7
    summary["monetary"] = (
        (summary["revenue"] - first.set_index("customer_id")["amount"])
        / summary["frequency"].where(summary["frequency"] > 0)
    ).fillna(0)
    x, t_x, T, m = (summary[c].to_numpy(float) for c in ("frequency", "recency", "t", "monetary"))
    assert summary["frequency"].gt(0).sum() > 50 and summary["frequency"].eq(0).sum() > 20  # repeaters and one-timers
    stored = {
        model: (penalizer, reason, params, n)
        for model, penalizer, reason, params, n in query(
            "select model, penalizer, penalizer_reason, params, n_customers from gold.clv_model"
        )
    }
    plain = {
        "bg_nbd": clv.fit_bgnbd(x, t_x, T, penalizer=0),
        "gamma_gamma": clv.fit_gamma_gamma(np.where(m > 0, x, 0), m, penalizer=0),
    }
    for model, fit in plain.items():
        assert fit.converged, fit.message
        penalizer, reason, params, _n = stored[model]
        assert penalizer == 0 and reason.startswith("none: plain maximum likelihood"), reason
        assert params == pytest.approx(fit.params.as_dict(), rel=1e-4)
    assert stored["bg_nbd"][3] == len(summary)
    gold = {
        cid: (float(f), float(r), float(t))
        for cid, f, r, t in query("select customer_id, frequency, recency, t from gold.customer_clv")
    }
    assert gold == {
        cid: pytest.approx((row.frequency, row.recency, row.t), abs=1e-4) for cid, row in summary.iterrows()
    }
