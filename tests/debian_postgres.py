"""A real, password-authenticated Debian PostgreSQL (15 by default) on 127.0.0.1, as a managed server would be.

`make system-deps` installs the package; `debian_postgres()` makes a cluster with
initdb (scram-sha-256 passwords, UTF8, C.UTF-8), starts it on a free TCP port and
yields the URL of its maintenance database. Used by tests/test_postgres_versions.py
beside the embedded 18, and by conftest.py as the whole suite's server when
METALAYER_TEST_POSTGRES=15 (`METALAYER_TEST_POSTGRES=15 make test`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def binaries(version: int) -> Path:
    return Path(f"/usr/lib/postgresql/{version}/bin")


def as_server_user(args: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *args] if user else args


@contextlib.contextmanager
def debian_postgres(version: int = 15, password: str | None = None) -> Iterator[str]:
    """Start the server; yield postgresql://metalayer:<password>@127.0.0.1:<port>/postgres; stop and delete it."""
    from tests.conftest import free_port

    bin_dir = binaries(version)
    if not (bin_dir / "initdb").exists():
        raise RuntimeError(
            f"{bin_dir / 'initdb'} is missing: install Debian's postgresql-{version} "
            "(make system-deps installs postgresql-15)"
        )
    password = password or "metalayer-" + uuid.uuid4().hex[:12]
    # initdb refuses to run as root: the cluster then belongs to Debian's postgres user (or nobody).
    user = None
    if os.geteuid() == 0:
        user = "postgres" if "postgres" in {entry.pw_name for entry in pwd.getpwall()} else "nobody"
    root = Path(tempfile.mkdtemp(prefix=f"metalayer-pg{version}-"))
    root.chmod(0o755)
    (root / "password").write_text(password + "\n")
    if user:
        shutil.chown(root, user)
        shutil.chown(root / "password", user)
    data = root / "data"
    port = free_port()
    try:
        subprocess.run(
            as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "metalayer",
                    "--auth=scram-sha-256",
                    f"--pwfile={root / 'password'}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ],
                user,
            ),
            check=True,
            capture_output=True,
            cwd=root,
        )
        # max_connections: the whole suite (luigid workers, console, exporters) opens more than the default 100.
        options = (
            f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        subprocess.run(
            as_server_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", options, "start"], user
            ),
            check=True,
            capture_output=True,
            cwd=root,
        )
        yield f"postgresql://metalayer:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], user),
            check=False,
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
