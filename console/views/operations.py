"""Operations (ops login): run a date, rerun MasterTask, a layer or a task, backfill; follow the launch live."""

from datetime import date

import streamlit as st

from console import auth, data, graph, ui
from console.launcher import EXIT_ALREADY_RUNNING, LAUNCHER, Action, Launch, LaunchRefused

POLL_SECONDS = 2
SESSION_LAUNCHES = "ops_launches"

st.title("Operations")

if auth.configured_hash() is None:
    st.warning(
        "**Operations are disabled: no ops password is configured.**\n\n"
        "To enable them, make a hash with `python -m console.auth` and either export it as "
        f"`{auth.HASH_ENV}` or put it under `[ops] password_hash` in `.streamlit/secrets.toml` "
        "(git-ignored; `.streamlit/secrets.toml.example` shows the layout), then restart the console. "
        f"`{auth.PASSWORD_ENV}` with the plain password also works, for a throwaway setup.",
        icon=":material/lock:")
    st.stop()
if not auth.is_ops():
    st.warning("Reruns and backfills need an ops login: use the login form in the sidebar.", icon=":material/lock:")
    st.stop()

ready = ui.schema_ready()
default_date = date.today()
if ready and int(data.query("run_count").iloc[0]["runs"]):
    default_date = data.query("latest_run", masked=False).iloc[0]["run_date"]


def launch(action: Action) -> None:
    try:
        started = LAUNCHER.launch(action, data.owner_url())
    except LaunchRefused as exc:
        st.error(f"Not launched: {exc}", icon=":material/block:")
        return
    st.session_state.setdefault(SESSION_LAUNCHES, []).insert(0, started.launch_id)
    st.success(f"Launched {action.describe()}" + (f" as run `{started.run_id}`." if started.run_id else "."),
               icon=":material/rocket_launch:")


run_tab, rerun_tab, backfill_tab = st.tabs(["Run a date", "Rerun", "Backfill"])
with run_tab, st.form("ops_run"):
    st.caption("Builds whatever is missing for the date (`metalayer run`).")
    run_date = st.date_input("Extract date", value=default_date, key="ops_run_date")
    if st.form_submit_button("Launch run", type="primary"):
        launch(Action("run", start=run_date))
with rerun_tab, st.form("ops_rerun"):
    st.caption("Invalidates the chosen tasks' markers for the date, then runs MasterTask (`metalayer rerun`).")
    targets = ["MasterTask", "bronze", "silver", "gold", *graph.task_graph().task_families]
    target = st.selectbox("What", targets, key="ops_rerun_target",
                          help="MasterTask: the whole graph; a layer: its tasks; or one task family.")
    rerun_date = st.date_input("Extract date", value=default_date, key="ops_rerun_date")
    downstream = st.checkbox("With downstream tasks", value=True, key="ops_rerun_downstream")
    if st.form_submit_button("Launch rerun", type="primary"):
        launch(Action("rerun", start=rerun_date, target=target, downstream=downstream))
with backfill_tab, st.form("ops_backfill"):
    st.caption("Runs each date of the range in order (`metalayer backfill`).")
    left, right = st.columns(2)
    first = left.date_input("From", value=default_date, key="ops_backfill_start")
    last = right.date_input("To", value=default_date, key="ops_backfill_end")
    on_missing = st.radio("A date without an extract folder", ["stop", "skip"], horizontal=True,
                          key="ops_backfill_missing")
    if st.form_submit_button("Launch backfill", type="primary"):
        if last < first:
            st.error("The range ends before it starts.")
        else:
            launch(Action("backfill", start=first, end=last, on_missing=on_missing))


def outcome(launched: Launch) -> tuple[str, str]:
    """(state for st.status, headline)."""
    code = launched.returncode
    if code is None:
        return "running", f"running (pid {launched.process.pid})"
    if code == 0:
        return "complete", "finished"
    if code == EXIT_ALREADY_RUNNING:
        return "error", "refused: a run for this date was already in progress"
    return "error", f"ended with exit code {code}"


def show_progress(launched: Launch) -> None:
    state, headline = outcome(launched)
    with st.status(f"{launched.action.describe()}: {headline}", state=state, expanded=True):
        st.caption(f"Launched {launched.started_at:%Y-%m-%d %H:%M:%S} UTC: `{' '.join(launched.command[2:])}`")
        if launched.run_id:
            run = data.fetch("run", masked=False, run_id=launched.run_id)
            tasks = data.fetch("run_tasks", masked=False, run_id=launched.run_id)
            if run.empty:
                st.write("Starting…" if state == "running" else "No run was recorded.")
            else:
                counts = tasks["status"].value_counts()
                columns = st.columns(4)
                columns[0].metric("Run status", str(run.iloc[0]["status"]))
                columns[1].metric("Tasks done", int(counts.get("success", 0) + counts.get("skipped", 0)))
                columns[2].metric("Running", int(counts.get("running", 0)))
                columns[3].metric("Failed", int(counts.get("failed", 0)))
                st.dataframe(tasks[["task_family", "status", "seconds", "rows_in", "rows_out", "rows_rejected"]],
                             hide_index=True, column_config={
                                 "task_family": "Task", "status": "Status", "rows_in": "Rows in",
                                 "rows_out": "Rows out", "rows_rejected": "Rejected",
                                 "seconds": st.column_config.NumberColumn("Seconds", format="%.2f")})
        else:
            runs = data.fetch("console_runs", masked=False, since=launched.started_at,
                              start=launched.action.start, end=launched.action.end)
            st.metric("Dates done", f"{int((runs['status'] != 'running').sum())} of {len(launched.action.dates)}")
            st.dataframe(runs, hide_index=True, column_config={
                "run_id": "Run", "status": "Status", "error": "Error", "run_date": "Extract date",
                "started_at": "Started (UTC)", "finished_at": "Finished (UTC)"})
        with st.expander("Output"):
            st.code(launched.output_tail() or "(nothing yet)", language="log")


launch_ids = st.session_state.get(SESSION_LAUNCHES, [])
launches = [launched for launched in map(LAUNCHER.get, launch_ids) if launched is not None]
if launches:
    st.subheader("Launched from this session")
    current, earlier = launches[0], launches[1:4]

    @st.fragment(run_every=POLL_SECONDS if current.alive else None)
    def live() -> None:
        show_progress(current)
        if not current.alive and st.session_state.get("ops_followed") != current.launch_id:
            st.session_state["ops_followed"] = current.launch_id
            data.clear_cache()  # the other pages show the new run at once
            st.rerun()  # stop polling: the whole page reruns with run_every off

    live()
    for launched in earlier:
        show_progress(launched)
