"""Stream a landing file into bronze with COPY, routing structurally broken lines aside.

The file is read in large chunks. A chunk without quotes, carriage returns, NUL
bytes or invalid UTF-8 (the common case) is checked for its field counts with
numpy and forwarded to COPY with the load id and line number appended to each
line. Other chunks take a careful path line by line, with Python's csv module
deciding field boundaries; lines it accepts are re-written canonically so that
PostgreSQL parses exactly what was checked. Nothing holds the whole file: COPY
reads from a generator, and rejects spill to a temporary file.

Parsing rule (also in docs/sources.md): a record is one physical line, unless the
line has an odd number of double quotes, in which case following lines are
joined until the count is even (at most ``max_record_lines`` lines). The record
must parse as strict RFC 4180 CSV with exactly the header's field count.
Otherwise only its first line is rejected and parsing resumes at the next line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from psycopg2 import sql

from pipeline.core.sources import SourceSettings

csv.field_size_limit(1 << 30)

COMMA, NEWLINE, QUOTE, CR = ord(","), ord("\n"), ord('"'), ord("\r")
UTF8_BOM = b"\xef\xbb\xbf"
NUL = b"\x00"
RAW_TEXT_LIMIT = 10_000  # characters of a rejected line kept in the quarantine record
QUARANTINE_COLUMNS = (
    "run_id",
    "stage",
    "source_table",
    "source_file",
    "line_number",
    "load_id",
    "extract_date",
    "business_key",
    "rule_name",
    "reason",
    "record",
)


class LandingFileError(ValueError):
    """The file as a whole cannot be loaded (bad header, unreadable); nothing of it is committed.

    The message is ``<file>:<line>: <reason>``, or ``<file>: <reason>`` when no line is to blame.
    """

    retryable = False  # the same file fails the same way: Luigi does not retry it (pipeline/base.py)
    hint = (
        "nothing of the file was loaded: correct or replace it in the landing folder (at the line named), "
        "or describe its layout in the sources file (sources.toml), then run the date again"
    )

    def __init__(self, path: Path, line: int | None, reason: str):
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")
        self.path, self.line, self.reason = path, line, reason


@dataclass
class Reject:
    line_number: int
    rule_name: str
    reason: str
    raw: bytes
    business_key: str | None = None  # None: taken from the raw line's first field


@dataclass
class LoadStats:
    physical_lines: int = 0  # data lines after the header
    records: int = 0  # loaded + rejected; a multi-line record counts once
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejects_by_rule: dict[str, int] = field(default_factory=dict)


def file_digest(path: Path, chunk_bytes: int = 4 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass
class Drift:
    """One column in which a file differs from its source's contract (meta.schema_drift)."""

    column: str
    change: str  # added | missing
    action: str  # kept | ignored | failed
    detail: str


@dataclass
class HeaderPlan:
    """Where each field of a file goes: a contract column, the `_extra` jsonb, or nowhere."""

    columns: list[str]  # the file's column names (lower case, trimmed), in file order
    targets: list[str | None]  # per file column: its contract column, or None when it is extra
    extras: list[str]  # file columns the contract does not know, in file order
    keep_extras: bool
    drift: list[Drift] = field(default_factory=list)

    @property
    def is_direct(self) -> bool:
        """Every field has a contract column: COPY straight into bronze."""
        return not self.extras


def plan_columns(names: list[str], settings: SourceSettings, path: Path) -> HeaderPlan:
    """Map a file's column names onto the contract (renames, extras, missing optional columns).

    Raises LandingFileError, with the drift attached as `.drift`, when a required column is
    missing, a column appears twice, or an extra column is refused (extra_columns = "fail").
    """
    source = settings.source
    targets = [settings.rename.get(name, name) for name in names]
    targets = [t if t in source.columns else None for t in targets]
    extras = [name for name, target in zip(names, targets, strict=True) if target is None and name]
    present = [t for t in targets if t]
    repeated = sorted({c for c in present if present.count(c) > 1})
    repeated += sorted({c for c in extras if extras.count(c) > 1})
    missing = [c for c in source.columns if c not in present]
    missing_required = [c for c in missing if c in settings.required]
    extra_action = {"keep": "kept", "ignore": "ignored", "fail": "failed"}[settings.extra_columns]
    drift = [
        Drift(
            c,
            "missing",
            "failed" if c in missing_required else "empty",
            "required column absent: the file is refused"
            if c in missing_required
            else "optional column absent: loaded as empty",
        )
        for c in missing
    ]
    drift += [
        Drift(
            c,
            "added",
            extra_action,
            {
                "kept": "stored in bronze _extra",
                "ignored": "not loaded",
                "failed": 'extra_columns = "fail": the file is refused',
            }[extra_action],
        )
        for c in extras
    ]
    problems = []
    blank = [str(i) for i, name in enumerate(names, start=1) if not name]
    if blank:
        problems.append(f"blank column name at position(s) {', '.join(blank)} (a trailing comma?)")
    if missing_required:
        problems.append(f"missing required column(s) {', '.join(missing_required)}")
    if extras and settings.extra_columns == "fail":
        problems.append(f'unknown column(s) {", ".join(repr(c) for c in extras)} (extra_columns = "fail")')
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        delimiter = next((d for d in (";", "\t", "|") if len(names) == 1 and d in names[0]), None)
        if delimiter:
            problems.append(f"the header looks {delimiter!r}-delimited: export the file with commas between fields")
        else:
            problems.append(
                f"expected {', '.join(source.columns)}; received {', '.join(names)}; to load it, "
                f"map the file's names onto the contract in [sources.{source.name}.rename] of the "
                "sources file (sources.toml), or fix the extract"
            )
        error = LandingFileError(
            path, 1, f"header does not match the contract for {source.name}: {'; '.join(problems)}"
        )
        error.drift = drift
        raise error
    return HeaderPlan(
        columns=names, targets=targets, extras=extras, keep_extras=settings.extra_columns == "keep", drift=drift
    )


def parse_header(path: Path, raw_header: bytes, settings: SourceSettings) -> HeaderPlan:
    """The file's columns in file order, mapped onto the contract."""
    source = settings.source
    if not raw_header.strip():
        raise LandingFileError(
            path,
            1,
            f"the file is empty or its first line is blank; expected a header row with {', '.join(source.columns)}",
        )
    try:
        text = raw_header.removeprefix(UTF8_BOM).decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise LandingFileError(
            path,
            1,
            f"unreadable header: not UTF-8 text (byte 0x{raw_header[exc.start]:02x} "
            f"at column {exc.start + 1}); is the file compressed, binary, UTF-16 or "
            "Latin-1?",
        ) from exc
    if "\r" in text:
        raise LandingFileError(
            path, 1, "the header line holds a bare carriage return: line ends must be LF or CRLF, not CR alone"
        )
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise LandingFileError(path, 1, f"unreadable header: {exc}") from exc
    return plan_columns([name.strip().lower() for name in fields], settings, path)


class CsvChunker:
    """Turns the data lines of a CSV file into COPY-ready chunks plus a list of rejects."""

    def __init__(
        self,
        fh: io.BufferedReader,
        n_fields: int,
        load_id: int,
        *,
        max_record_lines: int,
        buffer_bytes: int,
        on_reject: Callable[[Reject], None],
        first_line_number: int = 2,
    ):
        self.fh = fh
        self.n_fields = n_fields
        self.load_id = load_id
        self.max_record_lines = max_record_lines
        self.buffer_bytes = buffer_bytes
        self.on_reject = on_reject
        self.next_line = first_line_number
        self.stats = LoadStats()

    def chunks(self) -> Iterator[bytes]:
        while True:
            chunk = self.fh.read(self.buffer_bytes)
            if not chunk:
                return
            if not chunk.endswith(b"\n"):
                chunk += self.fh.readline()
            if b"\r\n" in chunk:
                chunk = chunk.replace(b"\r\n", b"\n")  # CRLF files; a chunk never splits a pair
            lines = chunk.split(b"\n")
            if lines[-1] == b"":
                lines.pop()  # otherwise the file's last line has no final newline
            first = self.next_line
            out = self._process(chunk, lines)
            # Multi-line records may have pulled lines from beyond the chunk into `lines`.
            self.stats.physical_lines += len(lines)
            self.next_line = first + len(lines)
            if out:
                yield out

    def _reject(self, line_number: int, rule: str, reason: str, raw: bytes, key: str | None = None) -> None:
        self.stats.rows_rejected += 1
        self.stats.records += 1
        self.stats.rejects_by_rule[rule] = self.stats.rejects_by_rule.get(rule, 0) + 1
        self.on_reject(Reject(line_number, rule, reason, raw, key))

    def _accept(self, writer, fields: list[str], number: int) -> None:
        writer.writerow([*fields, self.load_id, number])
        self.stats.records += 1
        self.stats.rows_loaded += 1

    def _process(self, chunk: bytes, lines: list[bytes]) -> bytes:
        """Plain lines (right comma count, no quote, CR or NUL) are forwarded as they are, with
        numpy finding them; only the other lines go through the csv module one by one."""
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return self._careful(lines, 0)
        arr = np.frombuffer(chunk, dtype=np.uint8)
        newline_at = np.flatnonzero(arr == NEWLINE)
        if len(newline_at) < len(lines):  # no final newline at end of file
            newline_at = np.append(newline_at, len(arr))

        def per_line(mask: np.ndarray) -> np.ndarray:
            return np.diff(np.searchsorted(np.flatnonzero(mask), newline_at), prepend=0)

        plain = per_line(arr == COMMA) == self.n_fields - 1
        plain &= per_line((arr == QUOTE) | (arr == CR) | (arr == 0)) == 0
        n_plain_region = len(lines)
        first = self.next_line
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        consumed_until = 0
        for index in np.flatnonzero(~plain).tolist():
            if index < consumed_until:
                continue  # already part of a multi-line record
            used = self._handle(lines, index, writer)
            consumed_until = index + used
            if used > 1:
                plain[index : min(index + used, n_plain_region)] = False
        # Lines a multi-line attempt pulled in from beyond the chunk and did not use.
        careful = self._careful(lines, max(consumed_until, n_plain_region))
        load_id = self.load_id
        good = [b"%b,%d,%d" % (lines[i], load_id, first + i) for i in np.flatnonzero(plain).tolist()]
        self.stats.records += len(good)
        self.stats.rows_loaded += len(good)
        fast = b"\n".join(good) + b"\n" if good else b""
        return fast + buffer.getvalue().encode("utf-8") + careful

    def _careful(self, lines: list[bytes], start: int) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        i = start
        while i < len(lines):
            i += self._handle(lines, i, writer)
        return buffer.getvalue().encode("utf-8")

    def _handle(self, lines: list[bytes], i: int, writer) -> int:
        """Load or reject the record starting at lines[i]; returns how many lines it used."""
        number = self.next_line + i
        raw = lines[i]
        problem = _line_problem(raw)
        if problem:
            self._reject(number, problem[0], problem[1], raw)
            return 1
        text = raw.decode("utf-8")
        if text.count('"') % 2:
            return self._join_multiline(lines, i, text, writer)
        fields, error = _parse_record(text)
        if fields is not None and len(fields) == self.n_fields:
            self._accept(writer, fields, number)
        elif fields is None:
            self._reject(number, "bad_quoting", f"malformed quoting: {error}", raw)
        elif not text.strip():
            self._reject(number, "empty_line", "blank line", raw)
        else:
            self._reject(number, "wrong_field_count", f"expected {self.n_fields} fields, found {len(fields)}", raw)
        return 1

    def _join_multiline(self, lines: list[bytes], i: int, text: str, writer) -> int:
        """Try to complete a record whose quote is open at line i; returns lines consumed."""
        number = self.next_line + i
        parts = [text]
        quotes = text.count('"')
        j = i + 1
        while quotes % 2 and j - i < self.max_record_lines:
            if j == len(lines):
                more = self.fh.readline()
                if not more:
                    break
                lines.append(more.removesuffix(b"\n").removesuffix(b"\r"))
            candidate = lines[j]
            if _line_problem(candidate):
                break
            piece = candidate.decode("utf-8")
            parts.append(piece)
            quotes += piece.count('"')
            j += 1
        if quotes % 2 == 0:
            fields, _error = _parse_record("\n".join(parts))
            if fields is not None and len(fields) == self.n_fields:
                self._accept(writer, fields, number)
                return j - i
        column = text.index('"') + 1 if '"' in text else 0
        self._reject(
            number,
            "unbalanced_quote",
            f"quote opened at column {column} does not close into a valid record within {self.max_record_lines} lines",
            lines[i],
        )
        return 1


def _line_problem(line: bytes) -> tuple[str, str] | None:
    if b"\x00" in line:
        return "nul_byte", f"NUL byte at column {line.index(NUL) + 1}"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "invalid_utf8", f"invalid UTF-8 byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
    return None


def _parse_record(text: str) -> tuple[list[str] | None, str | None]:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        return None, str(exc)
    if len(rows) != 1:
        return (rows[0] if rows else []), None
    return rows[0], None


class JsonlChunker(CsvChunker):
    """The same contract for JSON lines: one object per line, keys from the contract.

    Strict RFC 8259 JSON: NaN and Infinity, repeated keys and nested arrays or
    objects reject the line (invalid_json); numbers keep the text they were
    written with, as CSV fields do. A value holding a NUL character or a lone
    surrogate (escaped as \\u0000 or \\ud800) rejects the line as nul_byte or
    invalid_utf8, since PostgreSQL text can hold neither.
    """

    def __init__(self, fh, settings: SourceSettings, load_id: int, **kwargs):
        columns = settings.source.columns
        super().__init__(fh, len(columns) + 1, load_id, first_line_number=1, **kwargs)
        self.columns = columns
        self.settings = settings
        self.extra_keys: dict[str, int] = {}  # keys outside the contract, with the lines that held them

    def _process(self, chunk: bytes, lines: list[bytes]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        first = self.next_line
        if first == 1 and lines:
            lines[0] = lines[0].removeprefix(UTF8_BOM)
        for i, raw in enumerate(lines):
            number = first + i
            problem = _line_problem(raw)
            if problem:
                self._reject(number, problem[0], problem[1], raw)
                continue
            text = raw.decode("utf-8")
            if not text.strip():
                self._reject(number, "empty_line", "blank line", raw, "")
                continue
            try:
                obj = json.loads(
                    text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_int=str, parse_float=str
                )
            except ValueError as exc:
                self._reject(number, "invalid_json", f"invalid JSON: {exc}", raw, "")
                continue
            if not isinstance(obj, dict):
                self._reject(number, "invalid_json", f"expected a JSON object, found {type(obj).__name__}", raw, "")
                continue
            fields, problem = self._fields(obj)
            if problem:
                key = obj.get(self.settings.source.business_key)
                self._reject(number, *problem, raw, key[:200] if isinstance(key, str) else "")
                continue
            self._accept(writer, fields, number)
        return buffer.getvalue().encode("utf-8")

    def _fields(self, obj: dict) -> tuple[list[str], tuple[str, str] | None]:
        """The contract's fields of one object plus its `_extra` JSON, or the rule and reason that reject it.

        Keys are matched in lower case through the source's rename map; keys outside the
        contract are kept in `_extra`, dropped or reject the line, as extra_columns says.
        """
        rename = self.settings.rename
        mapped: dict[str, object] = {}
        written_as: dict[str, str] = {}
        extra: dict[str, object] = {}
        for key, value in obj.items():
            name = key.strip().lower()
            name = rename.get(name, name)
            if name in self.columns:
                if name in mapped:
                    return [], ("invalid_json", f"keys {written_as[name]!r} and {key!r} both give field {name}")
                mapped[name] = value
                written_as[name] = key
            else:
                extra[key] = value
        if extra:
            for key in extra:
                self.extra_keys[key] = self.extra_keys.get(key, 0) + 1
            if self.settings.extra_columns == "fail":
                return [], ("unknown_fields", f"unknown field(s) {', '.join(sorted(extra))}")
        nested = [k for k in self.columns if isinstance(mapped.get(k), dict | list)]
        if nested:
            return [], (
                "invalid_json",
                f"field(s) {', '.join(nested)} hold an array or object; expected a string, number, boolean or null",
            )
        fields = [_json_text(mapped.get(c)) for c in self.columns]
        for column, value in zip(self.columns, fields, strict=True):
            if "\x00" in value:
                return [], ("nul_byte", f"field {column} holds a NUL character (\\u0000)")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return [], (
                    "invalid_utf8",
                    f"field {column} holds a lone surrogate "
                    f"(\\u{ord(value[exc.start]):04x}), which is not Unicode text",
                )
        kept = extra if extra and self.settings.extra_columns == "keep" else None
        fields.append(_storable(json.dumps(kept, ensure_ascii=False)) if kept else "")
        return fields, None

    def drift(self) -> list[Drift]:
        action = {"keep": "kept", "ignore": "ignored", "fail": "failed"}[self.settings.extra_columns]
        detail = {"kept": "stored in bronze _extra", "ignored": "not loaded", "failed": "the line is rejected"}
        return [
            Drift(key, "added", action, f"{detail[action]} ({lines} line(s))")
            for key, lines in sorted(self.extra_keys.items())
        ]


def _storable(text: str) -> str:
    """Text PostgreSQL can store: NUL characters and lone surrogates written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        keys = [key for key, _value in pairs]
        raise ValueError(f"repeated key(s) {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}")
    return obj


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _json_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


class PrefetchStream(io.RawIOBase):
    """A read()-able view of an iterator of byte chunks, for cursor.copy_expert.

    A background thread produces the next chunks while psycopg2 sends the
    current one (it releases the GIL while writing to the socket), so parsing
    in Python and parsing in PostgreSQL overlap on two cores. An exception in
    the producer is re-raised on the reading side, which aborts the COPY.
    """

    _DONE = object()

    def __init__(self, chunks: Iterator[bytes], depth: int = 3):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(chunks,), daemon=True)
        self._thread.start()

    def _produce(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if self._stop.is_set():
                    return
                if chunk:
                    self._queue.put(chunk)
            self._queue.put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._queue.put(exc)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        item = self._queue.get()
        if item is self._DONE:
            self._queue.put(item)  # later reads keep seeing the end
            return b""
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)
        super().close()


@dataclass
class LoadContext:
    settings: SourceSettings
    path: Path
    extract_date: date
    run_id: str
    load_id: int
    max_record_lines: int = 100
    buffer_bytes: int = 4 << 20

    @property
    def source(self):
        return self.settings.source


@dataclass
class LoadResult:
    stats: LoadStats
    drift: list[Drift]


def copy_file(cursor, ctx: LoadContext, progress: Callable[[int], None] | None = None) -> LoadResult:
    """COPY the file's good records into bronze and its rejects into silver.quarantine.

    Runs inside the caller's transaction; raises LandingFileError before any row
    is written when the header is wrong. A file whose header matches the contract
    (in any order, through the rename map, with optional columns absent) is copied
    straight into bronze; one with extra columns goes through a temporary table so
    that the extras land in `_extra` as one jsonb object (or are dropped).
    """
    source = ctx.source
    rejects = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115 - closed below
    reject_text = io.TextIOWrapper(rejects, encoding="utf-8", newline="")
    reject_writer = csv.writer(reject_text, lineterminator="\n")
    record_label = str(ctx.path)
    key_position = 0

    def on_reject(reject: Reject) -> None:
        text = reject.raw.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
        key = reject.business_key
        if key is None:
            fields = text.split(",")
            key = fields[key_position].strip().strip('"')[:200] if text.strip() and key_position < len(fields) else ""
        record = {"raw": text[:RAW_TEXT_LIMIT], "raw_length": len(reject.raw)}
        reject_writer.writerow(
            [
                ctx.run_id,
                "bronze",
                f"bronze.{source.bronze_table}",
                record_label,
                reject.line_number,
                ctx.load_id,
                ctx.extract_date.isoformat(),
                _storable(key),
                reject.rule_name,
                _storable(reject.reason),
                json.dumps(record, ensure_ascii=False),
            ]
        )

    bronze_rows = sql.Identifier("bronze", f"{source.bronze_table}_rows")
    chunk_options = {"max_record_lines": ctx.max_record_lines, "buffer_bytes": ctx.buffer_bytes, "on_reject": on_reject}
    with ctx.path.open("rb") as fh:
        staged: HeaderPlan | None = None
        if ctx.path.suffix == ".jsonl":
            columns = [*source.columns, "_extra"]
            chunker: CsvChunker = JsonlChunker(fh, ctx.settings, ctx.load_id, **chunk_options)
            target = bronze_rows
        else:
            plan = parse_header(ctx.path, fh.readline(), ctx.settings)
            chunker = CsvChunker(fh, len(plan.columns), ctx.load_id, **chunk_options)
            key_position = plan.targets.index(source.business_key)
            if plan.is_direct:
                columns, target = list(plan.targets), bronze_rows
            else:
                staged = plan
                columns = [f"field_{i}" for i in range(1, len(plan.columns) + 1)]
                cursor.execute(
                    sql.SQL(
                        "create temp table landing_fields ({}, _load_id bigint, _line_number bigint) on commit drop"
                    ).format(sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in columns))
                )
                target = sql.Identifier("landing_fields")
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in [*columns, "_load_id", "_line_number"])
        force_null = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        copy_sql = sql.SQL("copy {} ({}) from stdin with (format csv, force_null ({}))").format(
            target, column_list, force_null
        )

        def reporting(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                if progress:
                    progress(fh.tell())
                yield chunk

        stream = PrefetchStream(reporting(chunker.chunks()))
        try:
            cursor.copy_expert(copy_sql.as_string(cursor), stream, size=ctx.buffer_bytes)
        finally:
            stream.close()
        if staged is not None:
            _insert_staged(cursor, bronze_rows, staged)

    reject_text.flush()
    if chunker.stats.rows_rejected:
        rejects.seek(0)
        quarantine_sql = sql.SQL("copy silver.quarantine ({}) from stdin with (format csv)").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in QUARANTINE_COLUMNS)
        )
        cursor.copy_expert(quarantine_sql.as_string(cursor), rejects, size=1 << 20)
    reject_text.close()
    drift = chunker.drift() if isinstance(chunker, JsonlChunker) else plan.drift
    return LoadResult(stats=chunker.stats, drift=drift)


def _insert_staged(cursor, bronze_rows: sql.Identifier, plan: HeaderPlan) -> None:
    """Move a staged file into bronze: contract fields to their columns, extras into `_extra`."""
    fields = {i: sql.Identifier(f"field_{i}") for i in range(1, len(plan.columns) + 1)}
    mapped = [(target, fields[i]) for i, target in enumerate(plan.targets, start=1) if target]
    extras = [
        (name, fields[i])
        for i, (name, target) in enumerate(zip(plan.columns, plan.targets, strict=True), start=1)
        if target is None and name
    ]
    extra_value = sql.SQL("null")
    if plan.keep_extras and extras:
        # jsonb_strip_nulls: an empty field is no value, as it is for the contract's columns.
        extra_value = sql.SQL("nullif(jsonb_strip_nulls(jsonb_build_object({})), '{{}}'::jsonb)").format(
            sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(name), field) for name, field in extras)
        )
    cursor.execute(
        sql.SQL(
            "insert into {} ({}, _extra, _load_id, _line_number) "
            "select {}, {}, _load_id, _line_number from landing_fields"
        ).format(
            bronze_rows,
            sql.SQL(", ").join(sql.Identifier(t) for t, _f in mapped),
            sql.SQL(", ").join(f for _t, f in mapped),
            extra_value,
        )
    )
    cursor.execute("drop table landing_fields")
