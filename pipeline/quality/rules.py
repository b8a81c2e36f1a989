"""Declarative quality rules (sql/quality_rules.toml) compiled to SQL, and the score formulas.

A row-level rule compiles to a predicate that is true for a good row; the silver
task evaluates every predicate in one pass over the staged rows. Table-level
rules (volume, freshness) compile to one query each.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from psycopg2 import sql

from pipeline.core.db import SQL_DIR

RULES_FILE = SQL_DIR / "quality_rules.toml"
DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "timeliness")
SEVERITIES = ("warn", "drop", "fail")
ROW_KINDS = (
    "not_null",
    "pattern",
    "parses",
    "accepted_values",
    "range",
    "max_length",
    "not_in_future",
    "unique",
    "references",
    "not_before",
    "expression",
)
REASON_VALUE_CHARS = 100  # a failing value longer than this is cut in the reason (the record keeps it whole)
TABLE_KINDS = ("volume", "freshness")


class RulesError(ValueError):
    """The rules file is invalid; the message names the file, the table and the rule."""


@dataclass(frozen=True)
class Rule:
    table: str
    name: str
    dimension: str
    severity: str
    kind: str
    reason: str
    params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_row_level(self) -> bool:
        return self.kind in ROW_KINDS

    @property
    def column(self) -> str | None:
        return self.params.get("column")

    def helper_ctes(self, index: int) -> list[sql.Composable]:
        """Common table expressions the predicate needs, over the CTE `model` (the staged rows)."""
        if self.kind != "unique" or "rank_column" in self.params:
            return []
        col = sql.Identifier(self.params["column"])
        # Only values used more than once, with the first line that used each.
        return [
            sql.SQL(
                """{name} as (
                   select distinct on ({c}) {c}, _load_id, _line_number from model
                   where copy_number = 1
                       and {c} in (select {c} from model where copy_number = 1 group by {c} having count(*) > 1)
                   order by {c}, _load_id, _line_number
               )"""
            ).format(name=sql.Identifier(f"first_use_{index}"), c=col)
        ]

    def predicate(self, index: int = 0) -> sql.Composable:
        """SQL that is true when a staged row passes; columns refer to the staged row unqualified."""
        p = self.params
        col = sql.Identifier(p["column"]) if "column" in p else None
        if self.kind == "not_null":
            return sql.SQL("{} is not null").format(col)
        if self.kind == "pattern":
            return sql.SQL("{c} is null or {c} ~ {r}").format(c=col, r=sql.Literal(p["regex"]))
        if self.kind == "parses":
            return sql.SQL("{raw} is null or {c} is not null").format(raw=sql.Identifier(p["raw"]), c=col)
        if self.kind == "accepted_values":
            values = sql.SQL(", ").join(sql.Literal(v) for v in p["values"])
            return sql.SQL("{c} is null or {c} in ({v})").format(c=col, v=values)
        if self.kind == "range":
            bounds = []
            if "min" in p:
                op = ">" if p.get("min_exclusive") else ">="
                bounds.append(sql.SQL("{} {} {}").format(col, sql.SQL(op), sql.Literal(p["min"])))
            if "max" in p:
                op = "<" if p.get("max_exclusive") else "<="
                bounds.append(sql.SQL("{} {} {}").format(col, sql.SQL(op), sql.Literal(p["max"])))
            return sql.SQL("{c} is null or ({b})").format(c=col, b=sql.SQL(" and ").join(bounds))
        if self.kind == "max_length":
            return sql.SQL("{c} is null or length({c}) <= {n}").format(c=col, n=sql.Literal(int(p["max"])))
        if self.kind == "not_in_future":
            if p.get("instant"):
                # A timestamptz: before the end of the run date, in UTC whatever the session's time zone.
                return sql.SQL("{c} is null or {c} < timezone('UTC', (%(date)s::date + 1)::timestamp)").format(c=col)
            return sql.SQL("{c} is null or {c} <= %(date)s").format(c=col)
        if self.kind == "unique":
            # Exact copies are counted as duplicates, not as a second use of the value.
            if "rank_column" in p:
                return sql.SQL("{c} is null or copy_number > 1 or {r} = 1").format(
                    c=col, r=sql.Identifier(p["rank_column"])
                )
            first_use = sql.Identifier(f"first_use_{index}")
            return sql.SQL(
                "{c} is null or copy_number > 1 or {c} not in (select {c} from {f}) "
                "or (_load_id, _line_number) in (select _load_id, _line_number from {f})"
            ).format(c=col, f=first_use)
        if self.kind == "references":
            table = sql.Identifier(*p["table"].split("."))
            return sql.SQL("{c} is null or {c} in (select {rc} from {t} where first_extract_date <= %(date)s)").format(
                c=col, rc=sql.Identifier(p["ref_column"]), t=table
            )
        if self.kind == "not_before":
            return sql.SQL("{c} is null or {b} is null or {c} >= {b} - {days}").format(
                c=col, b=sql.Identifier(p["bound"]), days=sql.Literal(int(p.get("tolerance_days", 0)))
            )
        if self.kind == "expression":
            return sql.SQL(p["sql"])
        raise RulesError(f"{RULES_FILE}: {self.table}.{self.name}: {self.kind} is not a row-level kind")

    def reason_sql(self) -> sql.Composable:
        """The reason stored with a failing row, with the failing value appended."""
        if self.column:
            value = sql.SQL("{}::text").format(sql.Identifier(self.params.get("raw") or self.column))
            return sql.SQL(
                "concat({r}, ': ', case when length({v}) > {n} "
                "then concat(quote_literal(left({v}, {n})), '... (', length({v}), ' characters)') "
                "else coalesce(quote_literal({v}), 'null') end)"
            ).format(r=sql.Literal(self.reason), v=value, n=sql.Literal(REASON_VALUE_CHARS))
        return sql.Literal(self.reason)


@dataclass(frozen=True)
class RuleSet:
    weights: dict[str, float]
    tables: dict[str, tuple[Rule, ...]]

    def rules(self, table: str) -> tuple[Rule, ...]:
        return self.tables.get(table, ())


_REQUIRED = {
    "not_null": ("column",),
    "pattern": ("column", "regex"),
    "parses": ("raw", "column"),
    "accepted_values": ("column", "values"),
    "range": ("column",),
    "max_length": ("column", "max"),
    "not_in_future": ("column",),
    "unique": ("column",),
    "references": ("column", "table", "ref_column"),
    "not_before": ("column", "bound"),
    "expression": ("sql",),
    "volume": ("min_ratio", "max_ratio"),
    "freshness": ("max_age_days",),
}


def parse_rules(text: str, path: Path = RULES_FILE) -> RuleSet:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: {exc}") from exc
    weights = {d: float(doc.get("weights", {}).get(d, 1.0)) for d in DIMENSIONS}
    tables: dict[str, tuple[Rule, ...]] = {}
    for table, spec in doc.get("tables", {}).items():
        rules = []
        seen = set()
        for index, raw in enumerate(spec.get("rules", []), start=1):
            where = f"{path}: tables.{table}.rules[{index}] ({raw.get('name', '?')})"
            missing = [k for k in ("name", "dimension", "severity", "kind", "reason") if k not in raw]
            if missing:
                raise RulesError(f"{where}: missing {', '.join(missing)}")
            if raw["dimension"] not in DIMENSIONS:
                raise RulesError(f"{where}: dimension must be one of {', '.join(DIMENSIONS)}")
            if raw["severity"] not in SEVERITIES:
                raise RulesError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
            if raw["kind"] not in _REQUIRED:
                raise RulesError(f"{where}: unknown kind {raw['kind']!r}")
            absent = [k for k in _REQUIRED[raw["kind"]] if k not in raw]
            if absent:
                raise RulesError(f"{where}: kind {raw['kind']} needs {', '.join(absent)}")
            if raw["kind"] in TABLE_KINDS and raw["severity"] == "drop":
                raise RulesError(f"{where}: a table-level rule has no rows to drop; use warn or fail")
            if raw["kind"] == "range" and "min" not in raw and "max" not in raw:
                raise RulesError(f"{where}: a range needs min or max")
            if raw["name"] in seen:
                raise RulesError(f"{where}: duplicate rule name")
            seen.add(raw["name"])
            params = {k: v for k, v in raw.items() if k not in ("name", "dimension", "severity", "kind", "reason")}
            rules.append(
                Rule(
                    table=table,
                    name=raw["name"],
                    dimension=raw["dimension"],
                    severity=raw["severity"],
                    kind=raw["kind"],
                    reason=raw["reason"],
                    params=params,
                )
            )
        tables[table] = tuple(rules)
    return RuleSet(weights=weights, tables=tables)


@cache
def _load(path: Path, mtime: float) -> RuleSet:
    return parse_rules(path.read_text(), path)


def load_rules(path: Path | None = None) -> RuleSet:
    """The rules file named in luigi.cfg ([quality] rules_file), re-read when it changes."""
    if path is None:
        from pipeline.core.config import quality, resolve_path

        path = resolve_path(quality().rules_file)
    return _load(path, path.stat().st_mtime)


# ---------------------------------------------------------------- scores


def dimension_scores(results: list[dict]) -> dict[str, tuple[float, int]]:
    """Per dimension: pass rate over all its checks (1 - failed / checked) and rows checked."""
    totals: dict[str, list[int]] = {}
    for r in results:
        if r["rows_checked"]:
            acc = totals.setdefault(r["dimension"], [0, 0])
            acc[0] += r["rows_checked"]
            acc[1] += r["rows_failed"]
    return {d: (1 - failed / checked, checked) for d, (checked, failed) in totals.items()}


def table_score(per_dimension: dict[str, tuple[float, int]], weights: dict[str, float]) -> float | None:
    """Weighted mean of the dimension scores that have checks."""
    used = {d: s for d, (s, _n) in per_dimension.items() if weights.get(d, 0) > 0}
    if not used:
        return None
    return sum(weights[d] * s for d, s in used.items()) / sum(weights[d] for d in used)


def run_score(tables: list[tuple[float | None, int]]) -> float | None:
    """Mean of table scores weighted by the rows each table checked."""
    scored = [(s, n) for s, n in tables if s is not None and n > 0]
    if not scored:
        return None
    return sum(s * n for s, n in scored) / sum(n for _s, n in scored)
