"""The ops login: a password checked against a scrypt hash, with waits after repeated failures.

The password is configured, in this order of precedence, by
``METALAYER_OPS_PASSWORD_HASH`` (a hash made by ``python -m console.auth``),
``[ops] password_hash`` in ``.streamlit/secrets.toml``, or the plain
``METALAYER_OPS_PASSWORD`` / ``[ops] password`` (hashed with a fresh salt
when read; the typed password is then compared as a hash too). Without any of
them the Operations page is disabled.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import streamlit as st

SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES = 2**14, 8, 1, 32
HASH_ENV = "METALAYER_OPS_PASSWORD_HASH"
PASSWORD_ENV = "METALAYER_OPS_PASSWORD"  # noqa: S105 - the variable's name, not a password
SESSION_KEY = "ops_logged_in"


class HashFormatError(ValueError):
    """A configured password hash that is not what `python -m console.auth` prints."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$key`, salt and key url-safe base64."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.strip().split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = _unb64(key)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except ValueError as exc:
        raise HashFormatError(
            f"the ops password hash is not of the form scrypt$N$r$p$salt$key "
            f"(make one with `python -m console.auth`): {exc}"
        ) from None
    return hmac.compare_digest(actual, expected)


@cache
def _hash_of_plain(password: str) -> str:
    return hash_password(password)


def _secret(name: str) -> str | None:
    try:
        section = st.secrets.get("ops")
    except Exception:  # noqa: BLE001 - no secrets file at all is the usual case
        return None
    value = section.get(name) if section else None
    return str(value) if value else None


def configured_hash() -> str | None:
    """The hash to check logins against, or None when no ops password is configured."""
    stored = os.environ.get(HASH_ENV) or _secret("password_hash")
    if stored:
        return stored
    plain = os.environ.get(PASSWORD_ENV) or _secret("password")
    return _hash_of_plain(plain) if plain else None


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


class LoginThrottle:
    """After `free_attempts` failures in a row, each further attempt waits, twice as long each time."""

    def __init__(
        self,
        free_attempts: int = 5,
        first_wait: float = 30.0,
        max_wait: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.free_attempts, self.first_wait, self.max_wait, self.clock = free_attempts, first_wait, max_wait, clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        with self._lock:
            state = self._failures.get(client)
            return max(0.0, state.blocked_until - self.clock()) if state else 0.0

    def failed(self, client: str) -> None:
        with self._lock:
            state = self._failures.setdefault(client, _Failures())
            state.count += 1
            beyond = state.count - self.free_attempts
            if beyond >= 0:
                state.blocked_until = self.clock() + min(self.first_wait * 2**beyond, self.max_wait)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


THROTTLE = LoginThrottle()


def _client() -> str:
    """Failures count per client address (all clients share one count when it is unknown)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no request context (bare mode)
        address = None
    return address if isinstance(address, str) and address else "unknown"


def attempt_login(password: str) -> tuple[bool, str]:
    """Check a typed password; returns (logged in, message for the user)."""
    stored = configured_hash()
    if stored is None:
        return False, "No ops password is configured."
    client = _client()
    wait = THROTTLE.wait_seconds(client)
    if wait > 0:
        return False, f"Too many failed logins: try again in {wait:.0f} s."
    if verify_password(password, stored):
        THROTTLE.succeeded(client)
        st.session_state[SESSION_KEY] = True
        return True, "Logged in as ops."
    THROTTLE.failed(client)
    wait = THROTTLE.wait_seconds(client)
    return False, "Wrong password." + (f" Further attempts wait {wait:.0f} s." if wait else "")


def is_ops() -> bool:
    return bool(st.session_state.get(SESSION_KEY)) and configured_hash() is not None


def logout() -> None:
    st.session_state[SESSION_KEY] = False


def login_box() -> None:
    """The sidebar's ops login (or logout) form."""
    if configured_hash() is None:
        st.caption("Ops login disabled: no ops password configured (see the Operations page).")
        return
    if is_ops():
        st.success("Ops: logged in. Personal data is shown unmasked.", icon=":material/lock_open:")
        st.button("Log out", key="ops_logout", on_click=logout)
        return
    with st.form("ops_login", clear_on_submit=True, border=False):
        password = st.text_input("Ops password", type="password", key="ops_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        try:
            ok, message = attempt_login(password)
        except HashFormatError as exc:
            st.error(str(exc))
            return
        if ok:
            st.rerun()
        st.error(message)
    st.caption("Personal data is masked until an ops login.")


def main() -> int:
    """`python -m console.auth`: print the hash of a password typed twice, for METALAYER_OPS_PASSWORD_HASH."""
    first = getpass.getpass("ops password: ")
    if not first or first != getpass.getpass("again: "):
        print("the two entries differ (or are empty); nothing printed", file=sys.stderr)
        return 1
    print(hash_password(first))
    return 0


if __name__ == "__main__":
    sys.exit(main())
