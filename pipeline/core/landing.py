"""The landing dir: one folder per extract date holding each source's file (docs/sources.md).

Where a date's files are, which dates there are, and when a folder is complete (the landing watcher's rule,
which plain `luigi` runs apply through LandingReady): `_SUCCESS`, or every file-kind source's file present and
none written within the quiet period.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipeline.core import ingest
from pipeline.core.config import landing_dir
from pipeline.core.sources import SOURCES, Source, source_settings


def _source(name: str) -> Source:
    from pipeline.core.sources import SOURCES

    return SOURCES[name]


DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def extract_dates(landing: str | Path) -> list[date]:
    """The extract dates present in a landing dir, oldest first."""
    folder = Path(landing or landing_dir())
    if not folder.is_dir():
        return []
    return sorted(date.fromisoformat(p.name) for p in folder.iterdir() if p.is_dir() and DATE_FOLDER.match(p.name))


def previous_extract_date(landing: str | Path, extract_date: date) -> date | None:
    earlier = [d for d in extract_dates(landing) if d < extract_date]
    return earlier[-1] if earlier else None


def landing_file(landing: str | Path, extract_date, source: Source) -> Path:
    """The file of a source for a date; the first accepted format found, else the CSV path."""
    folder = Path(landing or landing_dir()) / extract_date.isoformat()
    candidates = [folder / name for name in source.file_names()]
    return next((path for path in candidates if path.exists()), candidates[0])


def check_landing_file(path: Path, source: Source) -> None:
    """One regular file per source and date: a second format beside it would be silently ignored."""
    if not path.is_file():
        raise ingest.LandingFileError(path, None, "is not a regular file (a directory?); expected the extract")
    others = [p.name for p in (path.parent / name for name in source.file_names()) if p != path and p.exists()]
    if others:
        raise ingest.LandingFileError(
            path,
            None,
            f"{', '.join(others)} is also present for this date; deliver "
            f"{source.name} in one format only, nothing of either is loaded",
        )


SUCCESS_FILE = "_SUCCESS"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    fingerprint: str  # sha256 of the folder's file names, sizes and mtimes
    has_marker: bool = False
    stage: str = "ready"  # missing | settling | ready: the watcher says so once per change


def folder_files(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime in ns) of the folder's regular files, hidden and temporary ones included."""
    files = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # renamed away meanwhile
        if path.is_file():
            files.append((path.name, stat.st_size, stat.st_mtime_ns))
    return sorted(files)


def fingerprint(files: list[tuple[str, int, int]]) -> str:
    return hashlib.sha256(repr(files).encode()).hexdigest()


def missing_contract_files(names: set[str]) -> list[str]:
    """The file-kind sources without a file among `names` (any accepted format)."""
    missing = []
    for source in SOURCES.values():
        if source_settings(source.name).kind == "file" and not set(source.file_names()) & names:
            missing.append(" or ".join(source.file_names()))
    return missing


def readiness(folder: Path, quiet_seconds: float, now: float | None = None) -> Readiness:
    """Whether a date folder is complete by the rule above, judged from the files as they are now."""
    files = folder_files(folder)
    digest = fingerprint(files)
    names = {name for name, _, _ in files}
    if SUCCESS_FILE in names:
        return Readiness(True, f"{SUCCESS_FILE} present", digest, has_marker=True)
    missing = missing_contract_files(names)
    if missing:
        return Readiness(False, f"waiting for {', '.join(missing)}", digest, stage="missing")
    age = (now if now is not None else time.time()) - max(mtime for _, _, mtime in files) / 1e9
    if age < quiet_seconds:
        return Readiness(
            False, f"last written {max(age, 0):.1f}s ago, quiet period {quiet_seconds:g}s", digest, stage="settling"
        )
    return Readiness(True, f"every contract file present, unchanged for {quiet_seconds:g}s", digest)


def missing_landing_files(landing: str | Path, run_date: date) -> list[str]:
    """The date's source files that are not in the landing folder (any accepted format); a database or
    API source (sources.toml kind) has none."""
    paths = (
        landing_file(landing, run_date, source)
        for source in SOURCES.values()
        if source_settings(source.name).kind == "file"
    )
    return [str(path) for path in paths if not path.exists()]
