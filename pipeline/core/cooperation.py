"""Luigi workers cooperating through one luigid: a worker waits for the others and counts their work as done.

Several workers (plain `luigi` commands, `metalayer run` and `metalayer run --join`,
on one host or many) that schedule the same graph on one luigid share its tasks:
luigid gives each task to one of them. Luigi 3.x gets two things wrong for them:

1. A worker with nothing runnable leaves (`[worker] keep_alive = false`) while
   another worker still runs tasks its remaining tasks need; it ends with work
   pending that it could have done, and exits `already_running` (10) or
   `not_run` (25).
2. A worker learns only of the tasks it ran or found complete when it scheduled
   them. A task another worker finished stays "pending" in its execution
   summary, and so does the root task: Luigi reports `NOT_RUN` and the `luigi`
   command exits 25 after a good run, in every worker but the one that happened
   to run the root task.

`install()` changes Luigi in exactly those two places. A worker with nothing to
run stays while luigid says another worker runs one of its tasks (then it takes
what that unblocks). At the end, a task still pending in its summary whose
output is complete now was done by another worker: it counts as already done.
Nothing else is reclassified: a task that failed in this worker stays failed
(exit 30), a missing extract stays missing (20), and a task still incomplete
(not run anywhere, or its upstream failed elsewhere) stays not run (25).
"""

from __future__ import annotations

import logging

from luigi import execution_summary, worker

logger = logging.getLogger("luigi-interface")

_installed = False


def install() -> None:
    """Patch Luigi's worker keep-alive and execution summary (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    luigi_keep_alive = worker.Worker._keep_alive

    def keep_alive(self, get_work_response) -> bool:
        # Called when this worker runs nothing and luigid gave it nothing to run.
        return bool(get_work_response.running_tasks) or luigi_keep_alive(self, get_work_response)

    worker.Worker._keep_alive = keep_alive
    execution_summary._summary_dict = summary_dict


def done_elsewhere(task) -> bool:
    """Whether a task this worker left pending is complete now (another worker did it)."""
    try:
        return bool(task.complete())
    except Exception:  # noqa: BLE001 - a task that can not say is not done
        return False


def summary_dict(luigi_worker) -> dict[str, set]:
    """luigi.execution_summary._summary_dict, with tasks another worker completed counted as already done."""
    set_tasks = execution_summary._partition_tasks(luigi_worker)
    set_tasks["run_by_other_worker"] = execution_summary._get_run_by_other_worker(luigi_worker)
    pending = set_tasks["still_pending_not_ext"] | (set_tasks["run_by_other_worker"] - set_tasks["ever_failed"])
    done = {task for task in pending if done_elsewhere(task)}
    if done:
        for status in ("still_pending_not_ext", "run_by_other_worker"):
            set_tasks[status] -= done
        set_tasks["already_done"] |= done
        logger.info("%d task(s) of this worker's graph were done by other workers", len(done))
    execution_summary._populate_unknown_statuses(set_tasks)
    return set_tasks
