"""Anomaly detection over 60 generated days: injected anomalies found, a clean history quiet.

Two histories of the same seed and volumes (3,000 customers; deltas of about
1,500 sales lines, Poisson around a weekday pattern), one with twelve labelled
anomalies on delta dates (three of each kind, written in the folders'
manifest.json), one clean. Both run through bronze, silver, gold and the
Anomalies task with the real pipeline, date by date, in two processes at once.
Scores start once a metric has [anomalies] min_history = 21 dates of history, so
the anomalies are injected after that.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import uuid
from datetime import date, timedelta
from pathlib import Path

import luigi
import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

START = date(2026, 1, 5)
DAYS = 60
VOLUMES = {"customers": 3000, "orders": 20_000, "delta_orders": 1500, "delta_weekday": True}
KINDS = ("missing_sales", "prices_in_cents", "region_silent", "column_null")
OFFSETS = (23, 27, 31, 35, 38, 41, 45, 48, 51, 54, 56, 58)
ANOMALIES = {START + timedelta(days=offset): KINDS[index % 4] for index, offset in enumerate(OFFSETS)}
# The metric each kind must move, given its manifest label.
EXPECTED_METRIC = {
    "missing_sales": lambda label: ("erp_sales", "volume", ""),
    "prices_in_cents": lambda label: ("gold", "average_unit_price", ""),
    "region_silent": lambda label: ("gold", "revenue", label["region"]),
    "column_null": lambda label: (label["source"], "null_rate", label["column"]),
}


def build_history(landing: Path, url: str) -> None:
    """Every date in order, each as a run of its own (bronze to gold, then Anomalies)."""
    from pipeline.tasks_anomalies import Anomalies

    os.environ["DATABASE_URL"] = url
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        ok = luigi.build(
            [Anomalies(date=day, landing_dir=str(landing))], local_scheduler=True, workers=1, log_level="WARNING"
        )
        if not ok:
            raise RuntimeError(f"the pipeline failed for {day}")


@pytest.fixture(scope="module")
def histories(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    from pipeline.core import db
    from pipeline.sample.generate import generate

    scenarios = {}
    for name, anomalies in (("injected", ANOMALIES), ("clean", {})):
        landing = tmp_path_factory.mktemp(f"landing-{name}")
        manifests = generate(landing, START, days=DAYS, anomalies=anomalies, **VOLUMES)
        database = f"test_anomalies_{name}_{uuid.uuid4().hex[:8]}"
        url = db.create_database(database, server_url)
        db.bootstrap(url)
        scenarios[name] = {"landing": landing, "manifests": manifests, "url": url, "database": database}
    # The clean history in a forked process while this one builds the injected one: two cores, half the time.
    child = multiprocessing.get_context("fork").Process(
        target=build_history, args=(scenarios["clean"]["landing"], scenarios["clean"]["url"])
    )
    saved = os.environ.get("DATABASE_URL")
    child.start()
    try:
        build_history(scenarios["injected"]["landing"], scenarios["injected"]["url"])
    finally:
        child.join()
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
    assert child.exitcode == 0, "the clean history's pipeline failed"
    yield scenarios
    for scenario in scenarios.values():
        db.drop_database(scenario["database"], server_url)


def read(url: str, query: str, params: dict | tuple | None = None) -> pd.DataFrame:
    from pipeline.core import db

    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return pd.DataFrame(cur.fetchall(), columns=[column.name for column in cur.description])


def scores(url: str) -> pd.DataFrame:
    frame = read(url, "select * from meta.anomalies")
    frame["extract_date"] = pd.to_datetime(frame["extract_date"]).dt.date
    return frame


def pick(frame: pd.DataFrame, **equal) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in equal.items():
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def labels(manifests: list[dict]) -> dict[date, dict]:
    return {date.fromisoformat(m["date"]): label for m in manifests for label in m.get("anomalies", [])}


def test_the_manifests_label_the_injected_anomalies(histories):
    found = labels(histories["injected"]["manifests"])
    assert {day: label["kind"] for day, label in found.items()} == ANOMALIES
    assert labels(histories["clean"]["manifests"]) == {}


def test_injected_anomalies_are_found_with_precision_and_recall_of_at_least_0_9(histories):
    scenario = histories["injected"]
    truth = labels(scenario["manifests"])
    frame = scores(scenario["url"])
    flagged = frame[frame["is_anomaly"]]
    flagged_dates = set(flagged["extract_date"])
    # Recall: the metric the anomaly must move is flagged on its date. Precision: a date with
    # any flagged metric (one alert a day) is a labelled date.
    caught = {
        day
        for day, label in truth.items()
        if not flagged[
            (flagged["extract_date"] == day)
            & (
                flagged[["source_name", "metric", "subject"]].apply(tuple, axis=1)
                == EXPECTED_METRIC[label["kind"]](label)
            )
        ].empty
    }
    recall = len(caught) / len(truth)
    precision = len(flagged_dates & set(truth)) / len(flagged_dates)
    print(
        f"\ninjected: {len(truth)} anomalies, recall {recall:.2f}, precision {precision:.2f}; "
        f"{len(flagged)} metrics flagged on {len(flagged_dates)} dates"
    )
    assert recall >= 0.9, sorted(set(truth) - caught)
    assert precision >= 0.9, sorted(flagged_dates - set(truth))
    # Every date from the 22nd on is scored (21 dates of history), the history load never.
    scored_dates = set(frame.loc[frame["score"].notna(), "extract_date"])
    assert scored_dates == {START + timedelta(days=k) for k in range(22, DAYS)}


def test_a_clean_history_raises_at_most_one_false_alarm(histories):
    frame = scores(histories["clean"]["url"])
    flagged = frame[frame["is_anomaly"]]
    scored = frame["score"].notna().sum()
    print(
        f"\nclean: {scored} scores, {len(flagged)} false alarms on {flagged['extract_date'].nunique()} dates, "
        f"largest |score| {frame['score'].abs().max():.2f}"
    )
    assert flagged["extract_date"].nunique() <= 1, flagged[
        ["extract_date", "source_name", "metric", "subject", "score"]
    ]
    assert scored > 2000  # every metric of 38 dates: about 60 a date


def baseline_score(values: pd.Series, day: date, history_days: int = 56, min_relative_scale: float = 0.02):
    """The method of sql/anomalies/anomalies.sql for a count, written again with pandas: (expected, scale, score)."""
    history = values[values.index < day].sort_index().iloc[-history_days:]
    y = np.log1p(history.astype(float))
    weekdays = pd.Series([d.isoweekday() for d in y.index], index=y.index)
    level = y.median()
    per_weekday = y.groupby(weekdays).agg(["median", "count"])
    effect = (per_weekday["median"] - level).where(per_weekday["count"] >= 2, 0.0)
    adjusted = y - weekdays.map(effect)
    center = adjusted.median()
    mad = (adjusted - center).abs().median()
    depth = per_weekday.loc[per_weekday["count"] >= 2, "count"].mean()
    today_count = per_weekday["count"].get(day.isoweekday(), 0)
    spread = (
        1.4826
        * mad
        * math.sqrt(depth / (depth - 1))
        * math.sqrt(1 + math.pi / 2 * (1 / len(y) + (1 / today_count if today_count >= 2 else 0)))
    )
    expected_y = center + effect.get(day.isoweekday(), 0.0)
    scale = max(spread, min_relative_scale, 1 / math.sqrt(max(math.expm1(expected_y), 1)))
    return math.expm1(expected_y), scale, (math.log1p(values[day]) - expected_y) / scale


@pytest.mark.parametrize("offset", [OFFSETS[0], 40, DAYS - 1])
def test_the_sales_volume_score_recomputed_from_the_manifests(histories, offset):
    scenario = histories["injected"]
    # Lines per extract as the generator wrote them; the first folder (the history load) is no baseline.
    volumes = pd.Series(
        {date.fromisoformat(m["date"]): m["files"]["erp_sales.csv"]["records"] for m in scenario["manifests"][1:]}
    )
    day = START + timedelta(days=offset)
    expected, scale, score = baseline_score(volumes, day)
    row = pick(scores(scenario["url"]), extract_date=day, source_name="erp_sales", metric="volume")
    assert len(row) == 1
    row = row.iloc[0]
    assert row["value"] == volumes[day]
    assert row["history_dates"] == min(offset - 1, 56)  # the delta dates before it, at most history_days
    assert row["expected"] == pytest.approx(expected, rel=1e-9)
    assert row["scale"] == pytest.approx(scale, rel=1e-9)
    assert row["score"] == pytest.approx(score, rel=1e-9)


def test_revenue_and_price_values_are_those_of_the_gold_fact(histories):
    url = histories["injected"]["url"]
    frame = scores(url)
    # Summed here with pandas from the fact's lines (the test builds no aggregate: Anomalies needs only the fact).
    lines = read(url, "select order_date, region, amount::float8 as amount from gold.fact_sales")
    lines["order_date"] = pd.to_datetime(lines["order_date"]).dt.date
    daily = lines.groupby(["order_date", "region"], as_index=False).agg(revenue=("amount", "sum"))
    revenue = frame[frame["metric"] == "revenue"].merge(
        daily, how="left", left_on=["extract_date", "subject"], right_on=["order_date", "region"]
    )
    assert len(revenue) == 9 * DAYS  # nine regions on every date (the first one unscored)
    # A region without sales is a zero (the region_silent days), not a missing point.
    assert revenue["value"].to_numpy() == pytest.approx(revenue["revenue"].fillna(0).to_numpy(), rel=1e-12)
    silent = [
        (day, label["region"])
        for day, label in labels(histories["injected"]["manifests"]).items()
        if label["kind"] == "region_silent"
    ]
    for day, region in silent:
        assert pick(revenue, extract_date=day, subject=region)["value"].item() == 0
    prices = read(url, "select order_date, avg(unit_price)::float8 as price from gold.fact_sales group by 1")
    prices = dict(zip(pd.to_datetime(prices["order_date"]).dt.date, prices["price"], strict=True))
    for row in frame[frame["metric"] == "average_unit_price"].itertuples():
        assert row.value == pytest.approx(prices[row.extract_date], rel=1e-12)


def test_the_exporter_serves_the_newest_dates_anomalies(histories):
    from pipeline.core import db
    from pipeline.operations.metrics import warehouse_metrics

    url = histories["injected"]["url"]
    with db.transaction(url) as conn, conn.cursor() as cur:
        families = {family.name: family for family in warehouse_metrics(cur)}
    served = {(s.labels["source"], s.labels["metric"]): s.value for s in families["metalayer_anomalies"].samples}
    last = START + timedelta(days=DAYS - 1)
    frame = pick(scores(url), extract_date=last)
    assert served == {key: float(group["is_anomaly"].sum()) for key, group in frame.groupby(["source_name", "metric"])}
    assert set(served) >= {("erp_sales", "volume"), ("gold", "revenue"), ("crm_customers", "null_rate")}
    assert families["metalayer_anomalies_extract_date_timestamp_seconds"].samples[0].value == pytest.approx(
        (last - date(1970, 1, 1)).total_seconds()
    )


def test_the_console_page_lists_a_dates_anomalies(histories, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DATABASE_URL", histories["injected"]["url"])
    at = AppTest.from_file(str(REPO_ROOT / "console" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/anomalies.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric[0].label == "Anomalies" and at.metric[0].value == "0"  # the newest date is a clean one
    assert "No anomaly on" in at.success[0].value
    last_labelled = max(ANOMALIES)  # a column_null day
    at.selectbox(key="anomalies_date").set_value(last_labelled).run()
    assert not at.exception, [e.value for e in at.exception]
    frame = pick(scores(histories["injected"]["url"]), extract_date=last_labelled, is_anomaly=True)
    assert at.metric[0].value == str(len(frame))
    shown = at.dataframe[0].value
    assert set(zip(shown["source_name"], shown["metric"], shown["subject"], strict=True)) == set(
        zip(frame["source_name"], frame["metric"], frame["subject"], strict=True)
    )
    assert ("crm_customers", "null_rate", "phone") in set(
        zip(shown["source_name"], shown["metric"], shown["subject"], strict=True)
    )


def test_generated_anomalies_do_what_their_labels_say(tmp_path):
    from pipeline.sample.generate import generate

    days = {
        START + timedelta(days=k): spec
        for k, spec in enumerate(
            ("missing_sales", "prices_in_cents", "region_silent=Pacific", "column_null=phone"), start=1
        )
    }
    injected = generate(
        tmp_path / "injected", START, days=5, customers=500, orders=2000, delta_orders=400, anomalies=days
    )
    clean = generate(tmp_path / "clean", START, days=5, customers=500, orders=2000, delta_orders=400)

    def rows(path: Path) -> pd.DataFrame:
        """The file's well-formed single-line records (each physical line parsed alone: broken ones drop out)."""
        header, *lines = path.read_text(encoding="utf-8").splitlines()
        names = header.split(",")
        parsed = [fields for line in lines for fields in csv.reader([line]) if len(fields) == len(names)]
        return pd.DataFrame(parsed, columns=names)

    def sales(root: Path, day: date) -> pd.DataFrame:
        return rows(root / day.isoformat() / "erp_sales.csv")

    missing, cents, silent, nulls = days
    assert injected[1]["anomalies"][0]["kind"] == "missing_sales"
    kept, full = sales(tmp_path / "injected", missing), sales(tmp_path / "clean", missing)
    share = 1 - kept["order_id"].nunique() / full["order_id"].nunique()
    assert share == pytest.approx(0.4, abs=0.01)
    assert injected[1]["anomalies"][0]["lines_removed"] == len(full) - len(kept)
    priced, dollars = sales(tmp_path / "injected", cents), sales(tmp_path / "clean", cents)
    as_number = pd.to_numeric(dollars["unit_price"], errors="coerce")
    ok = as_number.notna() & dollars["unit_price"].str.fullmatch(r"-?\d+\.\d\d")
    assert (pd.to_numeric(priced.loc[ok, "unit_price"]) == (as_number[ok] * 100).round()).all()
    customers = rows(tmp_path / "injected" / nulls.isoformat() / "crm_customers.csv")
    assert (customers["phone"] == "").all()
    assert injected[4]["files"]["crm_customers.csv"]["defects"]["invalid_phone"] == 0
    regions = {}
    for m in clean:  # the customers' regions, latest row wins
        frame = rows(tmp_path / "clean" / m["date"] / "crm_customers.csv")
        regions.update(zip(frame["customer_id"], frame["region"].str.strip().str.lower(), strict=True))
    silent_lines = sales(tmp_path / "injected", silent)
    assert not (silent_lines["customer_id"].map(regions) == "pacific").any()
    assert (sales(tmp_path / "clean", silent)["customer_id"].map(regions) == "pacific").any()
    for m in injected:  # the manifest stays exact
        for info in m["files"].values():
            assert info["records"] == sum(info["broken_lines"].values()) + info["loadable_records"]
    assert json.loads((tmp_path / "injected" / silent.isoformat() / "manifest.json").read_text())["anomalies"] == [
        {"kind": "region_silent", "region": "Pacific", "lines_removed": injected[3]["anomalies"][0]["lines_removed"]}
    ]
