"""MetaLayer: daily CRM and ERP extracts into a PostgreSQL warehouse through Luigi tasks.

`luigi --module pipeline MasterTask --date D` finds every task here.
"""

import os

import luigi.configuration

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
