"""The landing-file contract: which extracts exist and which columns each carries.

Every other module (generator, bronze loader, silver SQL, tests) reads the
column lists from here, so the contract is written down exactly once.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Source:
    name: str  # short name used in task names and metrics, e.g. "crm_customers"
    file_stem: str  # landing file name without extension
    formats: tuple[str, ...]  # accepted file formats, in order of preference
    columns: tuple[str, ...]  # required header, in contract order
    business_key: str

    @property
    def bronze_table(self) -> str:
        return f"{self.name}_raw"

    def file_names(self) -> tuple[str, ...]:
        return tuple(f"{self.file_stem}.{fmt}" for fmt in self.formats)


CRM_CUSTOMERS = Source(
    name="crm_customers",
    file_stem="crm_customers",
    formats=("csv", "jsonl"),
    columns=(
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "region",
        "signup_date",
        "updated_at",
    ),
    business_key="customer_id",
)

ERP_PRODUCTS = Source(
    name="erp_products",
    file_stem="erp_products",
    formats=("csv",),
    columns=("product_id", "product_name", "category", "unit_cost", "list_price", "updated_at"),
    business_key="product_id",
)

ERP_SALES = Source(
    name="erp_sales",
    file_stem="erp_sales",
    formats=("csv",),
    columns=("order_id", "customer_id", "product_id", "order_date", "quantity", "unit_price"),
    business_key="order_id",
)

SOURCES: dict[str, Source] = {s.name: s for s in (CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES)}

# The nine canonical regions (US Census divisions). Silver maps raw spellings onto these.
REGIONS: tuple[str, ...] = (
    "New England",
    "Mid-Atlantic",
    "East North Central",
    "West North Central",
    "South Atlantic",
    "East South Central",
    "West South Central",
    "Mountain",
    "Pacific",
)


# ---------------------------------------------------------------- per-source settings (sources.toml)
# The contract above fixes the column names the warehouse uses. How a company's
# files write them (header names, extra columns, time zone, date and number
# conventions, vocabularies) is configuration: sources.toml, named by
# METALAYER_SOURCES_FILE or luigi.cfg [metalayer] sources_file.

EXTRA_POLICIES = ("keep", "ignore", "fail")
TIMESTAMP_COLUMNS = {"updated_at"}
_SOURCE_KEYS = {
    "rename",
    "required",
    "extra_columns",
    "time_zone",
    "day_first",
    "decimal_comma",
    "epoch_columns",
    "vocabularies",
    "kind",
    "extract",
}
_DEFAULT_KEYS = _SOURCE_KEYS - {"rename", "required", "vocabularies", "epoch_columns", "kind", "extract"}
# Where a source's extract comes from: landing files (the default), a PostgreSQL table
# or query, or an HTTP JSON API. `extract` holds the kind's own settings, checked by
# its extractor (pipeline/extractors/).
SOURCE_KINDS = ("file", "postgres", "http")
# Columns a file must carry: without them no line of the file could become a row.
DEFAULT_REQUIRED: dict[str, tuple[str, ...]] = {
    "crm_customers": ("customer_id", "email", "updated_at"),
    "erp_products": ("product_id", "list_price", "updated_at"),
    "erp_sales": ("order_id", "customer_id", "product_id", "order_date", "quantity", "unit_price"),
}
# Vocabularies a source's values are mapped onto: canonical value -> its synonyms.
# Matching is on a normalized key (lower case, every run of non-letters one space,
# trimmed; silver.vocabulary_key), so case, hyphens and spacing never matter.
DEFAULT_VOCABULARIES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "crm_customers": {"region": {region: () for region in REGIONS}},
}


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def vocabulary_key(text: str) -> str:
    """silver.vocabulary_key in Python: ASCII lower case, other runs of non-alphanumerics one space."""
    return " ".join(re.split(r"[^a-z0-9]+", text.translate(_ASCII_LOWER))).strip()


class SourceConfigError(ValueError):
    """sources.toml is invalid; the message names the file, the source and the key."""

    retryable = False
    hint = "correct the sources file (its keys are documented at its top and in docs/sources.md), then run again"


@dataclass(frozen=True)
class SourceSettings:
    """How one company's extract of a source is written (see sources.toml)."""

    source: Source
    rename: dict[str, str]  # file column (lower case) -> contract column
    required: tuple[str, ...]
    extra_columns: str  # keep | ignore | fail
    time_zone: str
    day_first: bool
    decimal_comma: bool
    epoch_columns: tuple[str, ...]
    vocabularies: dict[str, dict[str, tuple[str, ...]]]
    kind: str = "file"
    extract: dict = field(default_factory=dict, hash=False, compare=False)

    def vocabulary_arrays(self, name: str) -> tuple[list[str], list[str]]:
        """(spellings, canonical values) of a vocabulary, for the silver models: every canonical value
        is also its own spelling."""
        spellings, canonical = [], []
        for value, synonyms in self.vocabularies.get(name, {}).items():
            for spelling in (value, *synonyms):
                spellings.append(spelling)
                canonical.append(value)
        return spellings, canonical

    def model_params(self) -> dict:
        """The parsing settings every silver model of this source receives."""
        return {
            "time_zone": self.time_zone,
            "day_first": self.day_first,
            "decimal_comma": self.decimal_comma,
            "epoch": "updated_at" in self.epoch_columns,
        }


def sources_file() -> Path | None:
    import os

    from pipeline.core.config import metalayer, resolve_path

    name = os.environ.get("METALAYER_SOURCES_FILE") or metalayer().sources_file
    return resolve_path(name) if name else None


def parse_source_settings(text: str, path: Path | str = "sources.toml") -> dict[str, SourceSettings]:
    """Every source's settings: the file's, over its [defaults], over the built-in contract."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourceConfigError(f"{path}: {exc}") from exc
    unknown = sorted(set(doc) - {"defaults", "sources"})
    if unknown:
        raise SourceConfigError(
            f"{path}: unknown section(s) {', '.join(unknown)}; expected [defaults] and [sources.<name>]"
        )
    defaults = doc.get("defaults", {})
    bad = sorted(set(defaults) - _DEFAULT_KEYS)
    if bad:
        raise SourceConfigError(
            f"{path}: [defaults]: unknown key(s) {', '.join(bad)}; allowed: {', '.join(sorted(_DEFAULT_KEYS))}"
        )
    sections = doc.get("sources", {})
    strangers = sorted(set(sections) - set(SOURCES))
    if strangers:
        raise SourceConfigError(
            f"{path}: unknown source(s) {', '.join(strangers)}; the sources are {', '.join(SOURCES)}"
        )
    return {
        name: _settings(source, {**defaults, **sections.get(name, {})}, f"{path}: [sources.{name}]")
        for name, source in SOURCES.items()
    }


def _settings(source: Source, raw: dict, where: str) -> SourceSettings:
    bad = sorted(set(raw) - _SOURCE_KEYS)
    if bad:
        raise SourceConfigError(f"{where}: unknown key(s) {', '.join(bad)}; allowed: {', '.join(sorted(_SOURCE_KEYS))}")
    columns = set(source.columns)
    rename = {str(k).strip().lower(): str(v).strip().lower() for k, v in raw.get("rename", {}).items()}
    for file_column, contract_column in rename.items():
        if contract_column not in columns:
            raise SourceConfigError(
                f"{where}: rename {file_column!r} -> {contract_column!r}: {contract_column!r} is "
                f"not a column of the contract ({', '.join(source.columns)})"
            )
    targets = list(rename.values())
    twice = sorted({c for c in targets if targets.count(c) > 1})
    if twice:
        raise SourceConfigError(f"{where}: rename maps two file columns onto {', '.join(twice)}")
    required = tuple(str(c).lower() for c in raw.get("required", DEFAULT_REQUIRED[source.name]))
    if source.business_key not in required:
        required = (source.business_key, *required)
    strange = [c for c in required if c not in columns]
    if strange:
        raise SourceConfigError(f"{where}: required column(s) {', '.join(strange)} are not in the contract")
    extra = raw.get("extra_columns", "keep")
    if extra not in EXTRA_POLICIES:
        raise SourceConfigError(f"{where}: extra_columns must be one of {', '.join(EXTRA_POLICIES)}, not {extra!r}")
    zone = str(raw.get("time_zone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SourceConfigError(
            f"{where}: time_zone {zone!r} is not an IANA time zone name (e.g. 'UTC', "
            "'Europe/Berlin', 'America/New_York')"
        ) from exc
    for flag in ("day_first", "decimal_comma"):
        if not isinstance(raw.get(flag, False), bool):
            raise SourceConfigError(f"{where}: {flag} must be true or false")
    epoch = tuple(str(c).lower() for c in raw.get("epoch_columns", ()))
    strange = [c for c in epoch if c not in columns or c not in TIMESTAMP_COLUMNS]
    if strange:
        allowed = ", ".join(sorted(TIMESTAMP_COLUMNS & columns)) or "none in this source"
        raise SourceConfigError(
            f"{where}: epoch_columns {', '.join(strange)}: only timestamp columns ({allowed}) can hold epoch seconds"
        )
    vocabularies = {k: dict(v) for k, v in DEFAULT_VOCABULARIES.get(source.name, {}).items()}
    for name, values in raw.get("vocabularies", {}).items():
        if name not in columns:
            raise SourceConfigError(f"{where}: vocabularies.{name}: {name!r} is not a column of the contract")
        if name not in vocabularies:
            raise SourceConfigError(
                f"{where}: vocabularies.{name}: only {', '.join(vocabularies) or 'no'} "
                "column(s) of this source are mapped onto a vocabulary"
            )
        if not isinstance(values, dict) or not values:
            raise SourceConfigError(
                f"{where}: vocabularies.{name} must map each canonical value to a list of "
                'synonyms, e.g. West = ["W", "Western"]'
            )
        vocabularies[name] = {str(value): tuple(str(s) for s in synonyms) for value, synonyms in values.items()}
        owner: dict[str, str] = {}
        for value, synonyms in vocabularies[name].items():
            for spelling in (value, *synonyms):
                key = vocabulary_key(spelling)
                if not key:
                    raise SourceConfigError(f"{where}: vocabularies.{name}: {spelling!r} has no letters or digits")
                if owner.setdefault(key, value) != value:
                    raise SourceConfigError(
                        f"{where}: vocabularies.{name}: {spelling!r} would mean both "
                        f"{owner[key]!r} and {value!r} (spellings are compared ignoring case, "
                        "spaces and punctuation)"
                    )
    kind = raw.get("kind", "file")
    if kind not in SOURCE_KINDS:
        raise SourceConfigError(f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
    extract = raw.get("extract", {})
    if not isinstance(extract, dict) or (kind == "file" and extract):
        raise SourceConfigError(
            f"{where}: extract must be a table of the {kind} extractor's settings"
            + (" (a file source has none)" if kind == "file" else "")
        )
    return SourceSettings(
        source=source,
        kind=kind,
        extract=extract,
        rename=rename,
        required=required,
        extra_columns=extra,
        time_zone=zone,
        day_first=bool(raw.get("day_first", False)),
        decimal_comma=bool(raw.get("decimal_comma", False)),
        epoch_columns=epoch,
        vocabularies=vocabularies,
    )


@cache
def _load_settings(path: Path | None, mtime: float) -> dict[str, SourceSettings]:
    if path is None:
        return parse_source_settings("")
    return parse_source_settings(path.read_text(encoding="utf-8"), path)


def source_settings(name: str) -> SourceSettings:
    """The settings of one source, from the configured sources.toml (re-read when it changes)."""
    path = sources_file()
    if path is not None and not path.is_file():
        raise SourceConfigError(
            f"{path}: the sources file named by METALAYER_SOURCES_FILE or luigi.cfg "
            "[metalayer] sources_file does not exist"
        )
    return _load_settings(path, path.stat().st_mtime if path else 0.0)[name]
