"""Lineage: the task graph from the landing files to the gold tables, coloured by each task's latest status."""

import pandas as pd
import streamlit as st

from console import data, graph, ui

st.title("Lineage")
st.caption("Derived from Luigi's `requires()` of `MasterTask`: an arrow points from what a task needs to the task. "
           "Each task is coloured by its latest status in `meta.task_runs`.")

graph_of_tasks = graph.task_graph()
latest = data.query("latest_task_status") if ui.schema_ready() else pd.DataFrame(
    columns=["task_family", "status", "run_id", "started_at", "finished_at"])
statuses = dict(zip(latest["task_family"], latest["status"], strict=True))
st.graphviz_chart(graph.to_dot(graph_of_tasks, statuses), width="stretch")
st.markdown(" ".join(f"{ui.badge(status)}" for status in ("success", "skipped", "running", "failed"))
            + " :gray-badge[never ran]")

nodes = pd.DataFrame([{"task_family": node.key, "layer": node.layer, "table": node.table}
                      for node in graph_of_tasks.nodes.values() if node.layer != "landing"])
tasks = nodes.merge(latest, on="task_family", how="left")
tasks["needs_previous_date"] = tasks["task_family"].isin(graph_of_tasks.chained)
tasks["layer_order"] = tasks["layer"].map({layer: order for order, layer in enumerate(graph.LAYERS)})
tasks = tasks.sort_values(["layer_order", "task_family"]).drop(columns=["layer_order"])
st.dataframe(tasks, hide_index=True, column_config={
    "task_family": "Task", "layer": "Layer", "table": "Table", "status": "Latest status", "run_id": "Latest run",
    "started_at": "Started (UTC)", "finished_at": "Finished (UTC)",
    "needs_previous_date": st.column_config.CheckboxColumn("Needs the previous date's too")})
if not statuses:
    st.info(ui.FIRST_RUN_GUIDANCE, icon=":material/rocket_launch:")
