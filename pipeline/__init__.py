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

from pipeline.master import MasterTask  # noqa: E402
from pipeline.tasks_anomalies import Anomalies  # noqa: E402
from pipeline.tasks_bronze import CrmCustomersRaw, ErpProductsRaw, ErpSalesRaw, LandingFile  # noqa: E402
from pipeline.tasks_gold import (  # noqa: E402
    AggDailySales,
    AggMonthlySales,
    BusinessKpis,
    CohortRetention,
    CustomerAnalytics,
    CustomerClv,
    DimCustomer,
    DimDate,
    DimProduct,
    FactSales,
    ProductAnalytics,
)
from pipeline.tasks_silver import SilverCustomers, SilverProducts, SilverQualityGate, SilverSales  # noqa: E402

__all__ = [
    "MasterTask",
    "CrmCustomersRaw",
    "ErpProductsRaw",
    "ErpSalesRaw",
    "LandingFile",
    "SilverCustomers",
    "SilverProducts",
    "SilverSales",
    "SilverQualityGate",
    "DimDate",
    "DimProduct",
    "DimCustomer",
    "FactSales",
    "AggDailySales",
    "AggMonthlySales",
    "CustomerAnalytics",
    "ProductAnalytics",
    "CohortRetention",
    "CustomerClv",
    "BusinessKpis",
    "Anomalies",
]
