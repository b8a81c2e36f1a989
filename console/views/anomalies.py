"""Anomalies: each date's source and gold metrics against their weekday-adjusted baseline (meta.anomalies)."""

import altair as alt
import streamlit as st

from console import data, ui

DATES_SHOWN = 90

st.title("Anomalies")
ui.require_runs()
st.caption(
    "Per source: lines per extract, and per column the null rate and distinct count; from gold: revenue "
    "per region and average unit price. Each is compared with its own last extract dates (median of the "
    "same weekday plus the overall level); the score is a robust z-score, and a metric is an anomaly when "
    "its size reaches luigi.cfg [anomalies] threshold."
)

scores = data.query("anomalies", dates=DATES_SHOWN)
if scores.empty:
    st.info("No anomaly scores yet: they are computed after gold, for every extract date a run completes.")
    st.stop()

dates = sorted(scores["extract_date"].unique(), reverse=True)
chosen = st.selectbox("Extract date", dates, key="anomalies_date")
day = scores[scores["extract_date"] == chosen]
flagged = day[day["is_anomaly"]].sort_values("score", key=abs, ascending=False)
scored = int(day["score"].notna().sum())
left, middle, right = st.columns(3)
left.metric("Anomalies", ui.number(len(flagged)))
middle.metric("Metrics scored", ui.number(scored))
right.metric("Dates of history", ui.number(int(day["history_dates"].max())))
if scored == 0:
    st.info(
        "Not scored yet: a metric needs luigi.cfg [anomalies] min_history extract dates of history (a "
        "source's first extract, its initial load, does not count)."
    )
elif flagged.empty:
    st.success(f"No anomaly on {chosen}.")
else:
    st.dataframe(
        flagged[["source_name", "metric", "subject", "value", "expected", "expected_low", "expected_high", "score"]],
        hide_index=True,
        column_config={
            "source_name": "Source",
            "metric": "Metric",
            "subject": "Column / region",
            "value": st.column_config.NumberColumn("Value", format="%.4g"),
            "expected": st.column_config.NumberColumn("Expected", format="%.4g"),
            "expected_low": st.column_config.NumberColumn("Normal from", format="%.4g"),
            "expected_high": st.column_config.NumberColumn("Normal to", format="%.4g"),
            "score": st.column_config.NumberColumn(
                "Score", format="%.1f", help="robust z-score: + above, - below the expected value"
            ),
        },
    )

st.subheader("Anomalies per extract date")
counts = scores.groupby("extract_date", as_index=False).agg(anomalies=("is_anomaly", "sum"))
st.altair_chart(
    alt.Chart(counts)
    .mark_bar()
    .encode(
        x=alt.X("extract_date:T", title="extract date", axis=alt.Axis(format="%Y-%m-%d")),
        y=alt.Y("anomalies:Q", title="anomalies", axis=alt.Axis(tickMinStep=1)),
        tooltip=["extract_date:T", "anomalies:Q"],
    )
    .properties(height=180),
    width="stretch",
)

st.subheader("A metric against its baseline")
names = list(dict.fromkeys(list(flagged["series"]) + sorted(scores["series"].unique())))
series_name = st.selectbox("Metric", names, key="anomalies_series")
series = scores[scores["series"] == series_name]
x = alt.X("extract_date:T", title="extract date", axis=alt.Axis(format="%Y-%m-%d"))
band = (
    alt.Chart(series).mark_area(opacity=0.2).encode(x=x, y=alt.Y("expected_low:Q", title="value"), y2="expected_high:Q")
)
line = alt.Chart(series).mark_line().encode(x=x, y="value:Q")
points = (
    alt.Chart(series)
    .mark_point(filled=True)
    .encode(
        x=x,
        y="value:Q",
        color=alt.Color("is_anomaly:N", title="anomaly"),
        tooltip=[
            "extract_date:T",
            alt.Tooltip("value:Q", format=",.4g"),
            alt.Tooltip("expected:Q", format=",.4g"),
            alt.Tooltip("score:Q", format=".1f"),
        ],
    )
)
st.altair_chart((band + line + points).properties(height=260), width="stretch")
st.caption("The shaded band is the normal range (the expected value plus or minus the threshold times the scale).")
