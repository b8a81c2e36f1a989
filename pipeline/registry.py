"""The one list of the warehouse's tasks, and every table list derived from what they declare.

Each task declares its ``layer``, the ``table`` it builds, the ``model`` file
that defines that table's rows, the other tables it ``writes`` for users and
the ``state`` tables of its own bookkeeping (pipeline/base.py). The run
summary, the SLA's layer tasks, the console's rows per layer, retention and
MasterTask read the lists below; tests/test_registry.py fails when a table of
the bronze, silver or gold schema has no task, or a task's model no file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.base import WarehouseTask
from pipeline.tasks_anomalies import Anomalies
from pipeline.tasks_bronze import CrmCustomersRaw, ErpProductsRaw, ErpSalesRaw
from pipeline.tasks_gold import (
    AggDailySales,
    AggMonthlySales,
    BusinessKpis,
    CohortRetention,
    CustomerAnalytics,
    CustomerClv,
    CustomerPurchaseSummary,
    DimCustomer,
    DimDate,
    DimProduct,
    FactSales,
    ProductAnalytics,
)
from pipeline.tasks_silver import SilverCustomers, SilverProducts, SilverQualityGate, SilverSales

# In build order: a task comes after the tasks it requires.
TASKS: tuple[type[WarehouseTask], ...] = (
    CrmCustomersRaw,
    ErpProductsRaw,
    ErpSalesRaw,
    SilverCustomers,
    SilverProducts,
    SilverSales,
    SilverQualityGate,
    DimDate,
    DimProduct,
    DimCustomer,
    FactSales,
    AggDailySales,
    AggMonthlySales,
    CustomerAnalytics,
    ProductAnalytics,
    CohortRetention,
    CustomerPurchaseSummary,
    CustomerClv,
    BusinessKpis,
    Anomalies,
)

LAYERS = ("bronze", "silver", "gold", "anomalies")


@dataclass(frozen=True)
class Table:
    name: str  # schema-qualified
    task: type[WarehouseTask]  # the task that builds it, or the first that writes it
    role: str  # "built" (the task's table), "written" (beside its table) or "state" (its bookkeeping)

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]


def tasks(layer: str | None = None) -> tuple[type[WarehouseTask], ...]:
    """The tasks of a layer (every task without one), in build order."""
    if layer is not None and layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
    return tuple(task for task in TASKS if layer is None or task.layer == layer)


def tables() -> list[Table]:
    """Every table a task writes, once: built tables first, then what the tasks write beside them."""
    found: dict[str, Table] = {}
    for role, names in (
        ("built", lambda task: (task.table,)),
        ("written", lambda task: task.writes),
        ("state", lambda task: task.state),
    ):
        for task in TASKS:
            for name in names(task):
                found.setdefault(name, Table(name, task, role))
    return list(found.values())


def data_tables(*schemas: str) -> list[str]:
    """The tables of these schemas that users read (built or written, not bookkeeping), in registry order."""
    return [table.name for table in tables() if table.role != "state" and table.schema in schemas]


def task_of(table: str) -> type[WarehouseTask]:
    """The task that builds a table (or first writes it)."""
    for entry in tables():
        if entry.name == table:
            return entry.task
    raise KeyError(f"no task writes {table}")


def silver_tables() -> dict[str, str]:
    """Source name -> the silver table it feeds."""
    return {task.spec.source.name: task.table for task in tasks("silver") if hasattr(task, "spec")}


def bronze_row_tables() -> list[str]:
    """The tables that hold bronze's loaded lines (the contract's views read them)."""
    return [task.rows_table for task in tasks("bronze")]
