"""An HTTP JSON API source against a real local HTTP server (127.0.0.1, a thread of this test).

The server pages a product list (page numbers, a cursor or Link headers) and
plays scripted faults on chosen pages: a 429 with Retry-After, a 500, a page
slower than the client's timeout, a connection cut before the body ends, a
page cut mid-JSON. The extract retries what is transient and fails cleanly on
what is not; the loaded rows are compared with the served records as the CSV
module reads them from the generator's file.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import extractors
from pipeline.core.db import Warehouse
from pipeline.core.sources import ERP_PRODUCTS, SourceConfigError, parse_source_settings, source_settings
from pipeline.extractors import http as http_source
from pipeline.operations.runner import run_pipeline
from pipeline.sample.generate import generate

DAY = date(2026, 11, 20)
NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?")
PAGE_SIZE = 7


# ---------------------------------------------------------------- the API


@dataclass
class Api:
    """What the server serves and how it misbehaves; `log` has one (seconds, page, status) per request."""

    records: list
    pagination: str = "page"  # page | cursor | link
    faults: dict[int, list[str]] = field(default_factory=dict)  # page index -> faults played in order
    token: str | None = None
    slow_seconds: float = 1.5
    log: list[tuple[float, int, int, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, index: int) -> list:
        return self.records[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]

    def requests_of(self, index: int) -> list[tuple[float, int, int, dict]]:
        return [entry for entry in self.log if entry[1] == index]


def record_json(record) -> str:
    """A record as an API writes it: numeric fields as JSON numbers with their exact text."""
    if not isinstance(record, dict):
        return json.dumps(record)
    members = []
    for key, value in record.items():
        text = value if isinstance(value, str) and NUMBER.fullmatch(value) else json.dumps(value)
        members.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(members) + "}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        api: Api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if api.pagination == "page":
            index = int(query.get("page", "1")) - 1
            assert query.get("page_size") == str(PAGE_SIZE)
        elif api.pagination == "cursor":
            index = int(query["cursor"].removeprefix("c")) if "cursor" in query else 0
        else:
            index = int(query.get("p", "0"))
        with api.lock:
            fault = api.faults[index].pop(0) if api.faults.get(index) else None
        status = {"429": 429, "429-date": 429, "500": 500, "401": 401}.get(fault, 200)
        if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
            status, fault = 401, "401"
        with api.lock:
            api.log.append((time.monotonic(), index, status, query))
        try:
            self._answer(api, index, fault, status)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the slow page)

    def _answer(self, api: Api, index: int, fault: str | None, status: int) -> None:
        if status != 200:
            self.send_response(status)
            if fault == "429":
                self.send_header("Retry-After", "1")
            elif fault == "429-date":
                later = datetime.now(UTC) + timedelta(seconds=2)
                self.send_header("Retry-After", format_datetime(later, usegmt=True))
            body = b'{"error": "try again"}' if status != 401 else b'{"error": "unauthorized"}'
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if fault == "slow":
            time.sleep(api.slow_seconds)
        records = api.page(index)
        last = (index + 1) * PAGE_SIZE >= len(api.records)
        body = '{"data": [' + ", ".join(record_json(r) for r in records) + "]"
        if api.pagination == "cursor":
            body += ', "meta": {"next_cursor": ' + ("null" if last else f'"c{index + 1}"') + "}"
        body = (body + "}").encode("utf-8")
        if fault == "no-records":
            body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if api.pagination == "link" and not last:
            self.send_header("Link", f'</products?p={index + 1}>; rel="next", </products?p=999>; rel="last"')
        if fault == "truncated":
            body = body[: len(body) // 2]  # a page cut mid-JSON, delivered as if whole
        if fault == "cut-connection":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def serve():
    servers = []

    def start(api: Api) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.api = api
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/products"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- data and settings


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("http-landing")
    generate(landing, DAY, days=1, customers=300, orders=600, products=30)
    return landing


def served_products(landing: Path) -> list[dict]:
    """The generator's products as the CSV module reads them: what the API serves."""
    with (landing / DAY.isoformat() / "erp_products.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def api_landing(small_landing: Path, tmp_path: Path) -> Path:
    """The small landing folder without its products file: products come from the API."""
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    (landing / DAY.isoformat() / "erp_products.csv").unlink()
    return landing


def use_sources(monkeypatch, tmp_path: Path, url: str, **extract) -> None:
    settings = {
        "url": url,
        "records": "data",
        "pagination": "page",
        "page_size": PAGE_SIZE,
        "timeout_seconds": 0.5,
        "max_retries": 3,
        "backoff_seconds": 0.1,
        "rate_limit_per_second": 20,
        **extract,
    }
    lines = ["[sources.erp_products]", 'kind = "http"', "[sources.erp_products.extract]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items() if not isinstance(value, dict)]
    path = tmp_path / "sources.toml"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("METALAYER_SOURCES_FILE", str(path))


def bronze_products(query) -> list[tuple]:
    columns = ", ".join(ERP_PRODUCTS.columns)
    return query(f"select {columns} from bronze.erp_products_raw order by _line_number")


def as_rows(records: list[dict]) -> list[tuple]:
    return [tuple(record[column] or None for column in ERP_PRODUCTS.columns) for record in records]


# ---------------------------------------------------------------- tests


def test_pages_through_a_429_a_500_a_slow_page_and_a_cut_connection_and_loads_exactly_the_served_records(
    warehouse, query, serve, tmp_path, monkeypatch, small_landing
):
    products = served_products(small_landing)
    pages = -(-len(products) // PAGE_SIZE)
    assert pages >= 4 and len(products) % PAGE_SIZE  # the last page is short: that ends the paging
    api = Api(products, faults={0: ["slow"], 1: ["429"], 2: ["500", "cut-connection"], 3: ["429-date"]})
    use_sources(monkeypatch, tmp_path, serve(api))
    result = run_pipeline(DAY, landing=api_landing(small_landing, tmp_path), trigger="test", upto="bronze")
    assert result.success, result.error
    # Loaded rows equal the served records, read a second way (csv module), numbers with their own text.
    assert bronze_products(query) == as_rows(products)
    assert query("select rows_loaded, rows_rejected from meta.ingested_files where source_name = 'erp_products'") == [
        (len(products), 0)
    ]
    # Every page was asked for once, plus one retry per fault; Retry-After was waited for.
    assert [index for _, index, status, _ in api.log if status == 200] == sorted(
        [*range(pages), 0, 2]
    )  # the slow and the cut page answered 200 before the retry
    assert len(api.log) == pages + 5
    (first_429, _, _, _), (retry, _, _, _) = api.requests_of(1)
    assert retry - first_429 >= 0.95
    dated = api.requests_of(3)
    assert dated[1][0] - dated[0][0] >= 0.9  # an HTTP-date Retry-After about 2 s ahead (second resolution)
    gaps = [b[0] - a[0] for a, b in zip(api.log, api.log[1:], strict=False)]
    assert min(gaps) >= 1 / 20 - 0.01  # rate_limit_per_second = 20


def test_a_page_cut_mid_json_fails_the_extract_permanently_and_loads_nothing(
    warehouse, query, serve, tmp_path, monkeypatch, small_landing
):
    api = Api(served_products(small_landing), faults={2: ["truncated"]})
    use_sources(monkeypatch, tmp_path, serve(api))
    result = run_pipeline(DAY, landing=api_landing(small_landing, tmp_path), trigger="test", upto="bronze")
    assert not result.success
    (failed,) = [t for t in result.tasks if t["status"] == "failed"]
    assert failed["task_family"] == "ErpProductsRaw"
    assert failed["error"].startswith("HttpSourceError: GET ")
    assert "not valid JSON" in failed["error"] and "What to do:" in failed["error"]
    assert len(api.requests_of(2)) == 1  # permanent: neither the client nor Luigi asks again
    assert bronze_products(query) == []
    assert query("select count(*) from meta.ingested_files where source_name = 'erp_products'") == [(0,)]
    assert query("select count(*) from meta.table_updates where target_table = 'bronze.erp_products_raw'") == [(0,)]
    # No partial extract is left for this date (other tests' dates may hold their finished ones).
    assert not list((Path(warehouse_home()) / "extracts" / "erp_products" / DAY.isoformat()).rglob("*.jsonl*"))
    # The file sources of the date loaded as usual.
    assert {t["task_family"] for t in result.tasks if t["status"] == "success"} == {"CrmCustomersRaw", "ErpSalesRaw"}


def warehouse_home() -> str:
    from pipeline.core import db

    return str(db.metalayer_home())


def test_a_missing_records_array_is_permanent_and_a_5xx_beyond_the_retries_is_retried_by_luigi(
    warehouse, query, serve, tmp_path, monkeypatch, small_landing
):
    api = Api(served_products(small_landing), faults={1: ["no-records"]})
    use_sources(monkeypatch, tmp_path, serve(api))
    landing = api_landing(small_landing, tmp_path)
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    (failed,) = [t for t in result.tasks if t["status"] == "failed"]
    assert "the records array at 'data' is missing" in failed["error"]
    # A 500 on every attempt: the client tries max_retries + 1 times, then Luigi retries the task
    # ([scheduler] retry_count = 3 in luigi.cfg) before the run fails; nothing is loaded.
    api = Api(served_products(small_landing), faults={1: ["500"] * 100})
    use_sources(monkeypatch, tmp_path, serve(api), max_retries=2, backoff_seconds=0.05)
    result = run_pipeline(DAY, landing=landing, trigger="test", upto="bronze")
    assert not result.success
    errors = [t["error"] for t in result.tasks if t["task_family"] == "ErpProductsRaw"]
    assert len(errors) == 3 and all(e.startswith("HttpSourceUnavailable: GET ") for e in errors)
    assert "HTTP 500 Internal Server Error, after 3 attempt(s)" in errors[0]
    assert len(api.requests_of(1)) == 3 * 3
    assert bronze_products(query) == []
    assert query("select count(*) from meta.ingested_files where source_name = 'erp_products'") == [(0,)]


def test_cursor_pages_with_the_auth_header_from_the_environment(serve, tmp_path, monkeypatch, small_landing, warehouse):
    products = served_products(small_landing)
    api = Api(products, pagination="cursor", token="s3cret")  # noqa: S106 - a test token
    use_sources(
        monkeypatch,
        tmp_path,
        serve(api),
        pagination="cursor",
        cursor_field="meta.next_cursor",
        auth_header="Authorization",
        auth_env="TEST_API_TOKEN",
    )
    monkeypatch.delenv("TEST_API_TOKEN", raising=False)
    settings = source_settings("erp_products")
    with pytest.raises(http_source.HttpSourceError, match="TEST_API_TOKEN"):
        extractors.extract(settings, DAY, tmp_path, Warehouse(warehouse))
    monkeypatch.setenv("TEST_API_TOKEN", "wrong")
    with pytest.raises(http_source.HttpSourceError, match="HTTP 401"):
        extractors.extract(settings, DAY, tmp_path, Warehouse(warehouse))
    monkeypatch.setenv("TEST_API_TOKEN", "Bearer s3cret")
    extracted = extractors.extract(settings, DAY, tmp_path, Warehouse(warehouse))
    lines = extracted.path.read_text().splitlines()
    assert [json.loads(line, parse_float=str, parse_int=str) for line in lines] == products
    assert "s3cret" not in extracted.description + extracted.path.read_text()
    cursors = [entry[3].get("cursor") for entry in api.log if entry[2] == 200]
    assert cursors == [None, *(f"c{i}" for i in range(1, len(cursors)))]


def test_link_header_pages_and_records_that_are_not_flat_objects_are_quarantined_line_by_line(
    warehouse, query, serve, tmp_path, monkeypatch, small_landing
):
    products = served_products(small_landing)[:9]
    odd = [
        products[0],
        5,
        {**products[1], "product_name": {"en": "nested"}},
        "text",
        products[2],
        {"product_id": "X1", "list_price": float("nan")},
        *products[3:],
    ]
    api = Api(odd, pagination="link")
    use_sources(monkeypatch, tmp_path, serve(api), pagination="link")
    result = run_pipeline(DAY, landing=api_landing(small_landing, tmp_path), trigger="test", upto="bronze")
    assert result.success, result.error
    assert [index for _, index, _, _ in api.log] == [0, 1]  # two pages: the second has no rel="next"
    assert bronze_products(query) == as_rows([products[0], *products[2:]])
    assert query(
        "select line_number, rule_name from silver.quarantine where source_table = "
        "'bronze.erp_products_raw' order by line_number"
    ) == [(2, "invalid_json"), (3, "invalid_json"), (4, "invalid_json"), (6, "invalid_json")]


def test_products_from_the_api_with_customers_and_sales_from_files_in_one_run(
    warehouse, query, serve, tmp_path, monkeypatch, small_landing
):
    products = served_products(small_landing)
    api = Api(products, faults={1: ["429"]})
    use_sources(monkeypatch, tmp_path, serve(api), since_param="updated_since")
    landing = api_landing(small_landing, tmp_path)
    result = run_pipeline(DAY, landing=landing, trigger="test")
    assert result.success, result.error
    # The same run through files gives the same gold: the products came in whole.
    loaded = query("select product_id, list_price from gold.dim_product order by product_id")
    assert len(loaded) == len({p["product_id"] for p in products if p["product_id"]}) > 0
    assert query("select count(*) from gold.fact_sales")[0][0] > 0
    assert query("select source_name, rows_loaded from meta.ingested_files order by 1") == [
        ("crm_customers", query("select count(*) from bronze.crm_customers_raw")[0][0]),
        ("erp_products", len(products)),
        ("erp_sales", query("select count(*) from bronze.erp_sales_raw")[0][0]),
    ]
    if query("select to_regclass('meta.source_watermarks') is null")[0][0]:
        pytest.skip("meta.source_watermarks (sql/schema/015_sources.sql) is not in this schema yet")
    # The next date asks for what changed since the highest updated_at loaded.
    mark = max(p["updated_at"] for p in products)
    assert query("select high_watermark, low_watermark, rows_extracted from meta.source_watermarks") == [
        (mark, None, len(products))
    ]
    assert all("updated_since" not in entry[3] for entry in api.log)
    next_day = DAY + timedelta(days=1)
    shutil.copytree(landing / DAY.isoformat(), landing / next_day.isoformat())
    api.log.clear()
    assert run_pipeline(next_day, landing=landing, trigger="test", upto="bronze").success
    assert {entry[3].get("updated_since") for entry in api.log} == {mark}


# ---------------------------------------------------------------- helpers, without a server


def test_retry_after_in_seconds_or_as_an_http_date():
    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert http_source.retry_after_seconds("7", now) == 7.0
    assert http_source.retry_after_seconds("Fri, 20 Nov 2026 12:00:30 GMT", now) == 30.0
    assert http_source.retry_after_seconds("Fri, 20 Nov 2026 11:00:00 GMT", now) == 0.0
    assert http_source.retry_after_seconds("soon", now) is None
    assert http_source.retry_after_seconds(None, now) is None


def test_link_header_next_target():
    header = '<https://api.example.com/p?page=3>; rel="next", <https://api.example.com/p?page=9>; rel="last"'
    assert http_source.next_link(header, "https://api.example.com/p?page=2") == "https://api.example.com/p?page=3"
    assert (
        http_source.next_link('</p?page=4>; rel="prev next"', "https://a.example/p?page=3")
        == "https://a.example/p?page=4"
    )
    assert http_source.next_link('<https://a.example/p?page=1>; rel="prev"', "https://a.example/") is None
    assert http_source.next_link(None, "https://a.example/") is None


def test_records_are_written_back_with_the_apis_own_number_text_and_keys():
    page = http_source.parse_page(b'{"data": [{"a": 1.10, "b": 1e3, "a": "x", "c": "\\u0000\\u00e9"}]}')
    (record,) = page["data"]
    assert http_source.dump_record(record) == '{"a": 1.10, "b": 1e3, "a": "x", "c": "\\u0000\\u00e9"}'
    assert http_source.highest(["2026-01-02T00:00:00Z", "2026-01-01T23:00:00-05:00"]) == "2026-01-01T23:00:00-05:00"
    assert http_source.highest(["9", "10"]) == "10"


@pytest.mark.parametrize(
    ("extract", "message"),
    [
        ({"url": "ftp://example.com/x"}, "http:// or https://"),
        ({"url": "http://x/", "pagination": "offset"}, "pagination must be one of"),
        ({"url": "http://x/", "auth_header": "Authorization"}, "auth_header and auth_env go together"),
        ({"url": "http://x/", "page_size": "10"}, "page_size has the wrong type"),
        ({"url": "http://x/", "password": "p"}, "unknown key(s) password"),
    ],
)
def test_wrong_extract_settings_name_the_key(extract, message):
    text = '[sources.erp_products]\nkind = "http"\n[sources.erp_products.extract]\n' + "\n".join(
        f"{key} = {json.dumps(value)}" for key, value in extract.items()
    )
    settings = parse_source_settings(text)["erp_products"]
    with pytest.raises(SourceConfigError, match=re.escape(message)):
        http_source.http_settings(settings)
