"""Overview: the latest run, its SLA and quality, rows per layer, freshness per source, KPI tiles."""

import streamlit as st

from console import data, ui
from pipeline import registry

st.title("Overview")
ui.require_runs()
masked = ui.masked()

states = ui.date_grid(masked)
ui.delivery_banner(states)

run = data.query("latest_run", masked=masked).iloc[0]
date_state = next((state for state in states if state.run_date == run["run_date"]), None)
st.subheader("Latest run")
st.markdown(
    f"{ui.badge(run['status'])} run `{run['run_id']}` for extract date **{run['run_date']}**, "
    f"trigger `{run['trigger']}`, started {run['started_at']:%Y-%m-%d %H:%M:%S} UTC"
)
columns = st.columns(5)
columns[0].metric("Status", str(run["status"]))
columns[1].metric("Duration", ui.duration(run["seconds"]))
if date_state is None:
    columns[2].metric("Tasks done", f"{int(run['tasks_done'])} of {int(run['tasks'])}")
else:
    columns[2].metric(
        "Tasks done",
        f"{date_state.done} of {len(date_state.cells)}",
        help=f"Tasks of extract date {run['run_date']} done, by any run, of every task the date needs; "
        f"this run ran {int(run['tasks'])} of them.",
    )
quality = data.query("run_quality", run_id=run["run_id"], run_date=run["run_date"])
if quality.empty:
    columns[3].metric("Run quality score", "n/a", help="No quality gate ran for this date yet.")
else:
    score = quality.iloc[0]
    columns[3].metric(
        "Run quality score",
        ui.percent(score["score"], 2),
        help=(
            "This run's quality gate."
            if score["is_this_run"]
            else f"From run {score['run_id']}: this run found the gate of its date complete."
        ),
    )
shares = data.query("run_quarantined_shares", run_id=run["run_id"], run_date=run["run_date"])
if shares.empty:
    columns[4].metric("Quarantined (worst table)", "n/a", help="No quality gate ran for this date yet.")
else:
    worst = shares.iloc[0]
    columns[4].metric(
        "Quarantined (worst table)",
        ui.percent(worst["quarantined_share"], 2),
        help=(
            f"{worst['table_name']}: {ui.number(worst['lines_quarantined'])} of {ui.number(worst['lines_in'])} "
            f"input lines of the date ended in quarantine (broken, or dropped by a rule); the gate allows "
            f"{ui.percent(worst['max_share'], 2)} per table. "
            + "; ".join(f"{row.table_name} {ui.percent(row.quarantined_share, 2)}" for row in shares.itertuples())
        ),
    )
    for row in shares[shares["is_breach"]].itertuples():
        st.warning(
            f"{row.table_name} lost {ui.percent(row.quarantined_share, 2)} of its "
            f"{ui.number(row.lines_in)} input lines to quarantine, more than the "
            f"{ui.percent(row.max_share, 2)} the quality gate allows.",
            icon=":material/delete_sweep:",
        )
if run["status"] == "failed" and run["error"]:
    with st.expander("Error", expanded=True, icon=":material/error:"):
        st.code(str(run["error"]).strip(), language="text")


def sla_state() -> None:
    misses = data.query("sla_misses", run_id=run["run_id"])
    try:
        from pipeline.operations.sla import thresholds

        limit = thresholds()["run"]
    except ImportError:  # an older pipeline without SLA settings
        limit = None
    if not misses.empty:
        layers = ", ".join(sorted({str(layer) for layer in misses["layer"].dropna()})) or "the run"
        st.error(
            f"SLA missed ({layers}): " + "; ".join(misses["message"].dropna().astype(str)), icon=":material/alarm:"
        )
        return
    took = ui.duration(run["seconds"]) + (f" of the {limit:g} minutes allowed" if limit else "")
    if run["status"] == "running":
        st.info(f"SLA: running, on time so far ({took}).", icon=":material/schedule:")
    elif run["status"] != "success" or (date_state is not None and not date_state.delivered):
        # A date that is not delivered has not met its SLA, however fast the run ended.
        st.error(
            f"SLA not met: extract date {run['run_date']} is not delivered (the run {run['status']} after "
            f"{ui.duration(run['seconds'])}).",
            icon=":material/alarm_off:",
        )
    else:
        st.success(f"SLA met: the run took {took}; no breach recorded.", icon=":material/alarm_on:")


sla_state()

st.subheader("Key figures")
kpis = data.query("kpis")
if kpis.empty:
    st.info("Gold holds no KPIs yet: the first successful run fills them.")
else:
    latest = kpis.iloc[0]
    previous = kpis.iloc[1] if len(kpis) > 1 else None

    def change(column: str, money: bool = False):
        if previous is None:
            return None
        difference = latest[column] - previous[column]
        return ui.tile_change(difference) if money else ui.signed(difference)

    clv_column = (
        "average_predicted_clv" if not ui.missing(latest["average_predicted_clv"]) else "average_historical_clv"
    )
    tiles = st.columns(5)
    tiles[0].metric(
        "Revenue",
        ui.tile_money(latest["revenue"]),
        change("revenue", money=True),
        border=True,
        help=f"{ui.money(latest['revenue'])} over {ui.number(latest['orders'])} order lines.",
    )
    tiles[1].metric("Orders", ui.number(latest["orders"]), change("orders"), border=True)
    tiles[2].metric("Customers", ui.number(latest["customers"]), change("customers"), border=True)
    tiles[3].metric(
        "Average order value",
        ui.tile_money(latest["average_order_value"]),
        change("average_order_value", money=True),
        border=True,
    )
    tiles[4].metric(
        "Average predicted CLV" if clv_column == "average_predicted_clv" else "Average historical CLV",
        ui.tile_money(latest[clv_column]),
        change(clv_column, money=True),
        border=True,
        help=None
        if clv_column == "average_predicted_clv"
        else "The CLV models could not be fit on this data; historical CLV is total spend so far.",
    )
    st.caption(
        f"As of extract date {latest['run_date']}"
        + (
            f"; changes against {previous['run_date']}."
            if previous is not None
            else "; no earlier date to compare with."
        )
    )

left, right = st.columns(2)
with left:
    st.subheader("Rows per layer")
    rows = data.query("rows_per_layer", masked=masked, tables=registry.data_tables("silver", "gold"))
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "layer": "Layer",
            "table_name": "Table",
            "row_count": st.column_config.NumberColumn("Rows", format="localized"),
        },
    )
    st.caption("Bronze: rows loaded over every extract; silver and gold: rows now.")
with right:
    st.subheader("Data freshness per source")
    freshness = data.query("freshness")
    st.dataframe(
        freshness,
        hide_index=True,
        column_config={
            "source_name": "Source",
            "files": "Files loaded",
            "rows_loaded": st.column_config.NumberColumn("Rows loaded", format="localized"),
            "days_behind": st.column_config.NumberColumn("Days behind today"),
            "hours_since_load": st.column_config.NumberColumn("Hours since load", format="%.1f"),
            "latest_extract_date": "Latest extract",
            "last_loaded_at": "Loaded at (UTC)",
        },
    )
    watermarks = data.query("source_watermarks")
    if not watermarks.empty:
        st.caption(
            "Database sources: the high-water mark of the latest extract, and its lag behind the "
            "source's clock when taken."
        )
        st.dataframe(
            watermarks,
            hide_index=True,
            column_config={
                "source_name": "Source",
                "watermark_column": "Watermark column",
                "high_watermark": "High-water mark",
                "rows_extracted": st.column_config.NumberColumn("Rows extracted", format="localized"),
                "keys_in_snapshot": st.column_config.NumberColumn("Keys in snapshot", format="localized"),
                "lag_minutes": st.column_config.NumberColumn("Lag (minutes)", format="%.1f"),
                "hours_since_extract": st.column_config.NumberColumn("Hours since extract", format="%.1f"),
                "extract_date": "Extract date",
                "extracted_at": "Extracted at (UTC)",
            },
        )
