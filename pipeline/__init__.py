"""MetaLayer: daily CRM and ERP extracts into a PostgreSQL warehouse through Luigi tasks.

`luigi --module pipeline MasterTask --date D` finds every task here.
"""

import os

# The parallelism is Luigi's workers, a process each. An OpenBLAS thread pool per process on top of them
# only contends for the same cores: with it the CLV fits' dot products took twice as long (0.5 -> 0.2 s on
# 76K customers, docs/benchmarks.md). Read when numpy is first loaded; a value in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import luigi.configuration  # noqa: E402

from pipeline.core.db import REPO_ROOT

# The repository's luigi.cfg applies wherever luigi is started from; a file named
# by LUIGI_CONFIG_PATH is read again after it, so its settings win.
luigi.configuration.add_config_path(str(REPO_ROOT / "luigi.cfg"))
if os.environ.get("LUIGI_CONFIG_PATH"):
    luigi.configuration.add_config_path(os.environ["LUIGI_CONFIG_PATH"])

from pipeline import registry  # noqa: E402
from pipeline.master import MasterTask  # noqa: E402
from pipeline.tasks_bronze import LandingFile  # noqa: E402

# Every task of the registry by its name: pipeline.FactSales, ...
globals().update({task.__name__: task for task in registry.TASKS})

__all__ = ["MasterTask", "LandingFile", *(task.__name__ for task in registry.TASKS)]
