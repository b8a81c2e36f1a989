-- Anomaly scores: one row per extract date and metric (sql/anomalies/anomalies.sql,
-- task Anomalies). Metrics: per source, volume (records per extract) and per
-- column null_rate and distinct_count (from meta.column_profiles); from gold,
-- revenue per region and average_unit_price of the order date equal to the
-- extract date. `subject` is the column or region ('' for a whole-source
-- metric). expected, expected_low and expected_high are in the metric's units;
-- scale and score are on the compared series (ln(1 + value), a null rate as it
-- is). score is null until history_dates reaches [anomalies] min_history.
create table if not exists meta.anomalies (
    run_id text,
    source_name text not null,
    metric text not null check (metric in ('volume', 'null_rate', 'distinct_count', 'revenue',
                                           'average_unit_price')),
    subject text not null default '',
    value float8 not null,
    expected float8,
    expected_low float8,
    expected_high float8,
    scale float8,
    score float8,
    history_dates integer not null,
    weekday_dates integer not null,
    is_anomaly boolean not null,
    extract_date date not null,
    computed_at timestamptz not null default now(),
    primary key (extract_date, source_name, metric, subject)
);
create index if not exists anomalies_flagged_idx on meta.anomalies (extract_date) where is_anomaly;
