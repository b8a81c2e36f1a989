"""`luigi --module pipeline MasterTask` as a user runs it: exit codes and run records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_landing
from tests.test_bronze import CUSTOMERS_HEADER, PRODUCTS, SALES_HEADER

CUSTOMER_C1 = "C1,Ann,Lee,ann@example.com,4155550123,1 Main St,Boston,MA,New England,2024-01-01,2024-01-01T00:00:00Z\n"
LUIGI = str(Path(sys.executable).with_name("luigi"))


def luigi_cli(day: str, landing: Path, cwd: Path) -> subprocess.CompletedProcess:
    # Started outside the repository: the package must bring its own luigi.cfg.
    return subprocess.run(
        [
            LUIGI,
            "--module",
            "pipeline",
            "MasterTask",
            "--date",
            day,
            "--landing-dir",
            str(landing),
            "--local-scheduler",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )


def test_success_exits_zero_and_records_the_run(warehouse, query, tmp_path):
    landing = write_landing(
        tmp_path / "landing",
        "2026-11-20",
        {
            "crm_customers.csv": CUSTOMERS_HEADER + CUSTOMER_C1,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": SALES_HEADER + "O1,C1,P1,2026-01-02,2,2.50\n",
        },
    )
    done = luigi_cli("2026-11-20", landing, tmp_path)
    assert done.returncode == 0, done.stderr
    assert query("select trigger, status from meta.pipeline_runs") == [("cli", "success")]
    # Three bronze loads, three silver merges, the quality gate, three gold dimensions, the fact,
    # seven aggregates and marts, and the anomaly scores.
    assert query("select count(*) from meta.table_updates") == [(20,)]  # one marker per task
    assert query("select score from meta.quality_scores where table_name = '*'") == [(1,)]


def test_failed_task_exits_non_zero(warehouse, query, tmp_path):
    landing = write_landing(
        tmp_path / "landing",
        "2026-11-20",
        {
            "crm_customers.csv": CUSTOMERS_HEADER,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": "order_id,customer\nO1,C1\n",
        },
    )
    done = luigi_cli("2026-11-20", landing, tmp_path)
    assert done.returncode == 30  # luigi.cfg [retcode] task_failed
    ((status, error),) = query("select status, error from meta.pipeline_runs")
    assert status == "failed" and "ErpSalesRaw failed" in error and "erp_sales.csv:1:" in error


def test_missing_extract_is_missing_input_not_a_traceback(warehouse, query, tmp_path):
    (tmp_path / "landing").mkdir()
    done = luigi_cli("2026-11-21", tmp_path / "landing", tmp_path)
    assert done.returncode == 20  # luigi.cfg [retcode] missing_data
    assert "Traceback" not in done.stderr + done.stdout
    assert "LandingFile" in done.stderr + done.stdout


def seed_day(tmp_path: Path, day: str = "2026-11-20") -> Path:
    return write_landing(
        tmp_path / "landing",
        day,
        {
            "crm_customers.csv": CUSTOMERS_HEADER + CUSTOMER_C1,
            "erp_products.csv": PRODUCTS,
            "erp_sales.csv": SALES_HEADER + "O1,C1,P1,2026-01-02,2,2.50\n",
        },
    )


def test_forked_workers_record_one_run_of_the_command(warehouse, query, tmp_path):
    landing = seed_day(tmp_path)
    command = [
        LUIGI,
        "--module",
        "pipeline",
        "MasterTask",
        "--date",
        "2026-11-20",
        "--landing-dir",
        str(landing),
        "--local-scheduler",
        "--workers",
        "2",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    ((run_id, status, host_pid, finished),) = query(
        "select run_id, status, pid, finished_at is not null from meta.pipeline_runs"
    )
    assert (status, host_pid, finished) == ("success", process.pid, True)  # the command's process, not a worker's
    assert query("select distinct run_id from meta.task_runs") == [(run_id,)]
    assert query("select count(distinct pid) from meta.task_runs")[0][0] > 1  # tasks ran in forked workers
    assert query("select count(*) from meta.task_runs where status <> 'success'") == [(0,)]


def test_missing_extract_closes_the_run_as_failed(warehouse, query, tmp_path):
    landing = write_landing(
        tmp_path / "landing",
        "2026-11-20",
        {"crm_customers.csv": CUSTOMERS_HEADER + CUSTOMER_C1, "erp_products.csv": PRODUCTS},
    )
    done = luigi_cli("2026-11-20", landing, tmp_path)
    assert done.returncode == 20
    # The other sources loaded under the command's run, which is closed, not left running.
    ((status, error, finished),) = query("select status, error, finished_at is not null from meta.pipeline_runs")
    assert (status, finished) == ("failed", True)
    assert error == f"missing input: {landing / '2026-11-20' / 'erp_sales.csv'}"


def test_a_killed_command_is_closed_by_the_next_one(warehouse, query, tmp_path):
    import signal
    import time

    landing = seed_day(tmp_path)
    # A share lock on the loads' table holds the first bronze task inside its transaction.
    from pipeline.core import db

    gate = db.connect(warehouse)
    try:
        with gate.cursor() as cur:
            cur.execute("lock table meta.ingested_files in share mode")
        killed = subprocess.Popen(
            [
                LUIGI,
                "--module",
                "pipeline",
                "MasterTask",
                "--date",
                "2026-11-20",
                "--landing-dir",
                str(landing),
                "--local-scheduler",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not query("select 1 from meta.task_runs where status = 'running'"):
            assert killed.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=20)
    finally:
        gate.rollback()
        gate.close()
    assert query("select status from meta.pipeline_runs") == [("running",)]
    done = luigi_cli("2026-11-20", landing, tmp_path)
    assert done.returncode == 0, done.stderr
    runs = query("select status, error from meta.pipeline_runs order by started_at")
    assert runs == [("failed", "abandoned: the process ended without finishing the run"), ("success", None)]
    assert query("select status, error from meta.task_runs where status not in ('success', 'skipped')") == [
        ("failed", "abandoned: the process ended while the task was running")
    ]


def test_the_shared_parameters_are_declared_once_and_passed_down_by_clone():
    """date, run_id and landing_dir live on WarehouseTask; every other task gets them by subclassing or
    @inherits/@requires, and a required task carries the requiring task's values."""
    import ast
    from datetime import date

    import luigi

    from pipeline.core.db import REPO_ROOT
    from pipeline.master import MasterTask

    declared = []
    for module in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.Assign) and "Parameter" in ast.unparse(statement.value):
                        names = [target.id for target in statement.targets if isinstance(target, ast.Name)]
                        declared += [
                            (module.name, node.name, name)
                            for name in names
                            if name in ("date", "run_id", "landing_dir")
                        ]
    assert sorted(declared) == [("base.py", "WarehouseTask", name) for name in ("date", "landing_dir", "run_id")] + [
        ("config.py", "metalayer", "landing_dir")
    ]  # the luigi.cfg default, not a task parameter

    root = MasterTask(date=date(2026, 11, 21), run_id="r1", landing_dir="/nowhere")
    seen, todo = set(), [root]
    while todo:
        task = todo.pop()
        for required in luigi.task.flatten(task.requires()):
            assert (required.run_id, required.landing_dir) == ("r1", "/nowhere"), required
            if required.task_id not in seen:
                seen.add(required.task_id)
                todo.append(required)
    assert len(seen) >= 20


def test_every_task_declares_its_layer_and_a_table_of_that_layer():
    """The layer is the task's own declaration (`layer`), not its module's name; the console, reruns by layer
    and the SLA checks read it."""
    from datetime import date

    import luigi

    from console.graph import task_graph
    from pipeline.operations.maintenance import layer_of
    from pipeline.operations.sla import _families

    schemas = {"bronze": ("bronze",), "silver": ("silver", "meta"), "gold": ("gold",), "anomalies": ("meta",)}
    graph = task_graph()
    registry = luigi.task_register.Register
    for family in graph.task_families:
        task_class = registry.get_task_cls(family)
        assert task_class.layer in schemas, family
        assert graph.nodes[family].table.split(".")[0] in schemas[task_class.layer], family
    assert {family for family in graph.task_families if registry.get_task_cls(family).layer == "gold"} <= set(
        _families("gold")
    )
    assert layer_of(registry.get_task_cls("Anomalies")(date=date(2026, 11, 21))) == "anomalies"


def test_imports_go_downward_only():
    """core <- quality, clv, extractors <- tasks (base, tasks_*, master) <- operations, cli, bench; the console
    uses any of them. Checked on the import statements of every module, at any depth of the function."""
    import ast

    from pipeline.core.db import REPO_ROOT

    def part(module: str) -> str:
        name = module.split(".")[1] if module.count(".") else ""
        if name in ("core", "quality", "clv", "operations", "sample", "extractors"):
            return name
        if name in ("base", "master", "registry") or name.startswith("tasks_"):
            return "tasks"
        return "entry"  # cli, bench, quickstart, the package itself

    rank = {"core": 0, "quality": 1, "clv": 1, "extractors": 1, "tasks": 2, "sample": 2, "operations": 3, "entry": 4}
    upward = []
    for path in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
                targets = [node.module] if node.module != "pipeline" else [f"pipeline.{a.name}" for a in node.names]
                for target in targets:
                    if rank[part(target)] > rank[part(module)] and part(target) != part(module):
                        upward.append(f"{module} imports {target}")
    assert upward == []


def test_packaging_takes_every_subpackage_and_the_vocabulary_files():
    """A non-editable install (pip install .) gets every part of pipeline/ and console/ and the generator's data
    files: pyproject's package list is found, not written by hand."""
    import tomllib

    from setuptools import find_namespace_packages  # pyproject's find: namespaces by default

    from pipeline.core.db import REPO_ROOT

    settings = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_namespace_packages(str(REPO_ROOT), include=settings["packages"]["find"]["include"]))
    folders = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for top in ("pipeline", "console")
        for path in (REPO_ROOT / top).rglob("*.py")
    }
    assert folders <= found, folders - found
    data = settings["package-data"]["pipeline.sample"]
    vocabularies = REPO_ROOT / "pipeline" / "sample" / "vocabularies"
    assert all(any(path.match(pattern) for pattern in data) for path in vocabularies.iterdir())
