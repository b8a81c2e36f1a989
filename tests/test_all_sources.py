"""One run, three kinds of source: customers from a database, products from an HTTP API, sales from files.

Two extract dates: the second picks up the CRM's update, insert, late-committed
row and delete, and the API's new product, incrementally; silver then equals
both sources, and the facts hold every sales line.
"""

from __future__ import annotations

import json
import uuid

import pytest

from pipeline.core import db
from pipeline.operations.runner import run_pipeline
from tests.conftest import write_landing
from tests.test_db_source import (
    BEFORE,
    CRM_CHANGES,
    CRM_DDL,
    DAYS,
    SALES,
    assert_silver_matches_crm,
    crm_query,
)
from tests.test_http_source import PAGE_SIZE, Api, serve  # noqa: F401 - serve is a fixture used below

DSN_ENV = "METALAYER_TEST_ALL_SOURCES_CRM_DSN"
PRODUCTS = [
    {
        "product_id": "P1",
        "product_name": "Widget",
        "category": "Tools",
        "unit_cost": "1.00",
        "list_price": "2.50",
        "updated_at": "2024-01-01T00:00:00Z",
    },
    {
        "product_id": "P2",
        "product_name": "Gadget",
        "category": "Tools",
        "unit_cost": "3.00",
        "list_price": "7.25",
        "updated_at": "2024-01-02T00:00:00Z",
    },
]
NEW_PRODUCT = {
    "product_id": "P3",
    "product_name": "Gizmo",
    "category": "Toys",
    "unit_cost": "2.00",
    "list_price": "4.00",
    "updated_at": f"{DAYS[0]}T06:00:00Z",
}


@pytest.fixture
def sources(server_url, warehouse, tmp_path, monkeypatch, serve, luigi_setting):  # noqa: F811 - the fixture
    name = f"crm_{uuid.uuid4().hex[:12]}"
    crm_url = db.create_database(name, server_url)
    crm_query(crm_url, CRM_DDL)
    api = Api(list(PRODUCTS))
    extract = {
        "url": serve(api),
        "records": "data",
        "pagination": "page",
        "page_size": PAGE_SIZE,
        "timeout_seconds": 2,
        "max_retries": 2,
        "backoff_seconds": 0.1,
        "since_param": "updated_since",
    }
    (tmp_path / "sources.toml").write_text(
        "\n".join(
            [
                "[sources.crm_customers]",
                'kind = "postgres"',
                "[sources.crm_customers.extract]",
                f'dsn_env = "{DSN_ENV}"',
                'table = "crm.customers"',
                'watermark_column = "updated_at"',
                'lookback = "10 minutes"',
                "key_snapshot_every = 1",
                "[sources.erp_products]",
                'kind = "http"',
                "[sources.erp_products.extract]",
                *[f"{key} = {json.dumps(value)}" for key, value in extract.items()],
            ]
        )
        + "\n"
    )
    monkeypatch.setenv(DSN_ENV, crm_url)
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(tmp_path / "sources.toml"))
    luigi_setting("quality", "on_breach", "warn")  # the files hold a sale of a customer deleted later
    yield crm_url, api
    db.drop_database(name, server_url)


def sales_landing(tmp_path, days):
    landing = tmp_path / "landing"
    for day in days:
        write_landing(
            landing,
            day.isoformat(),
            {"erp_sales.csv": "order_id,customer_id,product_id,order_date,quantity,unit_price\n" + SALES[day]},
        )
    return landing


def silver_products(query) -> list[tuple]:
    return query("select product_id, product_name, list_price::text, updated_at from silver.products order by 1")


def as_silver(products) -> list[tuple]:
    from datetime import datetime

    return sorted(
        (
            p["product_id"],
            p["product_name"],
            p["list_price"],
            datetime.fromisoformat(p["updated_at"].replace("Z", "+00:00")),
        )
        for p in products
    )


def test_customers_from_a_database_products_from_an_api_and_sales_from_files_in_one_run(sources, query, tmp_path):
    crm_url, api = sources
    landing = sales_landing(tmp_path, DAYS[:2])

    first = run_pipeline(DAYS[0], landing=landing, trigger="test")
    assert first.success, first.error
    assert_silver_matches_crm(query, crm_url)
    assert silver_products(query) == as_silver(PRODUCTS)
    assert query("select source_name, rows_loaded, rows_rejected from meta.ingested_files order by 1") == [
        ("crm_customers", 4, 0),
        ("erp_products", 2, 0),
        ("erp_sales", 2, 0),
    ]
    assert sorted(query("select source_name, high_watermark from meta.source_watermarks")) == [
        ("crm_customers", f"{BEFORE} 12:00:00.123456+00"),
        ("erp_products", "2024-01-02T00:00:00Z"),
    ]

    # Between the dates: the CRM updates C2, adds C5, deletes C3 and commits C6 late; the API adds P3.
    crm_query(crm_url, CRM_CHANGES)
    api.records.append(NEW_PRODUCT)
    api.log.clear()
    second = run_pipeline(DAYS[1], landing=landing, trigger="test")
    assert second.success, second.error
    assert_silver_matches_crm(query, crm_url)
    # Incremental: the API was asked only for what changed since the stored mark.
    assert {entry[3].get("updated_since") for entry in api.log} == {"2024-01-02T00:00:00Z"}
    assert silver_products(query) == as_silver([*PRODUCTS, NEW_PRODUCT])
    assert query("select customer_id from silver.customers where is_deleted") == [("C3",)]
    assert query("select customer_id, is_current from gold.dim_customer where customer_id = 'C3'") == [("C3", False)]
    # Every sales line of both files is a fact, the deleted customer's too.
    lines = [line.split(",")[0] for day in DAYS[:2] for line in SALES[day].splitlines()]
    assert [order for (order,) in query("select order_id from gold.fact_sales order by 1")] == sorted(lines)
    assert query("select count(*) from meta.pipeline_runs where status <> 'success'") == [(0,)]
