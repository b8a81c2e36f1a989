"""The task graph, from the landing files to the gold tables, as Luigi's requires() of MasterTask give it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import luigi

STATUS_COLOURS = {  # fill colour per status of the date (console/grid.py)
    "success": "#c8e6c9",
    "skipped": "#e0e0e0",
    "running": "#bbdefb",
    "failed": "#ffcdd2",
    "cancelled": "#ffe0b2",
    "blocked": "#f3e5f5",
    "missing": "#fff3e0",
    None: "#ffffff",  # never ran
}
FONT_SIZE = 14  # points: readable once the drawing is scaled to the page
LAYERS = ("landing", "bronze", "silver", "gold")


@dataclass(frozen=True)
class Node:
    key: str  # task family, or "file:<source>" for a landing file
    label: str
    layer: str
    table: str | None = None


@dataclass
class TaskGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)  # (upstream, downstream)
    chained: set[str] = field(default_factory=set)  # families that also need the previous date's run of themselves

    @property
    def task_families(self) -> list[str]:
        return sorted(key for key, node in self.nodes.items() if node.layer != "landing")


def _node(task: luigi.Task) -> Node:
    from pipeline.core.landing import landing_file
    from pipeline.tasks_bronze import LandingFile

    if isinstance(task, LandingFile):
        from pipeline.core.sources import SOURCES

        name = landing_file("", task.date, SOURCES[task.source_name]).name
        return Node(key=f"file:{task.source_name}", label=name, layer="landing")
    layer = getattr(task, "layer", "")
    return Node(
        key=task.task_family,
        label=task.task_family,
        layer=layer if layer in LAYERS else "gold",
        table=getattr(task, "table", None) or None,
    )


@cache
def task_graph() -> TaskGraph:
    """MasterTask's requirements walked for a date with one earlier extract, collapsed to task families.

    The earlier date makes the chained tasks (a date's silver dimensions and facts
    need the previous extract date's) show up once, as a self-dependency.
    """
    from pipeline.master import MasterTask

    graph = TaskGraph()
    with tempfile.TemporaryDirectory(prefix="metalayer-lineage-") as landing:
        for day in ("2000-01-01", "2000-01-02"):
            (Path(landing) / day).mkdir()
        root = MasterTask(date=date(2000, 1, 2), landing_dir=landing)
        seen: set[str] = set()

        def visit(task: luigi.Task) -> None:
            for dep in luigi.task.flatten(task.requires()):
                dep_node = _node(dep)
                if task is not root:
                    if task.task_family == dep.task_family:
                        graph.chained.add(task.task_family)
                    else:
                        graph.edges.add((dep_node.key, task.task_family))
                if dep.date != root.date:
                    continue  # the previous date's graph is this one again
                graph.nodes.setdefault(dep_node.key, dep_node)
                if dep.task_id not in seen:
                    seen.add(dep.task_id)
                    visit(dep)

        visit(root)
    return graph


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(*lines: str) -> str:
    """A DOT label of several lines (each escaped, joined by DOT's line break)."""
    return '"' + "\\n".join(_quote(line)[1:-1] for line in lines if line) + '"'


def to_dot(graph: TaskGraph, statuses: dict[str, str], links: dict[str, str] | None = None) -> str:
    """Graphviz DOT, left to right by layer, each task filled by its status; a task links to `links[family]`."""
    links = links or {}
    lines = [
        "digraph lineage {",
        "  rankdir=LR; nodesep=0.25; ranksep=0.6;",
        f'  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize={FONT_SIZE}];',
        '  edge [color="#888888"];',
    ]
    for layer in LAYERS:
        members = [node for node in graph.nodes.values() if node.layer == layer]
        if not members:
            continue
        lines.append(f"  subgraph cluster_{layer} {{")
        lines.append(
            f'    label={_quote(layer)}; style="dashed"; color="#bbbbbb"; fontname="sans-serif"; fontsize={FONT_SIZE};'
        )
        for node in sorted(members, key=lambda n: n.key):
            if node.layer == "landing":
                lines.append(f'    {_quote(node.key)} [label={_label(node.label)}, shape=note, fillcolor="#fff8e1"];')
                continue
            status = statuses.get(node.key)
            label = _label(
                node.label,
                node.table or "",
                f"[{status or 'never ran'}]",
                "needs the previous date's too" if node.key in graph.chained else "",
            )
            link = (
                f', URL={_quote(links[node.key])}, target="_self", tooltip={_quote("open " + node.key)}'
                if node.key in links
                else ""
            )
            lines.append(
                f"    {_quote(node.key)} [label={label}, "
                f"fillcolor={_quote(STATUS_COLOURS.get(status, '#ffffff'))}{link}];"
            )
        lines.append("  }")
    for upstream, downstream in sorted(graph.edges):
        lines.append(f"  {_quote(upstream)} -> {_quote(downstream)};")
    lines.append("}")
    return "\n".join(lines)
