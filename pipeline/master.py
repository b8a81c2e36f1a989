"""The top-level entry point: the whole graph for one extract date."""

from __future__ import annotations

import sys
from pathlib import Path

import luigi
from luigi.util import inherits

from pipeline import registry
from pipeline.base import WarehouseTask
from pipeline.core import cooperation, db
from pipeline.core.config import landing_dir as default_landing_dir
from pipeline.core.runs import adopt_plain_run, finish_run, process_run_id

cooperation.install()


@inherits(WarehouseTask)  # its date, run id and landing dir
class MasterTask(luigi.WrapperTask):
    """Everything for one date: `luigi --module pipeline MasterTask --date D --local-scheduler`."""

    def requires(self):
        # Bronze, silver and the quality gate come in through gold's requirements; anomalies after gold.
        return [self.clone(task) for task in (*registry.tasks("gold"), *registry.tasks("anomalies"))]

    def complete(self) -> bool:
        # Luigi asks this first, in the process of the `luigi` command, before it forks worker
        # processes: a plain invocation (no run id) adopts its run there.
        if not self.run_id and _is_luigi_command():
            adopt_plain_run(self.date, self.plain_run_outcome)
        return super().complete()

    def plain_run_outcome(self) -> tuple[str, str | None]:
        """('success', None) when the date's graph is complete, else ('failed', why): missing extracts or the
        tasks left undone."""
        from pipeline.core.landing import missing_landing_files

        undone = [task.task_family for task in self.requires() if not task.complete()]
        if not undone:
            return "success", None
        missing = missing_landing_files(self.landing_dir or default_landing_dir(), self.date)
        if missing:
            return "failed", "missing input: " + ", ".join(missing)
        from pipeline.core.config import watch
        from pipeline.tasks_bronze import LandingReady

        landing = LandingReady(date=self.date, landing_dir=self.landing_dir)
        state = landing.readiness()
        if watch().ready_quiet_seconds > 0 and not state.ready:
            return "failed", f"missing input: {landing.folder} is not complete ({state.reason})"
        return "failed", (
            f"incomplete: the luigi command ended before the graph for {self.date} was done "
            f"(not complete: {', '.join(undone)})"
        )

    def run(self) -> None:
        # Reached only when every requirement succeeded. `metalayer run` closes its
        # own run record; a plain `luigi` invocation has its run closed here.
        if not self.run_id:
            finish_run(db.Warehouse.from_environment().url, process_run_id(), "success")


def _is_luigi_command() -> bool:
    """This process is the `luigi` command (or `python -m luigi`), not a library caller such as the console
    working out a launch plan, which must not open a run of its own."""
    entry = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return entry.name == "luigi" or entry.parent.name == "luigi"
