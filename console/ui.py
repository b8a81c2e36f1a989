"""What the pages share: the empty-state guard, number formats, status badges, log views."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from console import auth, data
from console.launcher import tail

FIRST_RUN_GUIDANCE = """
**No pipeline run is recorded in this warehouse yet.**

- `make run` generates sample extracts for today into `data/landing/` (when it is
  empty) and runs the pipeline;
- or put a day's extracts into `data/landing/<YYYY-MM-DD>/` and run
  `metalayer run --date YYYY-MM-DD` (`luigi --module pipeline MasterTask --date YYYY-MM-DD --local-scheduler`
  does the same without the run summary);
- or, logged in as ops, launch a run from the **Operations** page.

Then reload this page.
"""

BOOTSTRAP_GUIDANCE = """
**This database has no MetaLayer schema yet.**

Run `metalayer db bootstrap` (or simply `make run`, which also loads sample data)
against the same `DATABASE_URL`, then reload this page.
"""

STATUS_BADGES = {
    "success": ":green-badge[:material/check_circle: success]",
    "failed": ":red-badge[:material/error: failed]",
    "running": ":blue-badge[:material/progress_activity: running]",
    "skipped": ":gray-badge[skipped]",
    "cancelled": ":orange-badge[:material/cancel: cancelled]",
    "blocked": ":violet-badge[:material/block: blocked]",
    "missing": ":orange-badge[:material/folder_off: missing]",
}
# Money and counts look the same on every page: 2 decimals for money, thousands separated.
MONEY_FORMAT = ",.2f"  # altair / d3
MONEY_COLUMN_FORMAT = "accounting"  # st.column_config.NumberColumn: 1,234.50


def masked() -> bool:
    """Personal data is masked unless the session holds an ops login."""
    return not auth.is_ops()


def schema_ready() -> bool:
    state = data.query("schema_state").iloc[0]
    return bool(state["is_bootstrapped"]) and bool(state["has_gold_tables"])


def require_runs() -> None:
    """Stop the page with guidance when the warehouse is not bootstrapped or nothing ran yet."""
    if not schema_ready():
        st.info(BOOTSTRAP_GUIDANCE, icon=":material/database:")
        st.stop()
    if int(data.query("run_count").iloc[0]["runs"]) == 0:
        st.info(FIRST_RUN_GUIDANCE, icon=":material/rocket_launch:")
        st.stop()


def badge(status: str | None) -> str:
    return STATUS_BADGES.get(status or "", f":gray-badge[{status or 'unknown'}]")


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT


def number(value, decimals: int = 0) -> str:
    return "n/a" if missing(value) else f"{float(value):,.{decimals}f}"


def money(value) -> str:
    return number(value, 2)


def tile_money(value) -> str:
    """Money short enough for a metric tile: 2 decimals up to 10,000, whole units, then millions."""
    if missing(value):
        return "n/a"
    value = float(value)
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.2f} M"
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.2f}"


def tile_change(value) -> str | None:
    """The delta of a money tile, in the same units as `tile_money`, signed."""
    if missing(value):
        return None
    shown = tile_money(abs(float(value)))
    return ("-" if float(value) < 0 else "+") + shown


def percent(value, decimals: int = 1) -> str:
    return "n/a" if missing(value) else f"{float(value) * 100:.{decimals}f}%"


def signed(value, decimals: int = 0) -> str | None:
    """A metric delta: '+20.00', '-3', None when there is nothing to compare with."""
    return None if missing(value) else f"{float(value):+,.{decimals}f}"


def duration(seconds) -> str:
    if missing(seconds):
        return "n/a"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# One colour per DAMA dimension on every chart; the quarantined share beside them in grey.
QUARANTINED_SERIES = "quarantined (share of lines)"
DIMENSION_COLOURS = {
    "overall": "#000000",
    "completeness": "#1f77b4",
    "validity": "#2ca02c",
    "uniqueness": "#9467bd",
    "consistency": "#ff7f0e",
    "timeliness": "#17becf",
    "accuracy": "#8c564b",
    QUARANTINED_SERIES: "#9e9e9e",
}


def quality_threshold() -> float:
    from pipeline.core.config import quality

    return float(quality().threshold)


HEADER_MISMATCH = re.compile(r"expected (?P<expected>[^;]*); received (?P<received>[^;]*)")


def header_mismatch(error: str) -> pd.DataFrame | None:
    """The expected and received headers of a LandingFileError 'header does not match the contract', side by side."""
    found = HEADER_MISMATCH.search(error or "") if "header does not match the contract" in (error or "") else None
    if not found:
        return None
    expected = [name.strip() for name in found["expected"].split(",")]
    received = [name.strip() for name in found["received"].split(",")]
    width = max(len(expected), len(received))
    expected += [""] * (width - len(expected))
    received += [""] * (width - len(received))
    return pd.DataFrame(
        {
            "position": range(1, width + 1),
            "expected": expected,
            "received": received,
            "matches": [a == b for a, b in zip(expected, received, strict=True)],
        }
    )


def date_grid(is_masked: bool = True) -> list:
    """The date x task grid (console/grid.py) of every extract date in the landing dir or with a run."""
    from console import graph, grid
    from pipeline.core.config import landing_dir
    from pipeline.core.landing import extract_dates

    landing = landing_dir()
    return grid.build(
        graph.task_graph(),
        data.query("task_grid", masked=is_masked),
        data.query("date_runs", masked=is_masked),
        landing,
        extract_dates(landing),
    )


def delivery_banner(states: list, *, limit: int = 5) -> None:
    """Which extract dates are not delivered and why, root cause first, with a way to rerun each."""
    from console import grid

    waiting = list(reversed(grid.not_delivered(states)))
    if not states:
        return
    if not waiting:
        st.success(
            f"Every extract date is delivered ({len(states)} date(s), the latest {states[-1].run_date}).",
            icon=":material/task_alt:",
        )
        return
    dates = ", ".join(str(state.run_date) for state in waiting)
    with st.container(border=True):
        st.markdown(f":red[:material/report: **{len(waiting)} extract date(s) not delivered**]: {dates}")
        for state in waiting[:limit]:
            first, *rest = state.cause().splitlines() or [""]
            st.markdown(
                f"**{state.run_date}** {badge(state.state)} {state.done} of {len(state.cells)} tasks "
                f"done. Cause: `{first}`"
            )
            if rest:
                st.caption("\n\n".join(rest))
            failed = state.cells.get(state.failed_family) if state.failed_family else None
            fixed = failed is not None and state.files_changed_since(failed.finished_at)
            if state.state == "running":
                continue
            left, right = st.columns([1, 3])
            left.page_link(
                "views/operations.py",
                label="Rerun this date" if state.run_id else "Run this date",
                icon=":material/replay:",
                query_params={"date": state.run_date.isoformat()},
            )
            right.page_link(
                "views/runs.py",
                label="Open in the date x task grid",
                icon=":material/grid_on:",
                query_params={
                    "date": state.run_date.isoformat(),
                    **({"task": state.failed_family} if state.failed_family else {}),
                },
            )
            if fixed:
                st.caption(":green[Its landing files changed after the failure: the fix may be in, rerun it.]")
            elif state.state in ("failed", "missing"):
                st.caption("Fix the cause first, then rerun the date.")
        if len(waiting) > limit:
            st.caption(f"… and {len(waiting) - limit} more: see the grid on the Runs page.")


def show_log(path_text: str | None, *, is_masked: bool, max_bytes: int = 30_000) -> None:
    """The end of a log file (a run's, or a launch's output), masked for non-ops users."""
    if not path_text:
        st.caption("No log file is recorded for this run.")
        return
    path = Path(path_text)
    if path.suffix != ".log" or not path.is_file():
        st.caption(f"The log file `{path}` is not on this machine (the run may have run elsewhere).")
        return
    body = tail(path, max_bytes)
    if is_masked and body:
        body = data.fetch("mask_text", body=body).iloc[0]["body"]
    st.caption(f"`{path}` (last {max_bytes // 1000} kB)")
    st.code(body or "(empty)", language="log")
