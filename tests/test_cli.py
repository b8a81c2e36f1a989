"""`metalayer` on a server it can not use: the message and what to do, exit 1, no traceback."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

METALAYER = str(Path(sys.executable).with_name("metalayer"))


def metalayer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([METALAYER, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _serve_as_postgresql_14(listener: socket.socket) -> None:
    """Speak PostgreSQL's wire protocol far enough for a client to connect to a 14.11 server.

    Trust authentication, the startup parameters, then "OK" to any simple query, until the
    client says goodbye.
    """
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        with client:
            try:
                _session(client)
            except (ConnectionError, struct.error):
                pass


def _read(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _session(client: socket.socket) -> None:
    while True:  # SSL or GSS encryption requests first, answered "no"; then the startup message
        (length,) = struct.unpack("!i", _read(client, 4))
        (code,) = struct.unpack("!i", _read(client, length - 4)[:4])
        if code in (80877103, 80877104):
            client.sendall(b"N")
            continue
        break
    parameters = {
        "server_version": "14.11",
        "server_encoding": "UTF8",
        "client_encoding": "UTF8",
        "DateStyle": "ISO, MDY",
        "integer_datetimes": "on",
        "standard_conforming_strings": "on",
    }
    reply = _message(b"R", struct.pack("!i", 0))
    for name, value in parameters.items():
        reply += _message(b"S", name.encode() + b"\0" + value.encode() + b"\0")
    reply += _message(b"K", struct.pack("!ii", 4242, 1)) + _message(b"Z", b"I")
    client.sendall(reply)
    while True:
        kind = _read(client, 1)
        (length,) = struct.unpack("!i", _read(client, 4))
        _read(client, length - 4)
        if kind == b"X":
            return
        client.sendall(_message(b"C", b"SET\0") + _message(b"Z", b"I"))


def test_a_server_older_than_15_is_refused_with_its_version_and_no_traceback(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=_serve_as_postgresql_14, args=(listener,), daemon=True).start()
    port = listener.getsockname()[1]
    url = f"postgresql://metalayer@127.0.0.1:{port}/warehouse?sslmode=disable&gssencmode=disable"
    try:
        done = metalayer(
            "db", "bootstrap", env={**os.environ, "DATABASE_URL": url, "METALAYER_HOME": str(tmp_path / "home")}
        )
    finally:
        listener.close()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"metalayer db: PostgreSQL 14.11 at 127.0.0.1:{port} is not supported: "
        "MetaLayer supports PostgreSQL 15, 16, 17 and 18"
    )


def test_an_embedded_server_that_can_not_start_says_what_to_do_without_a_traceback(tmp_path):
    home = tmp_path / "home"
    pgdata = home / "pgdata"
    (pgdata / "base" / "16384").mkdir(parents=True)  # an incomplete cluster with a database someone created
    (pgdata / "PG_VERSION").write_text("18\n")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    done = metalayer("db", "url", env={**env, "METALAYER_HOME": str(home)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"metalayer db: {pgdata} is not a complete PostgreSQL data directory")
    assert f"rm -rf '{pgdata}'" in done.stderr
    assert (pgdata / "base" / "16384").is_dir()
