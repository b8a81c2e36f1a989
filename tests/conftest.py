"""Shared fixtures: a real embedded PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server tests create their databases on: DATABASE_URL's, else an embedded one of their own."""
    from pipeline import db

    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    home = tmp_path_factory.mktemp("metalayer-home")
    os.environ["METALAYER_HOME"] = str(home)
    url = db.database_url()
    yield url
    os.environ.pop("DATABASE_URL", None)
    db.stop_embedded()


@pytest.fixture
def warehouse(server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, bootstrapped database; DATABASE_URL points at it for the test and its subprocesses."""
    from pipeline import db

    name = f"test_{uuid.uuid4().hex[:12]}"
    url = db.create_database(name, server_url)
    monkeypatch.setenv("DATABASE_URL", url)
    db.bootstrap(url)
    yield url
    db.drop_database(name, server_url)


@pytest.fixture
def query(warehouse: str):
    """Run a query on the test warehouse and return all rows."""
    from pipeline import db

    def run(sql_text: str, params: tuple | dict | None = None) -> list[tuple]:
        with db.transaction(warehouse) as conn, conn.cursor() as cur:
            cur.execute(sql_text, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture(scope="session")
def seed_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed-scale extracts (the defaults: 10,000 customers, 10,000 sales lines), generated once."""
    from datetime import date

    from pipeline.generate import generate

    landing = tmp_path_factory.mktemp("landing")
    generate(landing, date(2026, 11, 20), days=2)
    return landing


def write_landing(root: Path, day: str, files: dict[str, bytes | str]) -> Path:
    folder = root / day
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return root
