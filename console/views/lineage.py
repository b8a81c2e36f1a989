"""Lineage: the task graph from the landing files to the gold tables, coloured by each task's status on one date."""

from datetime import date

import pandas as pd
import streamlit as st

from console import graph, grid, ui

st.title("Lineage")
st.caption(
    "Derived from Luigi's `requires()` of `MasterTask`: an arrow points from what a task needs to the task. "
    "Each task is coloured by its status on the chosen extract date (blocked: never ran because something "
    "it needs is not done; missing: its landing file is not there). Click a task to open its run on Runs."
)

graph_of_tasks = graph.task_graph()
states = ui.date_grid(ui.masked()) if ui.schema_ready() else []
by_date = {state.run_date: state for state in states}
dates = [state.run_date for state in reversed(states)]
wanted = st.query_params.get("date")
if "lineage_date" not in st.session_state and wanted in {day.isoformat() for day in dates}:
    st.session_state["lineage_date"] = date.fromisoformat(wanted)
picked = (
    st.selectbox("Extract date", dates, key="lineage_date", format_func=lambda day: f"{day} · {by_date[day].state}")
    if dates
    else None
)
state = by_date.get(picked)
if picked is not None:
    st.query_params["date"] = picked.isoformat()
cells = state.cells if state else {}
statuses = {family: cell.status for family, cell in cells.items() if cell.status != grid.NOT_RUN}
links = {family: f"runs?date={picked.isoformat()}&task={family}" for family in cells} if picked else {}
st.graphviz_chart(graph.to_dot(graph_of_tasks, statuses, links), width="stretch")
st.markdown(
    " ".join(
        f"{ui.badge(status)}"
        for status in ("success", "skipped", "running", "failed", "blocked", "missing", "cancelled")
    )
    + " :gray-badge[never ran]"
)

nodes = pd.DataFrame(
    [
        {"task_family": node.key, "layer": node.layer, "table": node.table}
        for node in graph_of_tasks.nodes.values()
        if node.layer != "landing"
    ]
)
tasks = nodes.assign(
    status=nodes["task_family"].map(lambda family: cells[family].status if family in cells else None),
    run_id=nodes["task_family"].map(lambda family: cells[family].run_id if family in cells else None),
    started_at=nodes["task_family"].map(lambda family: cells[family].started_at if family in cells else None),
    finished_at=nodes["task_family"].map(lambda family: cells[family].finished_at if family in cells else None),
)
tasks["needs_previous_date"] = tasks["task_family"].isin(graph_of_tasks.chained)
tasks["layer_order"] = tasks["layer"].map({layer: order for order, layer in enumerate(graph.LAYERS)})
tasks = tasks.sort_values(["layer_order", "task_family"]).drop(columns=["layer_order"])
st.dataframe(
    tasks,
    hide_index=True,
    column_config={
        "task_family": "Task",
        "layer": "Layer",
        "table": "Table",
        "status": f"Status on {picked}",
        "run_id": "Run",
        "started_at": "Started (UTC)",
        "finished_at": "Finished (UTC)",
        "needs_previous_date": st.column_config.CheckboxColumn("Needs the previous date's too"),
    },
)
if not any(state.run_id for state in states):
    st.info(ui.FIRST_RUN_GUIDANCE, icon=":material/rocket_launch:")
