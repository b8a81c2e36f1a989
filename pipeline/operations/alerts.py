"""Alerts to ops on run failure, SLA breach and quality below threshold.

Two channels, both off by default (luigi.cfg [alerts]): e-mail through Luigi's
own [email] / [smtp] settings, and a JSON webhook. Every attempt is recorded in
meta.alerts; a channel that fails is logged and recorded, never raised, so an
alert can not fail the run it reports on.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

from pipeline.core import db
from pipeline.core.config import alerts as alerts_config

logger = logging.getLogger("metalayer.alerts")

KINDS = ("run_failed", "sla_missed", "quality_below_threshold")


@dataclass
class Alert:
    kind: str
    run_id: str
    run_date: date
    summary: str  # one line: what happened
    error: str = ""  # the error or the figures behind it
    where_to_look: list[str] = field(default_factory=list)
    host: str = field(default_factory=socket.gethostname)
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def subject(self) -> str:
        return f"[MetaLayer] {self.kind.replace('_', ' ')}: {self.run_date} - {self.summary}"[:200]

    def text(self) -> str:
        lines = [
            self.summary,
            "",
            f"Extract date: {self.run_date}",
            f"Run: {self.run_id}",
            f"Host: {self.host}",
            f"At: {self.raised_at}",
        ]
        if self.error:
            lines += ["", "Error:", self.error]
        if self.where_to_look:
            lines += ["", "Where to look:"] + [f"  - {item}" for item in self.where_to_look]
        return "\n".join(lines)

    def payload(self) -> dict:
        body = asdict(self)
        body["run_date"] = self.run_date.isoformat()
        body["subject"] = self.subject
        body["source"] = "metalayer"
        return body


def where_to_look(run_id: str, log_file: str | None) -> list[str]:
    hints = [f"meta.task_runs rows of run_id {run_id} (the console's Runs page shows them)"]
    if log_file:
        hints.insert(0, f"run log: {log_file}")
    console = alerts_config().console_url
    if console:
        hints.append(f"console: {console}")
    return hints


def send(alert: Alert, url: str) -> dict[str, bool]:
    """Send the alert on every enabled channel; returns {channel: delivered}."""
    if alert.kind not in KINDS:
        raise ValueError(f"unknown alert kind {alert.kind!r}")
    config = alerts_config()
    outcome: dict[str, tuple[bool, str | None]] = {}
    if config.webhook_url:
        outcome["webhook"] = _attempt(lambda: _post_webhook(config.webhook_url, alert, config.webhook_timeout_seconds))
    if config.email:
        outcome["email"] = _attempt(lambda: _send_email(alert))
    if outcome:
        _record(url, alert, outcome)
    return {channel: delivered for channel, (delivered, _) in outcome.items()}


def _attempt(send_one) -> tuple[bool, str | None]:
    try:
        send_one()
    except Exception as exc:  # noqa: BLE001 - an alert channel must never fail the run
        logger.warning("alert not delivered: %s: %s", type(exc).__name__, exc)
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


def _post_webhook(webhook_url: str, alert: Alert, timeout: float) -> None:
    if not webhook_url.startswith(("http://", "https://")):
        raise ValueError(f"[alerts] webhook_url must be http(s): {webhook_url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        webhook_url,
        data=json.dumps(alert.payload()).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "metalayer-alerts"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        if response.status >= 300:
            raise RuntimeError(f"webhook answered HTTP {response.status}")


def _send_email(alert: Alert) -> None:
    """Luigi's [email] sender/receiver and [smtp] server settings; unlike Luigi's helper, errors raise."""
    import smtplib
    from email.message import EmailMessage

    from luigi.notifications import email, smtp

    settings, server = email(), smtp()
    recipients = [address.strip() for address in (settings.receiver or "").split(",") if address.strip()]
    if not recipients:
        raise ValueError("[alerts] email = true but Luigi's [email] receiver is empty")
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = alert.subject, settings.sender, ", ".join(recipients)
    message.set_content(alert.text())
    smtp_class = smtplib.SMTP_SSL if server.ssl else smtplib.SMTP
    with smtp_class(host=server.host, port=server.port, timeout=server.timeout or 10) as connection:
        connection.ehlo_or_helo_if_needed()
        if not server.ssl and connection.has_extn("starttls") and not server.no_tls:
            connection.starttls()
        if server.username and server.password:
            connection.login(server.username, server.password)
        connection.send_message(message)


def _record(url: str, alert: Alert, outcome: dict[str, tuple[bool, str | None]]) -> None:
    try:
        with db.transaction(url) as conn, conn.cursor() as cur:
            for channel, (delivered, error) in outcome.items():
                cur.execute(
                    """insert into meta.alerts (run_id, run_date, kind, channel, subject, delivered, error)
                       values (%s, %s, %s, %s, %s, %s, %s)""",
                    (alert.run_id, alert.run_date, alert.kind, channel, alert.subject, delivered, error),
                )
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not hide the alert itself
        logger.warning("could not record alert: %s", exc)
