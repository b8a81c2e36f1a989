"""An HTTP JSON API as a source (`kind = "http"` in sources.toml).

The extractor GETs the API page by page (page numbers, a cursor taken from
each page, or the `Link: <...>; rel="next"` header), takes the array of
records at the `records` path of each page and writes one record per line to
a JSON-lines work file, which the bronze task loads as it loads a landing
`.jsonl` file: a line that is not an object, or holds a nested value, is
quarantined on its own. Numbers keep the text the API wrote them with.

Requests are spaced by `rate_limit_per_second`; a 429, a 5xx, a timeout or a
broken connection is retried `max_retries` times with exponential backoff
from `backoff_seconds`, waiting what the server's `Retry-After` asks when it
says. Any page that fails beyond that, or that is not the JSON expected (cut
short, not JSON, no records array), fails the whole extract before anything
is loaded: the work file is removed and the bronze load never starts.

With `since_param`, the request carries the high-water mark of
`watermark_field` from the last loaded extract (meta.source_watermarks); the
new mark is stored in the bronze load's transaction, so a failed load asks for
the same records again.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.core import db
from pipeline.core.errors import ExpectedFailure
from pipeline.core.sources import SourceConfigError, SourceSettings
from pipeline.extractors import Extracted

PAGINATIONS = ("none", "page", "cursor", "link")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "metalayer-http-extractor"


class HttpSourceError(ExpectedFailure):
    """The API answered, but not with what the extract needs (a 4xx, a page that is not the JSON expected).

    Permanent: asking again gets the same answer, so Luigi does not retry it.
    """

    hint = (
        "nothing of this extract was loaded: check the source's url, records path and auth settings in "
        "sources.toml (or the API), then run the date again"
    )


class HttpSourceUnavailable(RuntimeError):
    """The API did not answer usefully within the retries (429, 5xx, timeouts, refused connections).

    Transient: Luigi's own retries ([scheduler] retry_count) try the task again later.
    """

    retryable = True
    hint = "nothing of this extract was loaded; the task is retried, or run the date again when the API is back"


@dataclass(frozen=True)
class HttpSettings:
    """`[sources.<name>.extract]` of an http source (documented in sources.toml and the README)."""

    url: str
    records: str = "data"
    pagination: str = "none"
    page_param: str = "page"
    size_param: str = "page_size"
    page_size: int = 100
    first_page: int = 1
    cursor_field: str = "next_cursor"
    cursor_param: str = "cursor"
    params: dict[str, str] = field(default_factory=dict)
    auth_header: str = ""
    auth_env: str = ""
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 300.0
    rate_limit_per_second: float = 0.0
    since_param: str = ""
    watermark_field: str = "updated_at"
    max_pages: int = 100_000


_TYPES = {
    "url": str,
    "records": str,
    "pagination": str,
    "page_param": str,
    "size_param": str,
    "page_size": int,
    "first_page": int,
    "cursor_field": str,
    "cursor_param": str,
    "params": dict,
    "auth_header": str,
    "auth_env": str,
    "timeout_seconds": (int, float),
    "max_retries": int,
    "backoff_seconds": (int, float),
    "max_wait_seconds": (int, float),
    "rate_limit_per_second": (int, float),
    "since_param": str,
    "watermark_field": str,
    "max_pages": int,
}


def http_settings(settings: SourceSettings) -> HttpSettings:
    """The extract settings, checked; SourceConfigError names the key that is wrong."""
    raw = settings.extract
    where = f"[sources.{settings.source.name}.extract]"
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise SourceConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TYPES))}")
    for key, value in raw.items():
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            raise SourceConfigError(f"{where}: {key} has the wrong type ({type(value).__name__})")
    config = HttpSettings(**{**raw, "params": {str(k): str(v) for k, v in raw.get("params", {}).items()}})
    problems = []
    if urllib.parse.urlsplit(config.url).scheme not in ("http", "https"):
        problems.append(f"url must be an http:// or https:// URL, not {config.url!r}")
    if config.pagination not in PAGINATIONS:
        problems.append(f"pagination must be one of {', '.join(PAGINATIONS)}, not {config.pagination!r}")
    if bool(config.auth_header) != bool(config.auth_env):
        problems.append(
            "auth_header and auth_env go together: the header's value is read from that environment variable"
        )
    if config.page_size < 1 or config.max_pages < 1 or config.max_retries < 0:
        problems.append("page_size and max_pages must be at least 1, max_retries at least 0")
    if config.timeout_seconds <= 0 or config.backoff_seconds < 0 or config.rate_limit_per_second < 0:
        problems.append("timeout_seconds must be positive, backoff_seconds and rate_limit_per_second not negative")
    if problems:
        raise SourceConfigError(f"{where}: {'; '.join(problems)}")
    return config


# ---------------------------------------------------------------- JSON that keeps the API's own text


class _Number(str):
    """A JSON number (or NaN/Infinity, which the loader then refuses line by line) as it was written."""


class _Object(dict):
    """A JSON object that remembers its members in order, repeats included, for writing it back as read."""

    def __init__(self, pairs: list[tuple[str, object]]):
        super().__init__(pairs)
        self.pairs = pairs


def parse_page(body: bytes) -> object:
    return json.loads(body, parse_int=_Number, parse_float=_Number, parse_constant=_Number, object_pairs_hook=_Object)


def dump_record(value: object) -> str:
    """One JSON line, written as the API wrote it: number texts, member order and repeated keys kept.

    Strings are ASCII-escaped, so a lone surrogate or NUL reaches the loader as an escape it rejects
    for that line alone.
    """
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, _Object):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump_record(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump_record(v) for v in value) + "]"
    return json.dumps(value)


def at_path(document: object, path: str) -> tuple[bool, object]:
    """(found, value) of a dotted path ("data", "result.items"); "" is the document itself."""
    value = document
    for part in [p for p in path.split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


# ---------------------------------------------------------------- requests


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")


def next_link(header: str | None, base_url: str) -> str | None:
    """The rel="next" target of a Link header (RFC 8288), resolved against the page's URL."""
    for target, params in _LINK.findall(header or ""):
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return urllib.parse.urljoin(base_url, target)
    return None


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@dataclass
class Page:
    url: str
    body: bytes
    link: str | None


class HttpClient:
    """GETs with a rate limit, a timeout and retries; counts what it did for messages and tests."""

    def __init__(self, config: HttpSettings, headers: dict[str, str], sleep=time.sleep):
        self.config = config
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **headers}
        self.sleep = sleep
        self._last_request = 0.0
        self.requests = 0
        self.retries = 0

    def _pace(self) -> None:
        if self.config.rate_limit_per_second:
            gap = 1.0 / self.config.rate_limit_per_second - (time.monotonic() - self._last_request)
            if gap > 0:
                self.sleep(gap)
        self._last_request = time.monotonic()

    def get(self, url: str) -> Page:
        config = self.config
        for attempt in range(config.max_retries + 1):
            self._pace()
            self.requests += 1
            request = urllib.request.Request(url, headers=self.headers)  # noqa: S310 - scheme checked in settings
            try:
                with urllib.request.urlopen(request, timeout=config.timeout_seconds) as response:  # noqa: S310
                    return Page(url=response.geturl(), body=response.read(), link=response.headers.get("Link"))
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUSES:
                    detail = exc.read(300).decode("utf-8", "replace").strip()
                    raise HttpSourceError(
                        f"GET {url}: HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
                    ) from None
                problem, asked = f"HTTP {exc.code} {exc.reason}", retry_after_seconds(exc.headers.get("Retry-After"))
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                problem, asked = f"{type(exc).__name__}: {reason}", None
            if attempt == config.max_retries:
                raise HttpSourceUnavailable(f"GET {url}: {problem}, after {attempt + 1} attempt(s)")
            wait = asked if asked is not None else config.backoff_seconds * 2**attempt
            if wait > config.max_wait_seconds:
                raise HttpSourceUnavailable(
                    f"GET {url}: {problem}; the server asks to wait {wait:.0f}s, "
                    f"more than max_wait_seconds ({config.max_wait_seconds:g})"
                )
            self.retries += 1
            self.sleep(wait)
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- the extract


def pages(client: HttpClient, config: HttpSettings, first_params: dict[str, str]):
    """Yield (url, parsed page, records) until the pagination says there is no next page."""
    page_number = config.first_page
    params = dict(first_params)
    if config.pagination == "page":
        params |= {config.page_param: str(page_number), config.size_param: str(config.page_size)}
    url: str | None = with_params(config.url, params)
    seen_cursors: set[str] = set()
    for _ in range(config.max_pages):
        page = client.get(url)
        try:
            document = parse_page(page.body)
        except (ValueError, RecursionError) as exc:
            raise HttpSourceError(
                f"GET {url}: the page is not valid JSON ({exc}; {len(page.body)} bytes, truncated?)"
            ) from None
        found, records = at_path(document, config.records)
        if not found or not isinstance(records, list):
            what = "missing" if not found else f"a {type(records).__name__}, not an array"
            raise HttpSourceError(
                f"GET {url}: the records array at {config.records or '(the page itself)'!r} is {what}"
            )
        yield url, records
        if config.pagination == "none":
            return
        if config.pagination == "page":
            if len(records) < config.page_size:
                return
            page_number += 1
            url = with_params(url, {config.page_param: str(page_number)})
        elif config.pagination == "cursor":
            _, cursor = at_path(document, config.cursor_field)
            if cursor in (None, "", False):
                return
            cursor = str(cursor)
            if cursor in seen_cursors:
                raise HttpSourceError(
                    f"GET {url}: the cursor {cursor!r} at {config.cursor_field!r} came back "
                    "again; the API's pagination does not advance"
                )
            seen_cursors.add(cursor)
            url = with_params(url, {config.cursor_param: cursor})
        else:
            url = next_link(page.link, page.url)
            if url is None:
                return
    raise HttpSourceError(
        f"{config.url}: more than max_pages ({config.max_pages}) pages; raise max_pages if the API really has that many"
    )


def _order_key(value: str):
    text = value.strip()
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return (0, (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp(), text)
    except ValueError:
        pass
    try:
        return (1, float(text), text)
    except ValueError:
        return (2, 0.0, text)


def highest(values: list[str]) -> str | None:
    """The high-water mark of the watermark field: timestamps by time, numbers by value, else text."""
    if not values:
        return None
    if len({_order_key(v)[0] for v in values}) > 1:
        return max(values)
    return max(values, key=_order_key)


def extract(settings: SourceSettings, extract_date: date, workdir: Path, warehouse: db.Warehouse) -> Extracted:
    config = http_settings(settings)
    headers = {}
    if config.auth_header:
        secret = os.environ.get(config.auth_env)
        if not secret:
            raise HttpSourceError(
                f"{settings.source.name}: the environment variable {config.auth_env} (auth_env) "
                f"is not set; it holds the {config.auth_header} header's value",
                hint="set it in the environment of the process that runs the pipeline "
                "(never in sources.toml), then run the date again",
            )
        headers[config.auth_header] = secret
    name = settings.source.name
    since = read_watermark(name, warehouse) if config.since_param else None
    first = {**config.params, **({config.since_param: since} if since else {})}
    client = HttpClient(config, headers)
    started_at = datetime.now(UTC)
    path = workdir / f"{settings.source.file_stem}.jsonl"
    partial = path.with_name(path.name + ".partial")
    path.unlink(missing_ok=True)
    records = page_count = 0
    marks: list[str] = []
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            for _url, page_records in pages(client, config, first):
                page_count += 1
                for record in page_records:
                    out.write(dump_record(record) + "\n")
                    mark = record.get(config.watermark_field) if isinstance(record, dict) else None
                    if config.since_param and isinstance(mark, str) and mark.strip():
                        marks.append(mark)
                records += len(page_records)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    new_mark = highest(marks) if marks else since
    kind = "number" if new_mark and _order_key(new_mark)[0] == 1 else "timestamp"
    lag = None
    if new_mark and _order_key(new_mark)[0] == 0:
        lag = round(started_at.timestamp() - _order_key(new_mark)[1], 3)
    record = {
        "source_name": name,
        "watermark_column": config.watermark_field,
        "watermark_kind": kind,
        "low_watermark": since,
        "high_watermark": new_mark,
        "rows_extracted": records,
        "extract_date": extract_date,
        "extracted_at": started_at,
        "lag_seconds": lag,
    }

    def on_commit(cur, load_id: int) -> None:
        if config.since_param:
            write_watermark(cur, record, load_id)

    retried = f", {client.retries} retried request(s)" if client.retries else ""
    description = f"GET {config.url}: {page_count} page(s), {records} record(s){retried}" + (
        f", since {since}" if since else ""
    )
    return Extracted(path=path, description=description, on_commit=on_commit)


# ---------------------------------------------------------------- the watermark (meta.source_watermarks)
# One row per committed extract (sql/schema/015_sources.sql, shared with the database source); the
# source's mark is its latest row's high_watermark.


def _watermarks_table(cur) -> bool:
    cur.execute("select to_regclass('meta.source_watermarks') is not null")
    return cur.fetchone()[0]


def read_watermark(source_name: str, warehouse: db.Warehouse) -> str | None:
    """The source's stored high-water mark; None before its first load (or without the table)."""
    with warehouse.transaction() as conn, conn.cursor() as cur:
        if not _watermarks_table(cur):
            return None
        cur.execute(
            "select high_watermark from meta.source_watermarks where source_name = %s order by load_id desc limit 1",
            (source_name,),
        )
        row = cur.fetchone()
    return row[0] if row else None


def write_watermark(cur, record: dict, load_id: int) -> None:
    if not _watermarks_table(cur):
        return
    cur.execute(
        """insert into meta.source_watermarks (load_id, source_name, watermark_column, watermark_kind,
                       low_watermark, high_watermark, rows_extracted, has_key_snapshot, extract_date, extracted_at,
                       lag_seconds)
                   values (%(load_id)s, %(source_name)s, %(watermark_column)s, %(watermark_kind)s,
                       %(low_watermark)s, %(high_watermark)s, %(rows_extracted)s, false, %(extract_date)s,
                       %(extracted_at)s, %(lag_seconds)s)""",
        {**record, "load_id": load_id},
    )
