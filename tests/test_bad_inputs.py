"""The bad-input corpus (tests/data/bad_inputs/) through the real pipeline, bronze and silver.

Each case is a small landing dir: the clean extracts of `_base/` for 2026-11-20
with the case folder's files laid over them (see the corpus README). Its
expected outcome, in `cases.toml`, is asserted exactly: rows per bronze source
and silver table, every quarantined line with its rule and reason, every
duplicate, the Luigi markers, and for a file that cannot be loaded the error
naming the file and line, with nothing of that file left anywhere. Whatever the
case, every line is accounted for: a bronze line is a silver row, a quarantined
row or a duplicate, and a file's records are its loaded plus rejected lines.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tomllib
from datetime import date
from pathlib import Path

import pytest

from pipeline.core.sources import SOURCES
from pipeline.operations.runner import run_pipeline
from tests.test_silver import luigi_setting

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
SPEC = tomllib.loads((CORPUS / "cases.toml").read_text())
DEFAULTS = SPEC["defaults"]
CASES = SPEC["cases"]
DAY = DEFAULTS["date"]
DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SILVER_TABLES = {"crm_customers": "customers", "erp_products": "products", "erp_sales": "sales"}
ALL_TASKS = [
    "CrmCustomersRaw",
    "ErpProductsRaw",
    "ErpSalesRaw",
    "SilverCustomers",
    "SilverProducts",
    "SilverSales",
    "SilverQualityGate",
]


def long_value(chars: int, seed: str) -> str:
    """A deterministic, incompressible value: hex digits of a sha256 chain."""
    blocks = (hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in range(chars // 64 + 1))
    return "".join(blocks)[:chars]


def build_field(folder: Path, spec: dict) -> None:
    """Replace one field of one line of a landing file (plain CSV lines only) by a long value."""
    path = folder / spec["file"]
    lines = path.read_text().split("\n")
    header = lines[0].split(",")
    fields = lines[spec["line"] - 1].split(",")
    fields[header.index(spec["column"])] = long_value(spec["chars"], spec["seed"])
    lines[spec["line"] - 1] = ",".join(fields)
    path.write_text("\n".join(lines))


def overlay(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        destination = target / item.name
        if destination.is_dir():
            shutil.rmtree(destination)
        elif destination.exists():
            destination.unlink()
        if item.is_dir():
            shutil.copytree(item, destination)
        else:
            shutil.copyfile(item, destination)


def build_landing(name: str, case: dict, root: Path) -> Path:
    landing = root / "landing"
    overlay(CORPUS / "_base", landing / DAY)
    folder = CORPUS / name
    if folder.is_dir():
        for item in folder.iterdir():
            if item.is_dir() and DATE_FOLDER.match(item.name):
                overlay(item, landing / item.name)
        plain = root / "plain"
        plain.mkdir()
        for item in folder.iterdir():
            if not (item.is_dir() and DATE_FOLDER.match(item.name)):
                (shutil.copytree if item.is_dir() else shutil.copyfile)(item, plain / item.name)
        overlay(plain, landing / DAY)
    for file_name in case.get("remove", []):
        (landing / DAY / file_name).unlink()
    if "build" in case:
        build_field(landing / DAY, case["build"])
    return landing


def expected_counts(case: dict, key: str) -> dict[str, int]:
    return {**DEFAULTS[key], **case.get(key, {})}


def quarantine_rows(query) -> list[tuple]:
    rows = query("select source_table, line_number, rule_name, reason, extract_date::text from silver.quarantine")
    return sorted((table, line, rule, reason, day) for table, line, rule, reason, day in rows)


def expected_quarantine(case: dict) -> list[tuple]:
    return sorted((e[0], e[1], e[2], e[3], e[4] if len(e) > 4 else DAY) for e in case.get("quarantine", []))


def markers(query) -> list[tuple[str, str]]:
    """(task family, date) of every Luigi marker; task ids start with the family and the date."""
    found = []
    for (update_id,) in query("select update_id from meta.table_updates"):
        family, year, month, day = update_id.split("_")[:4]
        found.append((family, f"{year}-{month}-{day}"))
    return sorted(found)


def run_case(name: str, landing: Path):
    case = CASES[name]
    dates = case.get("dates", [DAY])
    results = []
    # Neither the quality gate's verdict on a tiny file nor the retry policy (see
    # test_a_file_that_cannot_be_loaded_is_tried_once) is what these cases test; without Luigi's
    # extra attempt an error case takes a second instead of four.
    with luigi_setting("quality", "on_breach", "warn"), luigi_setting("scheduler", "retry_count", "1"):
        for run_date in dates:
            results.append(run_pipeline(date.fromisoformat(run_date), landing=landing, trigger="test", upto="silver"))
    return results


def test_a_file_that_cannot_be_loaded_is_tried_once(warehouse, query, tmp_path):
    """Under the configured retry policy: the loader's error is permanent, so Luigi does not try again."""
    landing = build_landing("empty_file", CASES["empty_file"], tmp_path)
    with luigi_setting("quality", "on_breach", "warn"):
        result = run_pipeline(date.fromisoformat(DAY), landing=landing, trigger="test", upto="silver")
    assert not result.success
    assert query("select task_family, status from meta.task_runs where task_family = 'ErpSalesRaw'") == [
        ("ErpSalesRaw", "failed")
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_case(warehouse, query, tmp_path, name):
    case = CASES[name]
    landing = build_landing(name, case, tmp_path)
    results = run_case(name, landing)
    result = results[-1]
    expect = case["expect"]
    dates = case.get("dates", [DAY])

    if expect == "load":
        assert all(r.success for r in results), result.luigi_summary
        assert markers(query) == sorted((task, d) for task in ALL_TASKS for d in dates)
    else:
        assert not result.success
        assert query("select status from meta.pipeline_runs where run_id = %s", (result.run_id,)) == [("failed",)]
        assert markers(query) == sorted((task, DAY) for task in case["markers"])
        path = landing / DAY / case["error"]["file"]
        if expect == "missing":
            assert result.luigi_status == "MISSING_EXT"
            assert result.error == f"missing input: {path}"
            assert query("select count(*) from meta.task_runs where status = 'failed'") == [(0,)]
        else:
            assert expect == "error"
            line = case["error"].get("line")
            message = f"LandingFileError: {path.resolve()}{f':{line}' if line else ''}: {case['error']['reason']}"
            failed = query("select task_family, error from meta.task_runs where status = 'failed'")
            assert sorted(family for family, _error in failed) == sorted(case["failed"])  # one attempt each
            assert all(error.startswith(message + "\n") for _family, error in failed), failed[0][1][:600]
            # Nothing of the file anywhere: no load, no bronze row, no quarantined line.
            assert query("select count(*) from meta.ingested_files where source_file = %s", (str(path.resolve()),)) == [
                (0,)
            ]
            assert query("select count(*) from silver.quarantine where source_file = %s", (str(path.resolve()),)) == [
                (0,)
            ]

    # Rows per bronze source and silver table, exactly.
    bronze = expected_counts(case, "bronze")
    silver = expected_counts(case, "silver")
    for source_name, source in SOURCES.items():
        ((rows,),) = query(f"select count(*) from bronze.{source.bronze_table}_rows")  # noqa: S608 - contract names
        assert rows == bronze[source_name], source_name
        ((in_silver,),) = query(f"select count(*) from silver.{SILVER_TABLES[source_name]}")  # noqa: S608
        assert in_silver == silver[SILVER_TABLES[source_name]], source_name

    # Every quarantined line with its rule and reason; every duplicate with its kind.
    assert quarantine_rows(query) == expected_quarantine(case)
    assert query(
        "select count(*) from silver.quarantine where reason = '' or record is null "
        "or source_file is null or line_number is null"
    ) == [(0,)]
    assert sorted(query("select source_table, line_number, kind, extract_date::text from silver.duplicates")) == sorted(
        (e[0], e[1], e[2], e[3] if len(e) > 3 else DAY) for e in case.get("duplicates", [])
    )

    assert_accounted_for(query)
    for check in case.get("checks", []):
        assert [list(row) for row in query(check["sql"])] == check["rows"], check["sql"]


def assert_accounted_for(query) -> None:
    """A file's records are its loaded plus rejected lines; a loaded line ends in one silver place."""
    files = query("select load_id, records, rows_loaded, rows_rejected, physical_lines from meta.ingested_files")
    for load_id, records, loaded, rejected, physical in files:
        assert records == loaded + rejected <= physical
        assert query("select count(*) from silver.quarantine where stage = 'bronze' and load_id = %s", (load_id,)) == [
            (rejected,)
        ]
    for source_name, source in SOURCES.items():
        table = f"silver.{SILVER_TABLES[source_name]}"
        ((lines,),) = query(f"select count(*) from bronze.{source.bronze_table}_rows")  # noqa: S608 - contract names
        ((silver_rows,),) = query(f"select count(*) from {table}")  # noqa: S608 - contract names
        ((quarantined,),) = query(
            "select count(*) from silver.quarantine where stage = 'silver' and source_table = %s", (table,)
        )
        ((duplicates,),) = query("select count(*) from silver.duplicates where source_table = %s", (table,))
        if query("select 1 from meta.table_updates where target_table = %s", (table,)):
            assert lines == silver_rows + quarantined + duplicates, table


def test_corpus_has_at_least_40_cases_each_with_an_outcome():
    assert len(CASES) >= 40
    for name, case in CASES.items():
        assert case["expect"] in ("load", "error", "missing"), name
        assert case.get("about"), name
        assert (CORPUS / name).is_dir() or "build" in case or "remove" in case, name
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()} - {"_base"}
    assert folders <= set(CASES), folders - set(CASES)
