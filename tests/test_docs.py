"""The README's table map and the docs it links stay true: every table of the task graph is there with its task,
its task's module and files that exist; every link to a file in the repository points at one."""

from __future__ import annotations

import re

from pipeline.core.db import REPO_ROOT

README = REPO_ROOT / "README.md"


def table_map() -> dict[str, tuple[str, str, str]]:
    """README "Where each table is made": table -> (model, task, tests) cells."""
    text = README.read_text().split("## Where each table is made", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| `")]
    return {row[0].strip("| `"): (row[1], row[2], row[3]) for row in rows}


def test_every_table_of_the_graph_is_in_the_readme_map_with_its_task_and_files_that_exist():
    import inspect

    import luigi

    from console.graph import task_graph
    from pipeline.master import MasterTask  # noqa: F401 - registers every task class

    mapped = table_map()
    graph = task_graph()
    tables = {graph.nodes[family].table: family for family in graph.task_families}
    assert set(mapped) == set(tables), "README map and task graph differ"
    registry = luigi.task_register.Register
    for table, family in tables.items():
        model, task, tests = mapped[table]
        module = inspect.getsourcefile(registry.get_task_cls(family))
        assert task == f"`{family}` in `{module.rsplit('/', 1)[-1]}`", table
        for path in re.findall(r"`([\w./-]+\.(?:sql|py|toml)|[\w./-]+/)`", model):
            assert (REPO_ROOT / path).exists() or (REPO_ROOT / "sql" / path).exists(), (table, path)
        for test_file in re.findall(r"`(test_\w+\.py)`", tests):
            assert (REPO_ROOT / "tests" / test_file).is_file(), (table, test_file)
        assert f"`{registry.get_task_cls(family).model}`" in model, (table, "the task's model is not named")


def test_every_relative_link_in_the_readme_and_docs_points_at_a_file():
    for page in [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.name}: {target}"
