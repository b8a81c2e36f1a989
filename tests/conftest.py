"""Shared fixtures: a real embedded PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Short retry and SLA-check waits, read after luigi.cfg by this process and its subprocesses.
os.environ["LUIGI_CONFIG_PATH"] = str(REPO_ROOT / "tests" / "luigi.test.cfg")


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server tests create their databases on: DATABASE_URL's; else, with METALAYER_TEST_POSTGRES=15 (or
    16, 17), a password-authenticated Debian PostgreSQL of that version on TCP; else an embedded 18 of their own."""
    from pipeline.core import db

    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    home = tmp_path_factory.mktemp("metalayer-home")
    os.environ["METALAYER_HOME"] = str(home)
    if os.environ.get("METALAYER_TEST_POSTGRES"):
        from tests.debian_postgres import debian_postgres

        with debian_postgres(int(os.environ["METALAYER_TEST_POSTGRES"])) as maintenance:
            url = db.create_database(db.EMBEDDED_DATABASE, maintenance)  # where the embedded one would put it
            os.environ["DATABASE_URL"] = url  # every process of the session, as on a managed server
            # as a deployment sets it: the console gives the read-only role this password and logs in with it
            os.environ.setdefault("METALAYER_READER_PASSWORD", "reader-" + uuid.uuid4().hex[:12])
            yield url
            os.environ.pop("DATABASE_URL", None)
        return
    url = db.database_url()
    yield url
    os.environ.pop("DATABASE_URL", None)
    db.stop_embedded()


@pytest.fixture
def warehouse(server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, bootstrapped database; DATABASE_URL points at it for the test and its subprocesses."""
    from pipeline.core import db

    name = f"test_{uuid.uuid4().hex[:12]}"
    url = db.create_database(name, server_url)
    monkeypatch.setenv("DATABASE_URL", url)
    db.bootstrap(url)
    yield url
    db.drop_database(name, server_url)


@pytest.fixture
def query(warehouse: str):
    """Run a query on the test warehouse and return all rows."""
    from pipeline.core import db

    def run(sql_text: str, params: tuple | dict | None = None) -> list[tuple]:
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            cur.execute(sql_text, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture(scope="session")
def seed_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed-scale extracts (the defaults: 10,000 customers, 10,000 sales lines), generated once."""
    from datetime import date

    from pipeline.sample.generate import generate

    landing = tmp_path_factory.mktemp("landing")
    generate(landing, date(2026, 11, 20), days=2)
    return landing


@pytest.fixture(scope="session")
def reliability_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small extracts for the crash, concurrency and database-fault tests: 2,000 customers, 4,000 sales
    lines, two dates (2026-11-20 and its delta 2026-11-21), so that a run costs little beyond start-up."""
    from datetime import date

    from pipeline.sample.generate import generate

    landing = tmp_path_factory.mktemp("reliability-landing")
    generate(landing, date(2026, 11, 20), days=2, customers=2000, orders=4000)
    return landing


@pytest.fixture(scope="session")
def reliability_reference(server_url: str, reliability_landing: Path):
    """Clean runs of both dates of reliability_landing (tests/reliability.py: CleanRuns), once per session."""
    from tests.reliability import clean_runs

    yield from clean_runs(server_url, reliability_landing)


def write_landing(root: Path, day: str, files: dict[str, bytes | str]) -> Path:
    folder = root / day
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return root


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Columns that say which run wrote an audit row, when, and its serial id: they differ between equal
# reprocessings.
RUN_COLUMNS = (
    "run_id",
    "quarantined_at",
    "recorded_at",
    "checked_at",
    "computed_at",
    "loaded_at",
    "quarantine_id",
    "duplicate_id",
)


def table_checksums(query, schema: str, exclude: tuple[str, ...] = RUN_COLUMNS) -> dict[str, str]:
    """md5 of every row of every table in a schema (without the run columns): equal checksums, equal tables."""
    columns: dict[str, list[str]] = {}
    for table, column in query(
        """select columns.table_name, columns.column_name
               from information_schema.columns as columns
               inner join information_schema.tables as tables using (table_schema, table_name)
               where columns.table_schema = %s and tables.table_type = 'BASE TABLE'
               order by columns.table_name, columns.ordinal_position""",
        (schema,),
    ):
        if column not in exclude:
            columns.setdefault(table, []).append(column)
    sums = {}
    for table, names in columns.items():
        row = ", ".join(f'"{name}"' for name in names)
        (digest,) = query(
            f"select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) "  # noqa: S608
            f'from (select {row} from "{schema}"."{table}") as t'
        )[0]
        sums[f"{schema}.{table}"] = digest
    return sums


@pytest.fixture
def luigi_setting():
    """Set luigi.cfg values in this process for one test; restored afterwards.

    luigi.Config objects are cached instances, so the cache is cleared both ways.
    """
    import luigi.configuration
    from luigi.task_register import Register

    config = luigi.configuration.get_config()
    saved: list[tuple[str, str, str | None]] = []

    def set_value(section: str, key: str, value) -> None:
        saved.append((section, key, config.get(section, key, None)))
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, key, str(value))
        Register.clear_instance_cache()

    yield set_value
    for section, key, value in reversed(saved):
        if value is None:
            config.remove_option(section, key)
        else:
            config.set(section, key, value)
    Register.clear_instance_cache()
