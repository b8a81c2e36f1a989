"""Runs: history with filters, and for one run its task timeline, rows per task, errors and log."""

import altair as alt
import streamlit as st

from console import data, ui

st.title("Runs")
ui.require_runs()
masked = ui.masked()

bounds = data.query("run_filters").iloc[0]
triggers, statuses = sorted(bounds["triggers"]), sorted(bounds["statuses"])
left, middle, right = st.columns([2, 2, 2])
picked_range = left.date_input("Run dates", value=(bounds["first_run_date"], bounds["last_run_date"]),
                               key="runs_dates")
picked_statuses = middle.multiselect("Status", statuses, default=statuses, key="runs_status")
picked_triggers = right.multiselect("Trigger", triggers, default=triggers, key="runs_trigger")
if len(picked_range) == 2:
    start, end = picked_range
elif picked_range:  # the first end of a range picked so far
    start = end = picked_range[0]
else:
    start, end = bounds["first_run_date"], bounds["last_run_date"]

runs = data.query("runs", masked=masked, start=start, end=end, statuses=picked_statuses, triggers=picked_triggers,
                  limit=500)
st.caption(f"{len(runs)} run(s) from {start} to {end}" + (" (the newest 500)" if len(runs) == 500 else ""))
st.dataframe(runs, hide_index=True, column_config={
    "run_id": "Run", "trigger": "Trigger", "status": "Status", "tasks": "Tasks", "tasks_failed": "Failed tasks",
    "seconds": st.column_config.NumberColumn("Seconds", format="%.1f"), "error": "Error",
    "run_date": "Extract date", "started_at": "Started (UTC)", "finished_at": "Finished (UTC)",
})
if runs.empty:
    st.info("No run matches these filters.")
    st.stop()

labels = dict(zip(runs["run_id"], runs["run_id"] + " · " + runs["status"] + " · " + runs["trigger"], strict=True))
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="runs_pick")
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
    st.info("This run recorded no task: every task of its date was already complete, or it stopped before the "
            "first one (see its error and log).")
else:
    st.markdown("**Task timeline**")
    run_start = run["started_at"]
    timeline = tasks.assign(
        task=tasks["task_family"],
        start_seconds=(tasks["started_at"] - run_start).dt.total_seconds(),
        end_seconds=(tasks["ended_at"] - run_start).dt.total_seconds(),
    )
    chart = alt.Chart(timeline).mark_bar(cornerRadius=2).encode(
        x=alt.X("start_seconds:Q", title="seconds since the run started"),
        x2="end_seconds:Q",
        y=alt.Y("task:N", sort=alt.EncodingSortField(field="start_seconds", order="ascending"), title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=220)),
        color=alt.Color("status:N", scale=alt.Scale(domain=["success", "skipped", "running", "failed"],
                                                    range=["#2e7d32", "#9e9e9e", "#1976d2", "#c62828"])),
        tooltip=["task_family", "target_table", "status", alt.Tooltip("seconds:Q", format=".2f"), "rows_in",
                 "rows_out", "rows_rejected", alt.Tooltip("started_at:T", format="%H:%M:%S", title="started")],
    ).properties(height=max(120, 24 * len(timeline)))
    st.altair_chart(chart, width="stretch")

    st.markdown("**Rows in and out per task**")
    st.dataframe(tasks.drop(columns=["task_id", "error", "ended_at"]), hide_index=True, column_config={
        "task_family": "Task", "target_table": "Table", "status": "Status", "message": "Message",
        "rows_in": st.column_config.NumberColumn("Rows in", format="localized"),
        "rows_out": st.column_config.NumberColumn("Rows out", format="localized"),
        "rows_rejected": st.column_config.NumberColumn("Rejected", format="localized"),
        "rows_duplicate": st.column_config.NumberColumn("Duplicates", format="localized"),
        "seconds": st.column_config.NumberColumn("Seconds", format="%.2f"),
        "started_at": "Started (UTC)", "finished_at": "Finished (UTC)",
    })
    failed = tasks[tasks["error"].notna()]
    if not failed.empty:
        st.markdown("**Task errors**")
        for task in failed.itertuples():
            error = str(task.error).strip()
            with st.expander(f"{task.task_family}: {error.splitlines()[0]}", icon=":material/error:"):
                st.code(error, language="text")

st.markdown("**Log of the run**")
ui.show_log(run["log_file"], is_masked=masked)
