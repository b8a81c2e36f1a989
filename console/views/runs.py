"""Runs: the date x task grid (a cell opens its task's run, error and log), history with filters, one run's detail.

The picked date, task and run are in the query string (?date=&task=&run=), so a link shows the same view.
"""

from datetime import date

import altair as alt
import streamlit as st

from console import data, graph, grid, ui

st.title("Runs")
ui.require_runs()
masked = ui.masked()
params = st.query_params

states = ui.date_grid(masked)
ui.delivery_banner(states)
order = grid.family_order(graph.task_graph())
by_date = {state.run_date: state for state in states}

st.subheader("Dates and tasks")
st.caption(
    "One row per extract date (newest first), one column per task in graph order. **blocked**: never ran "
    "because a task it needs failed, is missing or is blocked; **missing**: its landing file is not there; "
    "**not run**: nothing ran it yet. Click a cell to open that task's run, error and log."
)
cells = grid.to_frame(states, order)


def cell_colour(value: str) -> str:
    status = str(value).split(" ", 1)[-1]
    return f"background-color: {grid.COLOURS.get(status, '#ffffff')}"


picked_cell = st.dataframe(
    cells.style.map(cell_colour, subset=order),
    hide_index=True,
    on_select="rerun",
    selection_mode="single-cell",
    key="runs_grid",
    column_config={
        "extract_date": st.column_config.DateColumn("Extract date", pinned=True),
        "state": st.column_config.TextColumn("Date", pinned=True),
    },
)
clicked = tuple(picked_cell.selection.cells[0]) if picked_cell and picked_cell.selection.cells else None
if clicked and st.session_state.get("runs_grid_applied") != clicked:  # a new click, not the same one again
    st.session_state["runs_grid_applied"] = clicked
    row, column = clicked
    if column in order:
        st.session_state["runs_cell_date"] = cells.iloc[row]["extract_date"]
        st.session_state["runs_cell_task"] = column
    elif column in ("extract_date", "state"):
        st.session_state["runs_cell_date"] = cells.iloc[row]["extract_date"]
elif "runs_cell_date" not in st.session_state and params.get("date"):
    try:
        wanted = date.fromisoformat(params["date"])
    except ValueError:
        wanted = None
    if wanted in by_date:
        st.session_state["runs_cell_date"] = wanted
    if params.get("task") in order:
        st.session_state["runs_cell_task"] = params["task"]

dates_newest_first = [state.run_date for state in reversed(states)]
if dates_newest_first:
    left, right = st.columns(2)
    cell_date = left.selectbox("Extract date", dates_newest_first, key="runs_cell_date")
    state = by_date[cell_date]
    failing = state.failed_family or next((f for f in order if state.cells[f].status not in grid.DONE), order[-1])
    if st.session_state.get("runs_cell_task") not in order:
        st.session_state["runs_cell_task"] = failing
    cell_task = right.selectbox(
        "Task", order, key="runs_cell_task", format_func=lambda f: f"{f} · {state.cells[f].status}"
    )
    params["date"], params["task"] = cell_date.isoformat(), cell_task
    cell = state.cells[cell_task]
    with st.container(border=True):
        st.markdown(
            f"**{cell_task}** on **{cell_date}**: {ui.badge(cell.status)}"
            + (f" in run `{cell.run_id}`" if cell.run_id else "")
        )
        if cell.error:
            first, *rest = cell.error.splitlines()
            st.error(first, icon=":material/error:")
            if rest:
                st.caption("\n\n".join(rest))
            mismatch = ui.header_mismatch(cell.error)
            if mismatch is not None:
                st.dataframe(
                    mismatch,
                    hide_index=True,
                    column_config={
                        "position": "Column",
                        "expected": "Expected (contract)",
                        "received": "Received (file)",
                        "matches": "Same",
                    },
                )
        elif cell.status == "blocked":
            st.warning(f"Never ran: it needs {cell.cause}, which is not done.", icon=":material/block:")
        elif cell.status == "missing":
            st.warning(
                f"Never ran: landing file {cell.cause} is missing for {cell_date}"
                + (f" in `{state.landing}`." if state.landing else "."),
                icon=":material/folder_off:",
            )
        elif cell.status == grid.NOT_RUN:
            st.info("Nothing ran this task for this date yet.", icon=":material/schedule:")
        if cell.run_id and st.session_state.get("runs_cell_followed") != (cell_date, cell_task):
            # A newly picked cell shows its run below.
            st.session_state["runs_cell_followed"] = (cell_date, cell_task)
            params["run"] = cell.run_id
            st.session_state.pop("runs_pick", None)

st.subheader("Run history")

bounds = data.query("run_filters").iloc[0]
triggers, statuses = sorted(bounds["triggers"]), sorted(bounds["statuses"])
left, middle, right = st.columns([2, 2, 2])
picked_range = left.date_input("Run dates", value=(bounds["first_run_date"], bounds["last_run_date"]), key="runs_dates")
picked_statuses = middle.multiselect("Status", statuses, default=statuses, key="runs_status")
picked_triggers = right.multiselect("Trigger", triggers, default=triggers, key="runs_trigger")
if len(picked_range) == 2:
    start, end = picked_range
elif picked_range:  # the first end of a range picked so far
    start = end = picked_range[0]
else:
    start, end = bounds["first_run_date"], bounds["last_run_date"]

runs = data.query(
    "runs", masked=masked, start=start, end=end, statuses=picked_statuses, triggers=picked_triggers, limit=500
)
st.caption(f"{len(runs)} run(s) from {start} to {end}" + (" (the newest 500)" if len(runs) == 500 else ""))
st.dataframe(
    runs,
    hide_index=True,
    column_config={
        "run_id": "Run",
        "trigger": "Trigger",
        "status": "Status",
        "tasks": "Tasks",
        "tasks_failed": "Failed tasks",
        "seconds": st.column_config.NumberColumn("Seconds", format="%.1f"),
        "error": "Error",
        "run_date": "Extract date",
        "started_at": "Started (UTC)",
        "finished_at": "Finished (UTC)",
    },
)
if runs.empty:
    st.info("No run matches these filters.")
    st.stop()

labels = dict(zip(runs["run_id"], runs["run_id"] + " · " + runs["status"] + " · " + runs["trigger"], strict=True))
if "runs_pick" not in st.session_state and params.get("run") in labels:
    st.session_state["runs_pick"] = params["run"]
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="runs_pick")
params["run"] = run_id
run = data.query("run", masked=masked, run_id=run_id).iloc[0]
tasks = data.query("run_tasks", masked=masked, run_id=run_id)

st.subheader(f"Run {run_id}")
columns = st.columns(4)
columns[0].metric("Status", str(run["status"]))
columns[1].metric("Duration", ui.duration(run["seconds"]))
columns[2].metric("Tasks", len(tasks))
columns[3].metric("Failed tasks", int((tasks["status"] == "failed").sum()))
if run["error"]:
    # The first line says what failed; an expected failure's next one says what to do.
    first, *rest = str(run["error"]).strip().splitlines()
    st.error(first, icon=":material/error:")
    if rest:
        st.caption("\n\n".join(rest))

if tasks.empty:
    st.info(
        "This run recorded no task: every task of its date was already complete, or it stopped before the "
        "first one (see its error and log)."
    )
else:
    st.markdown("**Task timeline**")
    run_start = run["started_at"]
    timeline = tasks.assign(
        task=tasks["task_family"],
        start_seconds=(tasks["started_at"] - run_start).dt.total_seconds(),
        end_seconds=(tasks["ended_at"] - run_start).dt.total_seconds(),
    )
    chart = (
        alt.Chart(timeline)
        .mark_bar(cornerRadius=2)
        .encode(
            x=alt.X("start_seconds:Q", title="seconds since the run started"),
            x2="end_seconds:Q",
            y=alt.Y(
                "task:N",
                sort=alt.EncodingSortField(field="start_seconds", order="ascending"),
                title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=220),
            ),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(
                    domain=["success", "skipped", "running", "failed"],
                    range=["#2e7d32", "#9e9e9e", "#1976d2", "#c62828"],
                ),
            ),
            tooltip=[
                "task_family",
                "target_table",
                "status",
                alt.Tooltip("seconds:Q", format=".2f"),
                "rows_in",
                "rows_out",
                "rows_rejected",
                alt.Tooltip("started_at:T", format="%H:%M:%S", title="started"),
            ],
        )
        .properties(height=max(120, 24 * len(timeline)))
    )
    st.altair_chart(chart, width="stretch")

    st.markdown("**Rows in and out per task**")
    st.dataframe(
        tasks.drop(columns=["task_id", "error", "ended_at"]),
        hide_index=True,
        column_config={
            "task_family": "Task",
            "target_table": "Table",
            "status": "Status",
            "message": "Message",
            "rows_in": st.column_config.NumberColumn("Rows in", format="localized"),
            "rows_out": st.column_config.NumberColumn("Rows out", format="localized"),
            "rows_rejected": st.column_config.NumberColumn("Rejected", format="localized"),
            "rows_duplicate": st.column_config.NumberColumn("Duplicates", format="localized"),
            "seconds": st.column_config.NumberColumn("Seconds", format="%.2f"),
            "started_at": "Started (UTC)",
            "finished_at": "Finished (UTC)",
        },
    )
    failed = tasks[tasks["error"].notna()]
    if not failed.empty:
        st.markdown("**Task errors**")
        for task in failed.itertuples():
            error = str(task.error).strip()
            with st.expander(f"{task.task_family}: {error.splitlines()[0]}", icon=":material/error:"):
                st.code(error, language="text")

st.markdown("**Log of the run**")
ui.show_log(run["log_file"], is_masked=masked)
