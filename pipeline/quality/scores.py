"""Quality scores and quarantined shares of an extract date, from meta.quality_results and the quarantine.

The score formulas are in rules.py; the quality gate (pipeline/tasks_silver.py, SilverQualityGate) writes what
these compute, and the runner prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core import db
from pipeline.core.config import quality as quality_config
from pipeline.quality.rules import dimension_scores, load_rules, run_score, table_score


@dataclass(frozen=True)
class QuarantinedShare:
    """How many of a silver table's input lines for one extract date ended in quarantine.

    Input lines are the records of the date's landing files (loaded plus rejected by
    bronze); quarantined are the broken lines bronze rejected plus the rows silver's
    drop rules removed. Exact copies and superseded versions are placed, not lost.
    """

    table: str
    lines_in: int
    bronze_rejected: int
    silver_quarantined: int
    top_rules: tuple[tuple[str, int], ...] = ()  # (rule, lines) most first, both stages

    @property
    def quarantined(self) -> int:
        return self.bronze_rejected + self.silver_quarantined

    @property
    def share(self) -> float | None:
        return self.quarantined / self.lines_in if self.lines_in else None

    def exceeds(self, limit: float) -> bool:
        return self.share is not None and self.share > limit

    def describe(self, limit: float | None = None) -> str:
        rules = ", ".join(f"{rule} {lines:,}" for rule, lines in self.top_rules[:3])
        over = f", more than the {percent(limit)} of [quality] max_quarantined_share" if limit is not None else ""
        return (
            f"{self.table} quarantined {percent(self.share)} of its {self.lines_in:,} input lines{over} "
            f"({self.quarantined:,}: {self.bronze_rejected:,} broken, {self.silver_quarantined:,} dropped by "
            f"rules" + (f"; most by {rules}" if rules else "") + ")"
        )


def percent(value) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.2f}%"


def quarantined_shares(conn, run_date, tables: dict[str, str]) -> dict[str, QuarantinedShare]:
    """Per silver table (`tables`: source name -> table), the date's input lines and those that ended in
    quarantine (see QuarantinedShare).

    Lines in and bronze rejects come from meta.ingested_files (counted as the file
    was read), silver drops from silver.quarantine.
    """
    with conn.cursor() as cur:
        cur.execute(
            """select files.source_name, coalesce(sum(files.records), 0)::bigint,
                      coalesce(sum(files.rows_rejected), 0)::bigint,
                      coalesce(sum((select count(*) from silver.quarantine
                                    where quarantine.stage = 'silver' and quarantine.load_id = files.load_id)),
                               0)::bigint
               from meta.ingested_files as files
               where files.extract_date = %s
               group by files.source_name""",
            (run_date,),
        )
        counts = {source: row for source, *row in cur.fetchall()}
        cur.execute(
            """select files.source_name, quarantine.rule_name, count(*)
               from silver.quarantine as quarantine
               inner join meta.ingested_files as files on quarantine.load_id = files.load_id
               where files.extract_date = %s and quarantine.stage in ('bronze', 'silver')
               group by files.source_name, quarantine.rule_name
               order by count(*) desc, quarantine.rule_name""",
            (run_date,),
        )
        rules: dict[str, list[tuple[str, int]]] = {}
        for source, rule, lines in cur.fetchall():
            rules.setdefault(source, []).append((rule, lines))
    shares = {}
    for source, table in tables.items():
        lines_in, rejected, dropped = counts.get(source, (0, 0, 0))
        shares[table] = QuarantinedShare(
            table=table,
            lines_in=lines_in,
            bronze_rejected=rejected,
            silver_quarantined=dropped,
            top_rules=tuple(rules.get(source, ())),
        )
    return shares


def latest_results(conn, run_date) -> list[dict]:
    """Each table's rule results from its latest evaluation for the date."""
    with conn.cursor() as cur:
        cur.execute(
            """select distinct on (table_name, rule_name) table_name, rule_name, dimension, severity, rows_checked,
                      rows_failed, pass_rate
               from meta.quality_results where run_date = %s
               order by table_name, rule_name, checked_at desc""",
            (run_date,),
        )
        keys = ("table_name", "rule_name", "dimension", "severity", "rows_checked", "rows_failed", "pass_rate")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]


def compute_scores(conn, run_date) -> tuple[dict[tuple[str, str], tuple[float | None, int]], list[dict]]:
    """Scores keyed by (table, dimension); ('*', 'overall') is the run. Also the failing rules, worst first."""
    results = latest_results(conn, run_date)
    rule_set = load_rules()
    weights = rule_set.weights
    scores: dict[tuple[str, str], tuple[float | None, int]] = {}
    per_table: list[tuple[float | None, int]] = []
    for table in sorted({r["table_name"] for r in results}):
        table_results = [r for r in results if r["table_name"] == table]
        dims = dimension_scores(table_results)
        for dimension, (score, checked) in dims.items():
            scores[(table, dimension)] = (score, checked)
        # A table weighs by the rows its row-level rules checked (table-level checks count 1 each).
        row_level = {rule.name for rule in rule_set.rules(table.removeprefix("silver.")) if rule.is_row_level}
        rows = max((r["rows_checked"] for r in table_results if r["rule_name"] in row_level), default=0)
        overall = table_score(dims, weights)
        scores[(table, "overall")] = (overall, rows)
        per_table.append((overall, rows))
    scores[("*", "overall")] = (run_score(per_table), sum(n for _s, n in per_table))
    worst = sorted((r for r in results if r["rows_failed"]), key=lambda r: (r["pass_rate"], r["rule_name"]))
    return scores, worst


def quality_summary(url: str, run_date, tables: dict[str, str]) -> dict:
    """Scores, failing rules and quarantined shares of the date, with the limits they are held to."""
    with db.transaction(url) as conn:
        scores, worst = compute_scores(conn, run_date)
        shares = quarantined_shares(conn, run_date, tables)
    config = quality_config()
    return {
        "scores": scores,
        "worst": worst,
        "shares": shares,
        "threshold": config.threshold,
        "max_quarantined_share": config.max_quarantined_share,
    }
