"""`make run`: the newcomer's path from a fresh clone to a loaded warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.core import db
from pipeline.core.config import landing_dir as default_landing_dir
from pipeline.core.landing import extract_dates
from pipeline.operations.runner import Printer, RunResult, format_summary, run_pipeline


def quickstart(landing: Path | None = None, today: date | None = None, printer: Printer = print) -> RunResult:
    """Start the database, seed the landing dir when it has no extracts, run the newest date."""
    from pipeline.sample.generate import generate

    landing = Path(landing) if landing else default_landing_dir()
    url = db.Warehouse.from_environment().ready().url
    printer(f"Database: {db.psycopg2_dsn(url)}")
    dates = extract_dates(landing)
    if not dates:
        run_date = today or date.today()
        printer(f"No extracts in {landing}: generating seed-scale sample data for {run_date} ...")
        generate(landing, run_date, progress=printer)
        dates = [run_date]
    result = run_pipeline(dates[-1], landing=landing, printer=printer)
    printer(format_summary(result))
    printer(
        "\nNext:\n"
        "  make console                 # Streamlit console on http://localhost:8501\n"
        "  make luigid                  # Luigi visualiser on http://localhost:8082\n"
        "  .venv/bin/metalayer --help   # every command"
    )
    return result
