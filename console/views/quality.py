"""Data quality: scores per table and dimension over time, a run's failing rules, the quarantine browser."""

import json

import pandas as pd
import streamlit as st

from console import data, ui

QUARANTINE_ROWS_SHOWN = 100


def score_chart_spec(threshold: float) -> dict:
    """One table's scores per extract date and dimension, its quarantined share dashed, the gate's threshold."""
    return {
        "height": 240,
        "layer": [
            {
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": {
                        "field": "run_date",
                        "type": "temporal",
                        "title": "extract date",
                        "axis": {"format": "%Y-%m-%d", "tickCount": "day"},
                    },
                    "y": {
                        "field": "score",
                        "type": "quantitative",
                        "title": "score / quarantined share",
                        "scale": {"domain": [0, 1]},
                        "axis": {"format": "%"},
                    },
                    "color": {
                        "field": "dimension",
                        "type": "nominal",
                        "title": None,
                        # compact: in Streamlit's theme the eight entries were taller than the chart and clipped
                        "legend": {"labelFontSize": 11, "rowPadding": 1, "symbolSize": 50, "labelLimit": 190},
                        "scale": {"domain": list(ui.DIMENSION_COLOURS), "range": list(ui.DIMENSION_COLOURS.values())},
                    },
                    "strokeDash": {
                        "condition": {
                            "test": f"datum.dimension === {json.dumps(ui.QUARANTINED_SERIES)}",
                            "value": [4, 3],
                        },
                        "value": [1, 0],
                    },
                    "tooltip": [
                        {"field": "run_date", "type": "temporal"},
                        {"field": "dimension", "type": "nominal"},
                        {"field": "score", "type": "quantitative", "format": ".2%"},
                        {"field": "rows_checked", "type": "quantitative"},
                        {"field": "run_id", "type": "nominal"},
                    ],
                },
            },
            {
                "data": {"values": [{"threshold": threshold}]},
                "mark": {"type": "rule", "color": "#c62828", "strokeDash": [6, 4]},
                "encoding": {
                    "y": {"field": "threshold", "type": "quantitative"},
                    "tooltip": [
                        {"field": "threshold", "type": "quantitative", "format": ".0%", "title": "gate threshold"}
                    ],
                },
            },
        ],
    }


st.title("Data quality")
ui.require_runs()
masked = ui.masked()

st.subheader("Scores over time")
history = data.query("quality_history")
if history.empty:
    st.info("No quality gate has run yet: scores appear after the first run reaches silver.")
else:
    threshold = ui.quality_threshold()
    shares = data.query("quarantined_history")
    st.caption(
        f"Every chart on the same fixed axis, 0 to 100%, with the gate's threshold ({ui.percent(threshold, 0)}, "
        "`[quality] threshold`) dashed; each DAMA dimension keeps its colour on every chart. Beside the "
        "scores, the share of the date's input lines that ended in quarantine (grey)."
    )
    history = history.assign(table=history["table_name"].replace({"*": "run (all tables)"}))
    lines = pd.concat(
        [
            history[["table", "table_name", "run_date", "dimension", "score", "rows_checked", "run_id"]],
            shares.assign(
                table=shares["table_name"].replace({"*": "run (all tables)"}),
                dimension=ui.QUARANTINED_SERIES,
                score=shares["quarantined_share"],
                rows_checked=shares["lines_in"],
                run_id=None,
            )[["table", "table_name", "run_date", "dimension", "score", "rows_checked", "run_id"]],
        ],
        ignore_index=True,
    )
    tables = sorted(history["table"].unique(), key=lambda name: (not name.startswith("run"), name))
    # A Vega-Lite spec written out, not built with Altair: Altair validates every encoding against its JSON
    # schema, which took 0.1 s per chart here (two-thirds of this page's first visit on the server).
    spec = score_chart_spec(threshold)
    columns = st.columns(2)
    for index, table in enumerate(tables):
        with columns[index % 2]:
            st.markdown(f"**{table}**")  # above the chart: a Vega title was clipped by Streamlit's autosize
            st.vega_lite_chart(lines[lines["table"] == table], spec, width="stretch")
    latest = history[history["run_date"] == history["run_date"].max()]
    overall = latest[latest["dimension"] == "overall"][["table_name", "table", "score", "rows_checked", "run_date"]]
    lost = data.query("quarantined_history")
    lost = lost[lost["run_date"] == overall["run_date"].max()]
    overall = overall.merge(
        lost[["table_name", "quarantined_share", "lines_quarantined", "lines_in"]], on="table_name", how="left"
    ).drop(columns=["table_name"])
    st.dataframe(
        overall,
        hide_index=True,
        column_config={
            "table": "Table",
            "score": st.column_config.NumberColumn("Score (latest date)", format="percent"),
            "quarantined_share": st.column_config.NumberColumn(
                "Quarantined",
                format="percent",
                help="Share of the date's input lines that ended in quarantine (broken lines and rows dropped by a "
                "rule; duplicates are not counted). The quality gate fails a run when a table's share is above "
                "[quality] max_quarantined_share.",
            ),
            "lines_quarantined": st.column_config.NumberColumn("Lines quarantined", format="localized"),
            "lines_in": st.column_config.NumberColumn("Input lines", format="localized"),
            "rows_checked": st.column_config.NumberColumn("Rows checked", format="localized"),
            "run_date": "Extract date",
        },
    )
    for row in lost[(lost["table_name"] != "*") & lost["is_breach"]].itertuples():
        st.warning(
            f"{row.table_name} lost {ui.percent(row.quarantined_share, 2)} of its {ui.number(row.lines_in)} "
            f"input lines on {row.run_date} to quarantine, more than the {ui.percent(row.max_share, 2)} the "
            "quality gate allows.",
            icon=":material/delete_sweep:",
        )

st.subheader("Failing rules of a run")
quality_runs = data.query("quality_runs")
if quality_runs.empty:
    st.info("No run has evaluated quality rules yet.")
else:
    labels = dict(
        zip(
            quality_runs["run_id"],
            quality_runs["run_id"]
            + " · extract "
            + quality_runs["run_date"].astype(str)
            + " · "
            + quality_runs["failing_rules"].astype(str)
            + " failing rule(s)",
            strict=True,
        )
    )
    run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="quality_run")
    failing = data.query("failing_rules", run_id=run_id)
    if failing.empty:
        st.success("Every rule passed in this run.")
    else:
        st.dataframe(
            failing,
            hide_index=True,
            column_config={
                "table_name": "Table",
                "rule_name": "Rule",
                "dimension": "Dimension",
                "severity": "Severity",
                "rows_checked": "Rows checked",
                "rows_failed": "Rows failed",
                "pass_rate": st.column_config.NumberColumn("Pass rate", format="percent"),
            },
        )

st.subheader("Schema drift and header mismatches")
drift = data.query("schema_drift")
mismatches = [
    (state.run_date, family, cell.error)
    for state in ui.date_grid(masked)
    for family, cell in state.cells.items()
    if cell.error and ui.header_mismatch(cell.error) is not None
]
if drift.empty and not mismatches:
    st.success("Every landing file's header matched its source contract.", icon=":material/check:")
if not drift.empty:
    st.dataframe(
        drift,
        hide_index=True,
        column_config={
            "source_name": "Source",
            "change": "Change",
            "action": "Action taken",
            "columns": "Columns",
            "detail": "Detail",
            "source_file": "File",
            "run_id": "Run",
            "extract_date": "Extract date",
            "detected_at": "Detected at (UTC)",
        },
    )
for run_date, family, error in mismatches:
    st.markdown(f"**{family} on {run_date}**: the header does not match the contract")
    st.dataframe(
        ui.header_mismatch(error),
        hide_index=True,
        column_config={
            "position": "Column",
            "expected": "Expected (contract)",
            "received": "Received (file)",
            "matches": "Same",
        },
    )

st.subheader("Quarantine")
facets = data.query("quarantine_facets", masked=masked)
if facets.empty:
    st.info("Nothing is quarantined.")
    st.stop()
left, middle, right = st.columns(3)
tables = left.multiselect("Table", sorted(facets["source_table"].unique()), key="quarantine_tables")
rules = middle.multiselect("Rule", sorted(facets["rule_name"].unique()), key="quarantine_rules")
run_ids = right.multiselect("Run", list(dict.fromkeys(facets["run_id"])), key="quarantine_runs")
filters = {"tables": tables, "rules": rules, "runs": run_ids}
st.markdown("**By rule and file**")
groups = data.query("quarantine_groups", masked=masked, **filters)
st.dataframe(
    groups,
    hide_index=True,
    column_config={
        "source_table": "Table",
        "source_file": "File",
        "rule_name": "Rule",
        "quarantined_rows": st.column_config.NumberColumn("Rows", format="localized"),
        "sample_lines": "First lines",
        "sample_reason": "Sample reason",
        "sample_record": "Sample record",
    },
)
st.markdown("**Rows**")
rows = data.query("quarantine", masked=masked, limit=QUARANTINE_ROWS_SHOWN, **filters)
matching = 0 if rows.empty else int(rows["matching_rows"].iloc[0])
st.caption(
    f"{matching:,} quarantined row(s) match; showing the newest {min(matching, QUARANTINE_ROWS_SHOWN):,}."
    + (" E-mail addresses and phone numbers are masked: log in as ops to see them." if masked else "")
)
st.dataframe(
    rows.drop(columns=["matching_rows"]),
    hide_index=True,
    column_config={
        "quarantine_id": None,
        "run_id": "Run",
        "stage": "Stage",
        "source_table": "Table",
        "source_file": "File",
        "line_number": "Line",
        "business_key": "Key",
        "rule_name": "Rule",
        "reason": "Reason",
        "record": "Record",
        "extract_date": "Extract date",
        "quarantined_at": "Quarantined at (UTC)",
    },
)
st.download_button(
    f"Download the {matching:,} matching rows (CSV)",
    data=lambda: data.csv_bytes("quarantine", masked=masked, drop=("matching_rows",), limit=None, **filters),
    file_name="metalayer_quarantine.csv",
    mime="text/csv",
    key="quarantine_csv",
    icon=":material/download:",
    on_click="ignore",
)
