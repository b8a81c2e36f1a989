"""Data access for the console: two connections, the SQL files under sql/console/, cached results.

Pages read through ``query(name, **params)``: the SQL is ``sql/console/<name>.sql``
(psycopg2 ``%(name)s`` parameters), the result a DataFrame cached until the
data changes (see ``TTL_SECONDS``). Masked reads (everyone) go through the read-only role
``metalayer_reader`` (sql/schema/090_roles.sql) and the masked views;
unmasked reads (an ops login) through the pipeline's own role and the plain
views. A query names the relations that differ between the two as
``{customer}`` and ``{quarantine}``, and free text it masks itself with
``console.mask_text`` when ``%(masked)s`` is true.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pandas as pd
import psycopg2
import streamlit as st
from psycopg2 import sql
from sqlalchemy.engine import make_url

from pipeline.core import db
from pipeline.core.config import tuning

log = logging.getLogger(__name__)

# Results are cached per data version (sql/console/data_version.sql: it changes when a run or a
# task starts or ends), so a page is fresh after every run and cached between runs; the version
# itself is read at most every VERSION_TTL_SECONDS.
TTL_SECONDS = tuning().console_cache_seconds  # luigi.cfg [tuning]
VERSION_TTL_SECONDS = tuning().console_version_seconds
STATEMENT_TIMEOUT_MS = 15_000

# The relations a query names in braces, masked (True) and unmasked (False).
RELATIONS = {
    True: {"customer": ("console", "customer_masked"), "quarantine": ("console", "quarantine_masked")},
    False: {"customer": ("console", "customer"), "quarantine": ("silver", "quarantine")},
}


@dataclass(frozen=True)
class Warehouse:
    owner: object  # st.connections.SQLConnection as the pipeline's role
    reader: object  # as metalayer_reader, or the owner when that role cannot log in
    reader_note: str | None  # why the reader is the owner, when it is


def owner_url() -> str:
    return db.Warehouse.from_environment().url


def warehouse() -> Warehouse:
    return _warehouse(owner_url())


def _connection(name: str, url: str):
    # SQLAlchemy 2.1 defaults postgresql:// to psycopg 3; MetaLayer uses psycopg2 everywhere.
    url = make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return st.connection(
        name,
        type="sql",
        url=url,
        pool_pre_ping=True,
        connect_args={
            "application_name": f"metalayer-{name}",
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        },
    )


@st.cache_resource(show_spinner=False, ttl=600)
def _warehouse(url: str) -> Warehouse:
    owner = _connection("console", url)
    note = _check_reader(url)
    reader = owner if note else _connection("console-reader", db.reader_url(url))
    return Warehouse(owner=owner, reader=reader, reader_note=note)


def _check_reader(url: str) -> str | None:
    """None when metalayer_reader can log in (setting its password first when one is configured), else why not."""
    reader = db.reader_url(url)
    try:
        db.connect(reader, application_name="metalayer-console").close()
        return None
    except psycopg2.OperationalError as exc:
        first_error = _first_line(exc)
    password = os.environ.get("METALAYER_READER_PASSWORD")
    if password:
        try:
            with db.transaction(url) as conn, conn.cursor() as cur:
                cur.execute("select 1 from pg_roles where rolname = 'metalayer_reader'")
                if cur.fetchone():
                    cur.execute(sql.SQL("alter role metalayer_reader password {}").format(sql.Literal(password)))
            db.connect(reader, application_name="metalayer-console").close()
            return None
        except psycopg2.Error as exc:
            first_error = _first_line(exc)
    log.warning("console: read-only role unavailable (%s); reading as the pipeline's role", first_error)
    return (
        f"the read-only role metalayer_reader cannot log in ({first_error}); pages read as the "
        "pipeline's role, through the same masked views"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sql_text(name: str) -> str:
    """sql/console/<name>.sql."""
    if "/" in name or "\\" in name:
        raise FileNotFoundError(f"no console query {name!r}: a name, not a path")
    return db.sql_text(f"console/{name}.sql")


def fetch(name: str, *, masked: bool = True, **params) -> pd.DataFrame:
    """Run sql/console/<name>.sql now (no cache): for live progress and for what must not be stale."""
    return _fetch(owner_url(), name, masked, params)


def _fetch(url: str, name: str, masked: bool, params: dict) -> pd.DataFrame:
    house = _warehouse(url)
    connection = house.reader if masked else house.owner
    relations = {key: sql.Identifier(*parts) for key, parts in RELATIONS[masked].items()}
    with connection.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        statement = sql.SQL(sql_text(name)).format(**relations).as_string(raw)
        frame = pd.read_sql(statement, conn, params={**params, "masked": masked})
    return frame


@st.cache_data(ttl=VERSION_TTL_SECONDS, show_spinner=False)
def _data_version(url: str) -> str:
    try:
        return "|".join(str(value) for value in _fetch(url, "data_version", True, {}).iloc[0])
    except pd.errors.DatabaseError:  # no meta schema yet
        return "not bootstrapped"


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _cached(url: str, version: str, name: str, masked: bool, params: dict) -> pd.DataFrame:
    return _fetch(url, name, masked, params)


def query(name: str, *, masked: bool = True, **params) -> pd.DataFrame:
    """sql/console/<name>.sql, cached per (database, data version, name, masking, parameters)."""
    url = owner_url()
    return _cached(url, _data_version(url), name, masked, params)


def csv_bytes(name: str, *, masked: bool = True, drop: tuple[str, ...] = (), **params) -> bytes:
    """The whole result of a query as CSV (uncached: built when a download is clicked)."""
    return fetch(name, masked=masked, **params).drop(columns=list(drop)).to_csv(index=False).encode()


def clear_cache() -> None:
    _data_version.clear()
    _cached.clear()
