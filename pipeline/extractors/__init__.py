"""Extracts of sources that are not landing files: a PostgreSQL table or query, an HTTP JSON API.

An extractor writes the date's extract to a file under the run's work folder
(streamed: rows never pass through pandas), in a format the bronze loader
reads (CSV with a header, or JSON lines), and returns it with what must be
recorded in the same transaction as the bronze load (a new watermark, a key
snapshot). The bronze task then loads that file exactly as it loads a landing
file: the same contract, renames, quarantine, markers and bookkeeping. A crash
between extract and commit leaves the watermark where it was, so the next
attempt extracts the same rows again: nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.core.db import Warehouse
from pipeline.core.sources import SourceSettings


@dataclass
class Extracted:
    path: Path  # the extract, a .csv or .jsonl file
    description: str  # where it came from, for messages and meta.ingested_files.source_file
    # Called with the bronze task's cursor and load id after the load, inside its transaction.
    on_commit: Callable[[object, int], None] = field(default=lambda cur, load_id: None)


def extract(settings: SourceSettings, extract_date: date, workdir: Path, warehouse: Warehouse) -> Extracted:
    """Run the source's extractor for the date (the warehouse holds its watermarks); raises an expected
    failure with the cause."""
    if settings.kind == "postgres":
        from pipeline.extractors import postgres

        return postgres.extract(settings, extract_date, workdir, warehouse)
    if settings.kind == "http":
        from pipeline.extractors import http

        return http.extract(settings, extract_date, workdir, warehouse)
    raise ValueError(f"{settings.source.name}: kind {settings.kind!r} has no extractor")
