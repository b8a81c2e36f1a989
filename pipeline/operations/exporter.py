"""`metalayer exporter`: a Prometheus endpoint over the meta tables.

Every scrape reads the warehouse in one read-only snapshot (the queries of
``sql/metrics/``, assembled by ``pipeline.operations.metrics.warehouse_metrics``); scrapes
within luigi.cfg ``[metrics] exporter_cache_seconds`` of a read share it. The
exporter never writes: the schema comes from ``metalayer db bootstrap`` or the
first run. When the database cannot be read the endpoint still answers, with
``metalayer_up 0``, so Prometheus can tell a broken warehouse from a dead
exporter.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from pipeline.core import db
from pipeline.operations.metrics import warehouse_metrics

log = logging.getLogger(__name__)


class WarehouseCollector(Collector):
    def __init__(self, url: str, *, cache_seconds: float = 5.0, statement_timeout_seconds: float = 10.0):
        self.url = url
        self.cache_seconds = cache_seconds
        self.statement_timeout_ms = int(statement_timeout_seconds * 1000)
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._families: list[Metric] = []
        self._ok = False
        self._read_seconds = 0.0

    def describe(self) -> list[Metric]:
        return []  # registering must not touch the database

    def _read(self) -> None:
        started = time.perf_counter()
        try:
            conn = db.connect(self.url, application_name="metalayer-exporter")
            try:
                # One snapshot for every query of a scrape, so its series agree with each other.
                conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
                with conn, conn.cursor() as cur:
                    cur.execute("set local statement_timeout = %s", (self.statement_timeout_ms,))
                    self._families = warehouse_metrics(cur)
                self._ok = True
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - a scrape reports the failure as metalayer_up 0
            log.warning("cannot read the warehouse: %s: %s", type(exc).__name__, exc)
            self._families, self._ok = [], False
        self._read_seconds = time.perf_counter() - started
        self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                self._read()
            families, ok, seconds = list(self._families), self._ok, self._read_seconds
        yield from families
        up = GaugeMetricFamily("metalayer_up", "1 when the exporter's last read of the meta tables succeeded")
        up.add_metric([], 1.0 if ok else 0.0)
        took = GaugeMetricFamily(
            "metalayer_exporter_read_duration_seconds", "How long the exporter's last read of the meta tables took"
        )
        took.add_metric([], seconds)
        yield up
        yield took


def build_registry(url: str) -> CollectorRegistry:
    from pipeline.core.config import metrics

    config = metrics()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        WarehouseCollector(
            url,
            cache_seconds=config.exporter_cache_seconds,
            statement_timeout_seconds=config.exporter_statement_timeout_seconds,
        )
    )
    return registry


def serve(port: int = 9108, address: str = "0.0.0.0") -> int:  # noqa: S104 - an exporter listens for Prometheus
    """Serve /metrics until SIGTERM or SIGINT; returns the exit code."""
    from prometheus_client import start_http_server

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = db.Warehouse.from_environment().url
    try:
        server, thread = start_http_server(port, addr=address, registry=build_registry(url))
    except OSError as exc:
        print(f"metalayer exporter: cannot listen on {address}:{port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    host, bound_port = server.server_address[:2]
    print(f"metalayer exporter: serving http://{host}:{bound_port}/metrics", file=sys.stderr, flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    return 0
