"""SLA checks: each layer, and the whole run, must be done within luigi.cfg [sla] minutes of the run's start.

A watcher thread checks while the run goes on (so a hung run is caught) and
once more when it ends. A breach is recorded once per run and layer in
meta.sla_misses and alerted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from psycopg2 import sql

from pipeline.core import db
from pipeline.core.config import postgres
from pipeline.core.config import sla as sla_config

logger = logging.getLogger("metalayer.sla")

LAYERS = ("bronze", "silver", "gold", "run")


def thresholds() -> dict[str, float]:
    config = sla_config()
    return {
        "bronze": config.bronze_minutes,
        "silver": config.silver_minutes,
        "gold": config.gold_minutes,
        "run": config.run_minutes,
    }


def layer_tasks(layer: str, run_date: date) -> list:
    """The tasks whose markers say a layer is done for a date."""
    from pipeline import registry

    return [task_class(date=run_date) for task_class in registry.tasks("gold" if layer == "run" else layer)]


class SlaWatch:
    """Watches one run; `finish()` stops the thread and runs the final check."""

    def __init__(
        self,
        url: str,
        run_id: str,
        run_date: date,
        layers: tuple[str, ...],
        on_breach: Callable[[dict], None],
        started_at: datetime | None = None,
    ):
        self.url, self.run_id, self.run_date, self.layers = url, run_id, run_date, layers
        self.on_breach = on_breach
        self.started_at = started_at or datetime.now(UTC)
        self.limits = thresholds()
        self.breached: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"sla-{run_id}", daemon=True)

    def start(self) -> SlaWatch:
        self._thread.start()
        return self

    @property
    def is_started(self) -> bool:
        return self._thread.ident is not None

    def finish(self) -> list[dict]:
        self._stop.set()
        self._thread.join()
        return self.check(final=True)

    def _watch(self) -> None:
        interval = max(0.05, sla_config().check_interval_seconds)
        while not self._stop.wait(interval):
            try:
                self.check(final=False)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive a database hiccup
                logger.warning("SLA check failed: %s", exc)

    def check(self, *, final: bool) -> list[dict]:
        now = datetime.now(UTC)
        misses = []
        for layer in self.layers:
            if layer in self.breached:
                continue
            deadline = self.started_at + timedelta(minutes=self.limits[layer])
            if now <= deadline:
                continue
            done_at = self._done_at(layer)
            if done_at is None:
                message = (
                    f"{layer} for {self.run_date} not done {self.limits[layer]:g} min after the run started "
                    f"(deadline {deadline:%Y-%m-%d %H:%M:%S} UTC)"
                )
            elif done_at is _NOT_THIS_RUN or done_at <= deadline:
                continue
            else:
                message = (
                    f"{layer} for {self.run_date} took {(done_at - self.started_at).total_seconds() / 60:.2f} "
                    f"min, over its {self.limits[layer]:g} min SLA"
                )
            if not final and done_at is not None:
                continue  # finished late: recorded by the final check, once
            misses.append(self._record(layer, deadline, message))
        return misses

    def _done_at(self, layer: str):
        """When this run finished the layer, _NOT_THIS_RUN if it was already done, None if it is not done."""
        tasks = layer_tasks(layer, self.run_date)
        marker_table = sql.Identifier(*postgres().marker_table.split("."))
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL("select count(*) from {} where update_id = any(%s)").format(marker_table),
                ([task.task_id for task in tasks],),
            )
            if cur.fetchone()[0] < len(tasks):
                return None
            cur.execute(
                """select max(finished_at) from meta.task_runs
                   where run_id = %s and status in ('success', 'skipped') and task_family = any(%s)""",
                (self.run_id, _families(layer)),
            )
            finished = cur.fetchone()[0]
        return finished if finished is not None else _NOT_THIS_RUN

    def _record(self, layer: str, deadline: datetime, message: str) -> dict:
        self.breached.add(layer)
        with db.transaction(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                """insert into meta.sla_misses (run_id, run_date, layer, threshold_minutes, expected_by, message)
                   values (%s, %s, %s, %s, %s, %s)""",
                (self.run_id, self.run_date, layer, self.limits[layer], deadline, message),
            )
        miss = {"layer": layer, "expected_by": deadline, "message": message, "threshold_minutes": self.limits[layer]}
        self.on_breach(miss)
        return miss


_NOT_THIS_RUN = object()


def _families(layer: str) -> list[str]:
    import luigi

    from pipeline.base import WarehouseTask

    layers = ("bronze", "silver", "gold") if layer == "run" else (layer,)
    return sorted(
        family
        for family, task_class in luigi.task_register.Register._get_reg().items()
        if isinstance(task_class, type) and issubclass(task_class, WarehouseTask) and task_class.layer in layers
    )
