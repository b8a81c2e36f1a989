"""Operations (ops login): run a date, rerun MasterTask, a layer or a task, backfill; follow the launch live."""

from datetime import date

import streamlit as st

from console import auth, data, graph, ui
from console.launcher import EXIT_ALREADY_RUNNING, LAUNCHER, Action, Launch, LaunchRefused, plan
from pipeline.core.config import landing_dir

POLL_SECONDS = 2
SESSION_LAUNCHES = "ops_launches"
SESSION_PLAN = "ops_plan"

st.title("Operations")

if auth.configured_hash() is None:
    st.warning(
        "**Operations are disabled: no ops password is configured.**\n\n"
        "To enable them, make a hash with `python -m console.auth` and either export it as "
        f"`{auth.HASH_ENV}` or put it under `[ops] password_hash` in `.streamlit/secrets.toml` "
        "(git-ignored; `.streamlit/secrets.toml.example` shows the layout), then restart the console. "
        f"`{auth.PASSWORD_ENV}` with the plain password also works, for a throwaway setup.",
        icon=":material/lock:",
    )
    st.stop()
if not auth.is_ops():
    st.warning("Reruns and backfills need an ops login: use the login form in the sidebar.", icon=":material/lock:")
    st.stop()

ready = ui.schema_ready()
states = ui.date_grid(is_masked=False) if ready else []
by_date = {state.run_date: state for state in states}
ui.delivery_banner(states)


def date_label(day) -> str:
    """A picker entry: the date, whether its landing folder has every file, and its state."""
    state = by_date.get(day)
    if state is None:
        return str(day)
    files = "files missing: " + ", ".join(state.missing_files) if state.missing_files else "files present"
    return f"{day} · {state.state} · {files}"


# Every extract date in the landing dir or with a run, newest first; the query string (?date=, from the
# banner's "Rerun this date") or the latest run's date is picked first.
dates = [state.run_date for state in reversed(states)] or [date.today()]
wanted = st.query_params.get("date")
default_date = next((day for day in dates if day.isoformat() == wanted), None)
if default_date is None and ready and int(data.query("run_count").iloc[0]["runs"]):
    default_date = data.query("latest_run", masked=False).iloc[0]["run_date"]
default_index = dates.index(default_date) if default_date in dates else 0


def propose(action: Action) -> None:
    """Plan the action and keep it for confirmation; a plan that can not run is refused at once."""
    try:
        planned = plan(action, landing_dir())
    except Exception as exc:  # noqa: BLE001 - a graph that can not be walked is shown, not raised
        st.error(f"Not launched: the plan could not be made ({type(exc).__name__}: {exc}).", icon=":material/block:")
        return
    if planned.refusal:
        st.session_state.pop(SESSION_PLAN, None)
        st.error(f"Not launched: {planned.refusal}", icon=":material/block:")
        return
    st.session_state[SESSION_PLAN] = planned


def launch(action: Action) -> None:
    try:
        started = LAUNCHER.launch(action, data.owner_url(), landing_dir())
    except LaunchRefused as exc:
        st.error(f"Not launched: {exc}", icon=":material/block:")
        return
    st.session_state.setdefault(SESSION_LAUNCHES, []).insert(0, started.launch_id)
    st.success(
        f"Launched {started.action.describe()}" + (f" as run `{started.run_id}`." if started.run_id else "."),
        icon=":material/rocket_launch:",
    )


run_tab, rerun_tab, backfill_tab = st.tabs(["Run a date", "Rerun", "Backfill"])
with run_tab, st.form("ops_run"):
    st.caption("Builds whatever is missing for the date (`metalayer run`).")
    run_date = st.selectbox("Extract date", dates, index=default_index, format_func=date_label, key="ops_run_date")
    if st.form_submit_button("Launch run", type="primary"):
        propose(Action("run", start=run_date))
with rerun_tab, st.form("ops_rerun"):
    st.caption("Invalidates the chosen tasks' markers for the date, then runs MasterTask (`metalayer rerun`).")
    targets = ["MasterTask", "bronze", "silver", "gold", *graph.task_graph().task_families]
    target = st.selectbox(
        "What",
        targets,
        key="ops_rerun_target",
        help="MasterTask: the whole graph; a layer: its tasks; or one task family.",
    )
    rerun_date = st.selectbox("Extract date", dates, index=default_index, format_func=date_label, key="ops_rerun_date")
    downstream = st.checkbox("With downstream tasks", value=True, key="ops_rerun_downstream")
    if st.form_submit_button("Launch rerun", type="primary"):
        propose(Action("rerun", start=rerun_date, target=target, downstream=downstream))
with backfill_tab, st.form("ops_backfill"):
    st.caption("Runs each date of the range in order (`metalayer backfill`).")
    left, right = st.columns(2)
    first = left.selectbox("From", dates, index=default_index, format_func=date_label, key="ops_backfill_start")
    last = right.selectbox("To", dates, index=default_index, format_func=date_label, key="ops_backfill_end")
    on_missing = st.radio(
        "A date without an extract folder", ["stop", "skip"], horizontal=True, key="ops_backfill_missing"
    )
    if st.form_submit_button("Launch backfill", type="primary"):
        if last < first:
            st.error("The range ends before it starts.")
        else:
            propose(Action("backfill", start=first, end=last, on_missing=on_missing))

pending = st.session_state.get(SESSION_PLAN)
if pending is not None:
    with st.container(border=True):
        dates_planned = ", ".join(map(str, pending.dates)) or "none"
        st.markdown(
            f"**Plan: {pending.action.describe()}**: {len(pending.tasks)} task(s) over {len(pending.dates)} "
            f"date(s) ({dates_planned})."
        )
        if pending.pulled_in:
            st.warning(
                f"Earlier dates are pulled in: {', '.join(map(str, pending.pulled_in))} (the chained silver "
                "and gold tasks need the previous extract date's). Each is launched as its own run: "
                f"{pending.launch_action.describe()}.",
                icon=":material/history:",
            )
        if not pending.tasks:
            st.info("Every task is already complete: the launch records a run that builds nothing.")
        st.dataframe(
            [{"extract_date": task.run_date, "layer": task.layer, "task": task.task_family} for task in pending.tasks],
            hide_index=True,
            column_config={"extract_date": "Extract date", "layer": "Layer", "task": "Task"},
        )
        confirm, discard = st.columns([1, 4])
        if confirm.button("Confirm launch", type="primary", key="ops_confirm"):
            st.session_state.pop(SESSION_PLAN, None)
            launch(pending.action)
        elif discard.button("Discard the plan", key="ops_discard"):
            st.session_state.pop(SESSION_PLAN, None)
            st.rerun()


def outcome(launched: Launch) -> tuple[str, str]:
    """(state for st.status, headline)."""
    code = launched.returncode
    if launched.cancelled_at is not None:
        return "error", f"cancelled at {launched.cancelled_at:%H:%M:%S} UTC"
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
        if launched.alive and st.button(
            "Cancel this launch", key=f"ops_cancel_{launched.launch_id}", icon=":material/cancel:"
        ):
            LAUNCHER.cancel(launched.launch_id, data.owner_url())
            data.clear_cache()
        if launched.cancelled_at is not None:
            st.warning(
                "Cancelled: the launch's processes were stopped; recorded as cancelled: "
                + (", ".join(f"`{run_id}`" for run_id in launched.cancelled_runs) or "no run yet")
                + ".",
                icon=":material/cancel:",
            )
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
                st.dataframe(
                    tasks[["task_family", "status", "seconds", "rows_in", "rows_out", "rows_rejected"]],
                    hide_index=True,
                    column_config={
                        "task_family": "Task",
                        "status": "Status",
                        "rows_in": "Rows in",
                        "rows_out": "Rows out",
                        "rows_rejected": "Rejected",
                        "seconds": st.column_config.NumberColumn("Seconds", format="%.2f"),
                    },
                )
        else:
            runs = data.fetch(
                "console_runs",
                masked=False,
                since=launched.started_at,
                start=launched.action.start,
                end=launched.action.end,
            )
            st.metric("Dates done", f"{int((runs['status'] != 'running').sum())} of {len(launched.action.dates)}")
            st.dataframe(
                runs,
                hide_index=True,
                column_config={
                    "run_id": "Run",
                    "status": "Status",
                    "error": "Error",
                    "run_date": "Extract date",
                    "started_at": "Started (UTC)",
                    "finished_at": "Finished (UTC)",
                },
            )
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
