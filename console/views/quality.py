"""Data quality: scores per table and dimension over time, a run's failing rules, the quarantine browser."""

import altair as alt
import streamlit as st

from console import data, ui

QUARANTINE_ROWS_SHOWN = 500

st.title("Data quality")
ui.require_runs()
masked = ui.masked()

st.subheader("Scores over time")
history = data.query("quality_history")
if history.empty:
    st.info("No quality gate has run yet: scores appear after the first run reaches silver.")
else:
    history = history.assign(table=history["table_name"].replace({"*": "run (all tables)"}))
    tables = sorted(history["table"].unique(), key=lambda name: (not name.startswith("run"), name))
    columns = st.columns(2)
    for index, table in enumerate(tables):
        scores = history[history["table"] == table]
        chart = alt.Chart(scores, title=table).mark_line(point=True).encode(
            x=alt.X("run_date:T", title="extract date", axis=alt.Axis(format="%Y-%m-%d", tickCount="day")),
            y=alt.Y("score:Q", title="score", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
            color=alt.Color("dimension:N", title="dimension"),
            tooltip=["run_date:T", "dimension", alt.Tooltip("score:Q", format=".2%"), "rows_checked", "run_id"],
        ).properties(height=220)
        columns[index % 2].altair_chart(chart, width="stretch")
    latest = history[history["run_date"] == history["run_date"].max()]
    overall = latest[latest["dimension"] == "overall"][["table_name", "table", "score", "rows_checked", "run_date"]]
    lost = data.query("quarantined_history")
    lost = lost[lost["run_date"] == overall["run_date"].max()]
    overall = overall.merge(lost[["table_name", "quarantined_share", "lines_quarantined", "lines_in"]],
                            on="table_name", how="left").drop(columns=["table_name"])
    st.dataframe(overall, hide_index=True, column_config={
        "table": "Table", "score": st.column_config.NumberColumn("Score (latest date)", format="percent"),
        "quarantined_share": st.column_config.NumberColumn(
            "Quarantined", format="percent",
            help="Share of the date's input lines that ended in quarantine (broken lines and rows dropped by a "
                 "rule; duplicates are not counted). The quality gate fails a run when a table's share is above "
                 "[quality] max_quarantined_share."),
        "lines_quarantined": st.column_config.NumberColumn("Lines quarantined", format="localized"),
        "lines_in": st.column_config.NumberColumn("Input lines", format="localized"),
        "rows_checked": st.column_config.NumberColumn("Rows checked", format="localized"),
        "run_date": "Extract date"})
    for row in lost[(lost["table_name"] != "*") & lost["is_breach"]].itertuples():
        st.warning(f"{row.table_name} lost {ui.percent(row.quarantined_share, 2)} of its {ui.number(row.lines_in)} "
                   f"input lines on {row.run_date} to quarantine, more than the {ui.percent(row.max_share, 2)} the "
                   "quality gate allows.", icon=":material/delete_sweep:")

st.subheader("Failing rules of a run")
quality_runs = data.query("quality_runs")
if quality_runs.empty:
    st.info("No run has evaluated quality rules yet.")
else:
    labels = dict(zip(quality_runs["run_id"], quality_runs["run_id"] + " · extract "
                      + quality_runs["run_date"].astype(str) + " · "
                      + quality_runs["failing_rules"].astype(str) + " failing rule(s)", strict=True))
    run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="quality_run")
    failing = data.query("failing_rules", run_id=run_id)
    if failing.empty:
        st.success("Every rule passed in this run.")
    else:
        st.dataframe(failing, hide_index=True, column_config={
            "table_name": "Table", "rule_name": "Rule", "dimension": "Dimension", "severity": "Severity",
            "rows_checked": "Rows checked", "rows_failed": "Rows failed",
            "pass_rate": st.column_config.NumberColumn("Pass rate", format="percent")})

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
rows = data.query("quarantine", masked=masked, limit=QUARANTINE_ROWS_SHOWN, **filters)
matching = 0 if rows.empty else int(rows["matching_rows"].iloc[0])
st.caption(f"{matching:,} quarantined row(s) match; showing the newest {min(matching, QUARANTINE_ROWS_SHOWN):,}."
           + (" E-mail addresses and phone numbers are masked: log in as ops to see them." if masked else ""))
st.dataframe(rows.drop(columns=["matching_rows"]), hide_index=True, column_config={
    "quarantine_id": None, "run_id": "Run", "stage": "Stage", "source_table": "Table", "source_file": "File",
    "line_number": "Line", "business_key": "Key", "rule_name": "Rule", "reason": "Reason", "record": "Record",
    "extract_date": "Extract date", "quarantined_at": "Quarantined at (UTC)"})
st.download_button(f"Download the {matching:,} matching rows (CSV)",
                   data=lambda: data.csv_bytes("quarantine", masked=masked, drop=("matching_rows",), limit=None,
                                               **filters),
                   file_name="metalayer_quarantine.csv", mime="text/csv", key="quarantine_csv",
                   icon=":material/download:", on_click="ignore")
