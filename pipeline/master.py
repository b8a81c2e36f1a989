"""The top-level entry point: the whole graph for one extract date."""

from __future__ import annotations

import luigi

from pipeline import db
from pipeline.runs import finish_run, process_run_id
from pipeline.tasks_gold import GOLD_TASKS


class MasterTask(luigi.WrapperTask):
    """Everything for one date: `luigi --module pipeline MasterTask --date D --local-scheduler`."""

    date = luigi.DateParameter()
    run_id = luigi.Parameter(default="", significant=False)
    landing_dir = luigi.Parameter(default="", significant=False)

    def requires(self):
        # Bronze, silver and the quality gate come in through gold's requirements.
        return [task(date=self.date, run_id=self.run_id, landing_dir=self.landing_dir) for task in GOLD_TASKS]

    def run(self) -> None:
        # Reached only when every requirement succeeded. `metalayer run` closes its
        # own run record; a plain `luigi` invocation has its run closed here.
        if not self.run_id:
            finish_run(db.database_url(), process_run_id(), "success")
