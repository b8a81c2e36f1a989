"""Deterministic sample CRM/ERP extracts with injected defects and an exact ``manifest.json``.

``generate(out_dir, start_date, days, ...)`` writes one folder per extract date,
``out_dir/<YYYY-MM-DD>/``, for ``start_date`` .. ``start_date + days - 1``, each with
``crm_customers.csv`` (or ``crm_customers.jsonl``), ``erp_products.csv``,
``erp_sales.csv`` and ``manifest.json``. Same arguments give byte-identical files:
every random draw comes from ``numpy.random.default_rng`` / ``random.Random``
seeded from ``seed`` and the folder index (folder k uses its own streams, so the
history folder does not depend on ``days``, and ``customers_format`` changes
nothing but the customers file's serialisation).

The vocabularies (names, states and cities, streets, e-mail domains, product categories,
brands, month names) are data files in ``pipeline/sample/vocabularies/`` (see its README.md);
the rates and knobs below stay in this module.

Volumes
-------
History folder (``start_date``, ``kind: "history"``):
  ``customers`` customers, ``products`` products, ``orders`` sales lines dated over
  the ``HISTORY_DAYS`` = 730 days ending on start_date (inclusive), with an upward
  trend (the latest months have ~1.8x the orders of the first ones), a December
  holiday peak, a Black-Friday spike, a mild summer bump and busier weekends.
  Customers sign up over the four years ending on start_date; a customer only
  buys on or after its signup date.
Delta folders (every later date, ``kind: "delta"``):
  - new sales lines: ``DELTA_NEW_SALES_FRACTION`` = 1% of ``orders`` (at least 1),
    all dated that day, from existing or that day's new customers;
  - customer updates: ``DELTA_UPDATED_CUSTOMERS_FRACTION`` = 1% of ``customers``
    (at least 1) existing customers re-sent as full rows with a later
    ``updated_at`` and a changed email / phone / address / city / state / last name;
  - new customers: ``DELTA_NEW_CUSTOMERS_FRACTION`` = 0.2% of ``customers`` (at least 1);
    ``NEW_CUSTOMER_BUYS_RATE`` = 60% of the valid ones buy on their signup day;
  - ``erp_products.csv`` holds only the ``DELTA_PRICE_CHANGES`` = 2 products whose
    list price changed that day (header included). Delta sales use the new prices.

Counts below are per file; a rate r over n base rows injects floor(r*n) rows plus
one more with probability frac(r*n) (seeded), so small files get a fair share.
The base rows of a file are: history customers = ``customers``; history sales =
``orders``; delta customers = updates + new customers; delta sales = new lines.
Every affected row carries exactly ONE defect kind, so the manifest counts are exact.

Customer defects (``CUSTOMER_DEFECT_RATES``):
  ``malformed_email``   2%    missing @, double @@, a space, or no domain
  ``invalid_phone``     2%    too short, letters, or all zeros
  ``messy_name``        5%    first or last name with leading/trailing spaces,
                              doubled inner spaces, ALL CAPS or all lower (still valid)
  ``missing_required``  0.5%  empty customer_id or empty email
  ``unparseable_date``  0.5%  signup_date like "2023-13-45", "not a date", "31/31/2020"
  ``customer_update``   2%    history only: the customer_id appears again later in the
                              file with a later updated_at and a changed attribute
  ``exact_duplicate``   1%    a byte-identical copy of another row, placed later
Product defects (``PRODUCT_HISTORY_DEFECT_COUNTS``, history only): one
  ``exact_duplicate`` row and one ``missing_required`` row (empty product_id, an
  extra product that exists nowhere else). Delta product files have none.
Sales defects (``SALES_DEFECT_RATES``):
  ``unknown_customer``     1%    customer_id that no customers file ever holds
  ``unknown_product``      0.5%  product_id that no products file ever holds
  ``zero_quantity``        0.5%  quantity "0"
  ``negative_quantity``    0.5%  quantity "-1" .. "-12"
  ``negative_price``       0.3%  unit_price "-19.99"
  ``unparseable_date``     0.5%  order_date like "2023-13-45", "not a date"
  ``unparseable_amount``   0.5%  quantity "two"/"3.5x" or unit_price "12.3.4"/"N/A"/"$"
  ``missing_required``     0.5%  empty order_id, customer_id or product_id
  ``duplicate_order_line`` 1%    a byte-identical extra copy of a line, placed later
  ``free_item`` (``FREE_ITEM_RATE`` 0.5%): unit_price "0.00" -- valid, NOT a defect.
Sales lines of valid customers reference only customers whose row is clean or
only ``messy_name`` (so silver never loses them), on or after their signup date.

Broken lines (``BROKEN_LINE_RATES``), in crm_customers and erp_sales (not products),
0.1% each of the base rows, at least 1 of each in a history file of >= 1000 rows:
  ``wrong_field_count``  one field too many or too few; no double-quote character
  ``unbalanced_quote``   right number of commas, one field (never the last) starts
                         with a ``"`` that is never closed; exactly one ``"`` in the line
  ``invalid_json``       (crm_customers.jsonl instead of the two above) a truncated object
A broken line replaces the row it was made from (that customer / order line is
lost to the warehouse; broken customers are never referenced by sales).

Not defects (clean rows with a property, counted in ``clean_rows`` too):
  ``multiline_records`` (``MULTILINE_ADDRESS_RATE`` 0.5% of customer rows): the
     address holds an embedded newline ("12 Oak Ave\\nBuilding B"), one RFC 4180
     record over exactly 2 physical lines. Never right after an unbalanced_quote
     line. In crm_customers.jsonl the newline is escaped, so multiline_records is 0.
  ``region_variants`` (``REGION_VARIANT_RATE`` 5% of customer rows): region spelled
     "pacific", " PACIFIC", "Pacific ", "Mid Atlantic", "New-England"; lower-casing,
     trimming and treating "-" as " " maps every variant onto ``REGIONS``.
  ``ADDRESS_WITH_UNIT_RATE`` 12% of addresses hold a comma ("12 Oak Ave, Apt 4").
Date formats (``DATE_FORMAT_RATES``) for signup_date and order_date:
  "2025-03-07" 88%, "03/07/2025" (US m/d/Y) 5%, "2025/03/07" 3%, "07-Mar-2025" 2%,
  "March 7, 2025" 2% (English month names). A customer keeps its signup format.
Timestamps (``TIMESTAMP_FORMAT_RATES``) for updated_at: "2025-03-07T14:05:09Z" 85%,
  "2025-03-07 14:05:09" 15% (both UTC).
Phone styles (``PHONE_FORMAT_RATES``): "(415) 555-0123" 35%, "415-555-0123" 25%,
  "415.555.0123", "+1 415 555 0123", "4155550123", "1-415-555-0123" 10% each.

Every valid record spans at most 2 physical lines, so a loader may stop joining
lines after 2 without changing the outcome (an unbalanced_quote line is rejected
either way).

manifest.json (sorted keys, indent 2, no timestamps)::

  {"date": "YYYY-MM-DD", "kind": "history" | "delta", "seed": S,
   "parameters": {start_date, days, customers, orders, products, seed, customers_format},
   "contents": {history: customers, products, sales_lines |
                delta: new_customers, updated_customers, changed_products, new_sales_lines},
   "files": {"<file name>": {
       "sha256", "physical_lines" (incl. header; JSONL has no header),
       "records" (multi-line records count once, broken lines once each),
       "broken_lines": {"wrong_field_count": n, "unbalanced_quote": n} | {"invalid_json": n},
       "loadable_records" (= records - broken), "clean_rows" (loadable without defect),
       "defects": {kind: n, every kind of that file, zeros included},
       "multiline_records", "region_variants", "free_items",
       "date_formats": {column: {format: n}} over loadable records
                       ("unparseable" counts the unparseable_date rows)}}}

  records = sum(broken_lines) + loadable_records; loadable_records = clean_rows + sum(defects).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np

from pipeline.core.sources import CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES, REGIONS

__all__ = ["generate"]

# --------------------------------------------------------------------------- volumes
HISTORY_DAYS = 730
DELTA_NEW_SALES_FRACTION = 0.01
DELTA_UPDATED_CUSTOMERS_FRACTION = 0.01
DELTA_NEW_CUSTOMERS_FRACTION = 0.002
DELTA_PRICE_CHANGES = 2
NEW_CUSTOMER_BUYS_RATE = 0.6  # a delta's new (valid) customers who buy on their signup day
# Busier weekends, Monday first: the history's weekday pattern, also that of deltas with delta_weekday.
WEEKDAY_FACTORS = (1.0, 0.95, 0.95, 1.0, 1.08, 1.2, 1.12)

# --------------------------------------------------------------------------- labelled anomalies
# Injected only on request (``anomalies``), on delta dates, and listed in that folder's manifest.
ANOMALY_KINDS: tuple[str, ...] = ("missing_sales", "prices_in_cents", "region_silent", "column_null")
MISSING_SALES_SHARE = 0.4  # missing_sales: this share of the day's order ids is left out
NULLABLE_CUSTOMER_COLUMNS = ("phone", "address", "city")  # column_null: warn-rule or free columns only

# --------------------------------------------------------------------------- defects
CUSTOMER_DEFECT_RATES: dict[str, float] = {
    "malformed_email": 0.02,
    "invalid_phone": 0.02,
    "messy_name": 0.05,
    "missing_required": 0.005,
    "unparseable_date": 0.005,
    "customer_update": 0.02,  # history only
    "exact_duplicate": 0.01,
}
PRODUCT_HISTORY_DEFECT_COUNTS: dict[str, int] = {"exact_duplicate": 1, "missing_required": 1}
SALES_DEFECT_RATES: dict[str, float] = {
    "unknown_customer": 0.01,
    "unknown_product": 0.005,
    "zero_quantity": 0.005,
    "negative_quantity": 0.005,
    "negative_price": 0.003,
    "unparseable_date": 0.005,
    "unparseable_amount": 0.005,
    "missing_required": 0.005,
    "duplicate_order_line": 0.01,
}
BROKEN_LINE_RATES: dict[str, float] = {"wrong_field_count": 0.001, "unbalanced_quote": 0.001}
MIN_ROWS_FOR_GUARANTEED_BROKEN = 1000

# --------------------------------------------------------------------------- properties
MULTILINE_ADDRESS_RATE = 0.005
REGION_VARIANT_RATE = 0.05
FREE_ITEM_RATE = 0.005
ADDRESS_WITH_UNIT_RATE = 0.12
DATE_FORMAT_RATES: dict[str, float] = {
    "YYYY-MM-DD": 0.88,
    "MM/DD/YYYY": 0.05,
    "YYYY/MM/DD": 0.03,
    "DD-Mon-YYYY": 0.02,
    "Month D, YYYY": 0.02,
}
TIMESTAMP_FORMAT_RATES: dict[str, float] = {"YYYY-MM-DDTHH:MM:SSZ": 0.85, "YYYY-MM-DD HH:MM:SS": 0.15}
PHONE_FORMAT_RATES: dict[str, float] = {
    "(415) 555-0123": 0.35,
    "415-555-0123": 0.25,
    "415.555.0123": 0.10,
    "+1 415 555 0123": 0.10,
    "4155550123": 0.10,
    "1-415-555-0123": 0.10,
}
UNPARSEABLE = "unparseable"

# Region sizes (share of customers) and spend (order size and price mix), clearly different.
REGION_CUSTOMER_SHARE: dict[str, float] = {
    "New England": 0.040,
    "Mid-Atlantic": 0.125,
    "East North Central": 0.145,
    "West North Central": 0.065,
    "South Atlantic": 0.205,
    "East South Central": 0.055,
    "West South Central": 0.120,
    "Mountain": 0.075,
    "Pacific": 0.170,
}
REGION_SPEND: dict[str, float] = {
    "New England": 1.25,
    "Mid-Atlantic": 1.15,
    "East North Central": 0.90,
    "West North Central": 0.85,
    "South Atlantic": 0.95,
    "East South Central": 0.75,
    "West South Central": 0.90,
    "Mountain": 1.00,
    "Pacific": 1.35,
}

CUSTOMER_DEFECTS: tuple[str, ...] = tuple(CUSTOMER_DEFECT_RATES)
SALES_DEFECTS: tuple[str, ...] = tuple(SALES_DEFECT_RATES)
PRODUCT_DEFECTS: tuple[str, ...] = tuple(PRODUCT_HISTORY_DEFECT_COUNTS)
CSV_BROKEN_KINDS: tuple[str, ...] = tuple(BROKEN_LINE_RATES)
JSONL_BROKEN_KINDS: tuple[str, ...] = ("invalid_json",)

_DATE_FORMATS = tuple(DATE_FORMAT_RATES)
_DATE_P = np.array(list(DATE_FORMAT_RATES.values()))
_TS_FORMATS = tuple(TIMESTAMP_FORMAT_RATES)
_TS_P = np.array(list(TIMESTAMP_FORMAT_RATES.values()))
_PHONE_P = np.array(list(PHONE_FORMAT_RATES.values()))

_BAD_DATES = ("2023-13-45", "not a date", "31/31/2020", "2024-02-30", "00/00/0000", "32-Jan-2024", "TBD")
_BAD_QUANTITIES = ("two", "3.5x", "three", "1 1/2")
_BAD_PRICES = ("N/A", "$", "n/a", "TBD")

# --------------------------------------------------------------------------- reference data
# The vocabularies (names, places, products, brands, e-mail domains and their weights) are data files in
# vocabularies/ beside this module (its README.md describes each), read once at import. Rates and knobs stay
# in this module.
_VOCABULARIES = Path(__file__).with_name("vocabularies")


def _vocabulary_lines(name: str) -> list[str]:
    """The lines of vocabularies/<name> after its first line, which must be a ``#`` comment saying what it is."""
    lines = (_VOCABULARIES / name).read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"vocabularies/{name}: the first line must be a '#' comment describing the file")
    return lines[1:]


def _vocabulary_list(name: str) -> tuple[str, ...]:
    """A ``.txt`` vocabulary: every line after the header comment is one item, verbatim (a later '#' is data)."""
    items = tuple(_vocabulary_lines(name))
    bad = [s for s in items if not s or s != s.strip()]
    if not items or bad:
        raise ValueError(f"vocabularies/{name}: empty, or blank / space-padded items {bad!r}")
    return items


def _vocabulary_csv(name: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """A ``.csv`` vocabulary: the header comment, a header row of exactly ``columns``, then at least one row."""
    reader = csv.DictReader(_vocabulary_lines(name), strict=True)
    rows = list(reader)
    if (
        tuple(reader.fieldnames or ()) != columns
        or not rows
        or any(None in r or None in r.values() or "" in r.values() for r in rows)
    ):
        raise ValueError(f"vocabularies/{name}: expected the columns {columns} and at least one complete row")
    return rows


def _weight(name: str, text: str) -> float:
    w = float(text)  # written as a Python repr, so it round-trips exactly
    if not (w > 0 and math.isfinite(w)):
        raise ValueError(f"vocabularies/{name}: weight {text!r} is not a positive number")
    return w


# (state, census division, population in millions, cities, area codes); the population is the draw weight
_STATES: tuple[tuple[str, str, float, tuple[str, ...], tuple[int, ...]], ...] = tuple(
    (
        r["state"],
        r["division"],
        _weight("states.csv", r["population_millions"]),
        tuple(r["cities"].split("|")),
        tuple(int(a) for a in r["area_codes"].split("|")),
    )
    for r in _vocabulary_csv("states.csv", ("state", "division", "population_millions", "cities", "area_codes"))
)
FIRST_NAMES: tuple[str, ...] = _vocabulary_list("first_names.txt")
LAST_NAMES: tuple[str, ...] = _vocabulary_list("last_names.txt")
_EMAIL_DOMAIN_ROWS = _vocabulary_csv("email_domains.csv", ("domain", "weight"))
EMAIL_DOMAINS: tuple[str, ...] = tuple(r["domain"] for r in _EMAIL_DOMAIN_ROWS)
_EMAIL_DOMAIN_P = np.array([_weight("email_domains.csv", r["weight"]) for r in _EMAIL_DOMAIN_ROWS])
_STREETS = _vocabulary_list("streets.txt")
_STREET_SUFFIXES = _vocabulary_list("street_suffixes.txt")
_UNITS = _vocabulary_list("address_units.txt")
_SECOND_LINES = _vocabulary_list("address_second_lines.txt")
# (category, lowest and highest list price, product nouns)
_CATEGORIES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = tuple(
    (c["name"], float(c["min_price"]), float(c["max_price"]), tuple(c["products"]))
    for c in tomllib.loads("\n".join(_vocabulary_lines("categories.toml")))["categories"]
)
_BRANDS = _vocabulary_list("brands.txt")
_MONTHS = _vocabulary_list("months.txt")
if len(_MONTHS) != 12:
    raise ValueError("vocabularies/months.txt: expected the 12 month names, January first")

_QTY_VALUES = np.arange(1, 13)
_QTY_BASE_P = np.array([0.40, 0.24, 0.14, 0.08, 0.06, 0.025, 0.015, 0.01, 0.008, 0.007, 0.008, 0.007])
_DISCOUNTS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25)
_DISCOUNT_P = np.array([0.80, 0.07, 0.05, 0.04, 0.03, 0.01])

_MON = tuple(m[:3] for m in _MONTHS)
_EPOCH = datetime(1970, 1, 1)
_FOLD = str.maketrans({"Đ": "D", "đ": "d", "ø": "o", "Ø": "O", "ß": "ss", "ł": "l", "Ł": "L", "æ": "ae"})

_N_REGIONS = len(REGIONS)
_REGION_IDX = {r: i for i, r in enumerate(REGIONS)}
_REGION_SHARE_P = np.array([REGION_CUSTOMER_SHARE[r] for r in REGIONS])
_REGION_SPEND_V = np.array([REGION_SPEND[r] for r in REGIONS])
_STATE_REGION = np.array([_REGION_IDX[s[1]] for s in _STATES])
_REGION_STATES: list[tuple[np.ndarray, np.ndarray]] = []
for _r in range(_N_REGIONS):
    _idx = np.flatnonzero(_STATE_REGION == _r)
    _pop = np.array([_STATES[i][2] for i in _idx])
    _REGION_STATES.append((_idx, _pop / _pop.sum()))
_STATE_P = np.array([s[2] for s in _STATES]) / sum(s[2] for s in _STATES)

_CHUNK = 65536


# --------------------------------------------------------------------------- small helpers
def _stoch(rng: np.random.Generator, x: float) -> int:
    """floor(x) plus one with probability frac(x): exact counts with the right expectation."""
    k = int(math.floor(x))
    if rng.random() < x - k:
        k += 1
    return k


def _take(rng: np.random.Generator, pool: np.ndarray, counts: Sequence[int], reserve: int = 0) -> list[np.ndarray]:
    """Disjoint random subsets of ``pool`` of the given sizes, leaving ``reserve`` items unpicked."""
    perm = rng.permutation(pool)
    avail = max(0, len(perm) - reserve)
    out, pos = [], 0
    for c in counts:
        c = max(0, min(int(c), avail - pos))
        out.append(np.sort(perm[pos : pos + c]))
        pos += c
    return out


def _ascii_fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.translate(_FOLD))
    return "".join(ch for ch in s if ch.isascii() and ch.isalnum()).lower()


def _email(first: str, last: str, pattern: int, domain: str, num: int) -> str:
    f, s = _ascii_fold(first) or "user", _ascii_fold(last) or "mail"
    local = (f"{f}.{s}", f"{f}{s}", f"{f[0]}{s}", f"{f}_{s}", f"{f}.{s}{num}", f"{f}{s}{num}", f"{s}.{f}")[pattern % 7]
    return f"{local}@{domain}"


def _fmt_phone(digits: str, style: int) -> str:
    a, e, n = digits[:3], digits[3:6], digits[6:]
    if style == 0:
        return f"({a}) {e}-{n}"
    if style == 1:
        return f"{a}-{e}-{n}"
    if style == 2:
        return f"{a}.{e}.{n}"
    if style == 3:
        return f"+1 {a} {e} {n}"
    if style == 4:
        return digits
    return f"1-{a}-{e}-{n}"


@cache
def _fmt_date(ordinal: int, fmt: int) -> str:
    d = date.fromordinal(ordinal)
    if fmt == 0:
        return d.isoformat()
    if fmt == 1:
        return f"{d.month:02d}/{d.day:02d}/{d.year:04d}"
    if fmt == 2:
        return f"{d.year:04d}/{d.month:02d}/{d.day:02d}"
    if fmt == 3:
        return f"{d.day:02d}-{_MON[d.month - 1]}-{d.year:04d}"
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year:04d}"


def _fmt_ts(ts: int, fmt: int) -> str:
    t = _EPOCH + timedelta(seconds=int(ts))
    if fmt == 0:
        return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def _epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days * 86400


def _address(num: int, street: int, suffix: int, unit: int, unit_n: int, unit_l: int) -> str:
    a = f"{num} {_STREETS[street]} {_STREET_SUFFIXES[suffix]}"
    if unit >= 0:
        a += ", " + _UNITS[unit].format(n=unit_n, l="ABCDEF"[unit_l])
    return a


def _region_variant(region: str, pick: int) -> str:
    swapped = region.replace("-", "\0").replace(" ", "-").replace("\0", " ")
    variants = [region.lower(), " " + region.upper(), region + " ", region.upper()]
    if swapped != region:
        variants += [swapped, swapped]
    return variants[pick % len(variants)]


def _sanitize(value: str) -> str:
    return value.replace('"', "").replace(",", "").replace("\n", " ").replace("\r", " ")


def _broken_csv_line(fields: Sequence[str], kind: int, pyr: random.Random) -> str:
    """kind 1: wrong field count (no quote at all); kind 2: one unclosed quote in a non-last field."""
    f = [_sanitize(v) for v in fields]
    if kind == 1:
        if pyr.random() < 0.5:
            del f[pyr.randrange(1, len(f))]
        else:
            k = pyr.randrange(len(f))
            f.insert(k, f[k])
        return ",".join(f)
    candidates = [i for i in range(len(f) - 1) if f[i]]
    k = pyr.choice(candidates)
    f[k] = '"' + f[k]
    return ",".join(f)


def _broken_json_line(header: Sequence[str], fields: Sequence[str], pyr: random.Random) -> str:
    text = json.dumps(dict(zip(header, fields, strict=True)), ensure_ascii=False)
    return text[: pyr.randrange(max(1, len(text) // 3), len(text) - 1)]


# --------------------------------------------------------------------------- state
@dataclass
class _Customers:
    """Source-system truth about every customer created so far (index = position)."""

    no: list[int] = field(default_factory=list)
    first: list[str] = field(default_factory=list)
    last: list[str] = field(default_factory=list)
    email: list[str] = field(default_factory=list)
    phone: list[str] = field(default_factory=list)  # 10 digits
    phone_style: list[int] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    city: list[str] = field(default_factory=list)
    state: list[int] = field(default_factory=list)  # index into _STATES
    region: list[int] = field(default_factory=list)
    signup: list[int] = field(default_factory=list)  # date ordinal
    signup_fmt: list[int] = field(default_factory=list)
    updated_ts: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    referenceable: list[bool] = field(default_factory=list)  # sales may reference it
    known: list[bool] = field(default_factory=list)  # its id is in some loadable row
    next_no: int = 1

    def __len__(self) -> int:
        return len(self.no)

    def cid(self, i: int) -> str:
        return f"C{self.no[i]:08d}"

    def row(self, i: int, ts: int, ts_fmt: int, region_text: str | None = None) -> list[str]:
        return [
            self.cid(i),
            self.first[i],
            self.last[i],
            self.email[i],
            _fmt_phone(self.phone[i], self.phone_style[i]),
            self.address[i],
            self.city[i],
            _STATES[self.state[i]][0],
            region_text if region_text is not None else REGIONS[self.region[i]],
            _fmt_date(self.signup[i], self.signup_fmt[i]),
            _fmt_ts(ts, ts_fmt),
        ]


@dataclass
class _Products:
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    updated_ts: list[int] = field(default_factory=list)
    popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def row(self, j: int, ts_fmt: int) -> list[str]:
        return [
            self.ids[j],
            self.names[j],
            self.category[j],
            f"{self.cost[j]:.2f}",
            f"{self.price[j]:.2f}",
            _fmt_ts(self.updated_ts[j], ts_fmt),
        ]


@dataclass
class _FileData:
    """One file's records in file order plus what was injected into each."""

    header: tuple[str, ...]
    cols: list[list[str]]
    broken: np.ndarray  # int8: 0 loadable, 1 wrong_field_count, 2 unbalanced_quote
    broken_text: dict[int, tuple[str, str]]  # position -> (csv line, jsonl line)
    defect: np.ndarray  # int16: 0 clean, k = defect_kinds[k-1]
    defect_kinds: tuple[str, ...]
    multiline: np.ndarray  # bool
    region_variant: np.ndarray  # bool
    free_item: np.ndarray  # bool
    date_codes: dict[str, tuple[np.ndarray, tuple[str, ...]]]  # column -> (int8 code, format names)


def _rows_to_filedata(header, records, defect_kinds, date_cols) -> _FileData:
    """records: list of (fields, defect, broken, broken_text|None, region_variant, free, date codes tuple)."""
    n = len(records)
    cols = [list(c) for c in zip(*(r[0] for r in records), strict=True)] if n else [[] for _ in header]
    broken = np.array([r[2] for r in records], dtype=np.int8)
    defect = np.array([r[1] for r in records], dtype=np.int16)
    addr = header.index("address") if "address" in header else None
    multiline = np.array(
        [addr is not None and b == 0 and "\n" in r[0][addr] for r, b in zip(records, broken, strict=True)],
        dtype=bool,
    )
    codes = {}
    for k, (col, names) in enumerate(date_cols):
        codes[col] = (np.array([r[6][k] for r in records], dtype=np.int8), names)
    return _FileData(
        header=tuple(header),
        cols=cols,
        broken=broken,
        broken_text={i: r[3] for i, r in enumerate(records) if r[2]},
        defect=defect,
        defect_kinds=defect_kinds,
        multiline=multiline.reshape(n),
        region_variant=np.array([bool(r[4]) for r in records], dtype=bool).reshape(n),
        free_item=np.array([bool(r[5]) for r in records], dtype=bool).reshape(n),
        date_codes=codes,
    )


def _order_with_extras(rng: np.random.Generator, n_base: int, extra_after: Sequence[float]) -> np.ndarray:
    """File order for n_base base records followed by extras, each extra placed after position extra_after[i]."""
    lo = np.asarray(extra_after, dtype=float)
    keys = np.concatenate([np.arange(n_base, dtype=float), lo + 0.5 + rng.random(lo.size) * (n_base - 0.5 - lo)])
    return np.argsort(keys, kind="stable")


def _keep_quote_lines_off_multiline(
    order: list[int], is_uq: Callable[[int], bool], is_ml: Callable[[int], bool]
) -> None:
    """Never leave an unbalanced_quote line immediately before a multi-line record (swap it past)."""
    changed = True
    while changed:
        changed = False
        for p in range(len(order) - 1):
            if is_uq(order[p]) and is_ml(order[p + 1]):
                order[p], order[p + 1] = order[p + 1], order[p]
                changed = True


# --------------------------------------------------------------------------- customers
def _create_customers(
    rng: np.random.Generator, st: _Customers, regions: np.ndarray, signup: np.ndarray, updated_ts: np.ndarray
) -> range:
    n = len(regions)
    first_index = len(st)
    state_idx = np.zeros(n, dtype=np.int64)
    for r in range(_N_REGIONS):
        m = np.flatnonzero(regions == r)
        if m.size:
            sidx, sp = _REGION_STATES[r]
            state_idx[m] = rng.choice(sidx, size=m.size, p=sp)
    fi = rng.integers(0, len(FIRST_NAMES), n)
    li = rng.integers(0, len(LAST_NAMES), n)
    epat = rng.integers(0, 7, n)
    edom = rng.choice(len(EMAIL_DOMAINS), size=n, p=_EMAIL_DOMAIN_P)
    enum = rng.integers(1, 100, n)
    city_r = rng.integers(0, 1 << 30, n)
    area_r = rng.integers(0, 1 << 30, n)
    exch = rng.integers(200, 1000, n)
    line = rng.integers(0, 10000, n)
    pstyle = rng.choice(len(_PHONE_P), size=n, p=_PHONE_P)
    num = np.exp(rng.random(n) * math.log(9999)).astype(np.int64) + 1
    street = rng.integers(0, len(_STREETS), n)
    suffix = rng.integers(0, len(_STREET_SUFFIXES), n)
    unit = np.where(rng.random(n) < ADDRESS_WITH_UNIT_RATE, rng.integers(0, len(_UNITS), n), -1)
    unit_n = rng.integers(1, 40, n)
    unit_l = rng.integers(0, 6, n)
    sfmt = rng.choice(len(_DATE_P), size=n, p=_DATE_P)
    weight = rng.gamma(0.9, 1 / 0.9, n)
    for j in range(n):
        s = int(state_idx[j])
        _, _, _, cities, areas = _STATES[s]
        first, last = FIRST_NAMES[fi[j]], LAST_NAMES[li[j]]
        st.no.append(st.next_no)
        st.next_no += 1
        st.first.append(first)
        st.last.append(last)
        st.email.append(_email(first, last, int(epat[j]), EMAIL_DOMAINS[edom[j]], int(enum[j])))
        st.phone.append(f"{areas[area_r[j] % len(areas)]}{exch[j]:03d}{line[j]:04d}")
        st.phone_style.append(int(pstyle[j]))
        st.address.append(
            _address(int(num[j]), int(street[j]), int(suffix[j]), int(unit[j]), int(unit_n[j]), int(unit_l[j]))
        )
        st.city.append(cities[city_r[j] % len(cities)])
        st.state.append(s)
        st.region.append(int(regions[j]))
        st.signup.append(int(signup[j]))
        st.signup_fmt.append(int(sfmt[j]))
        st.updated_ts.append(int(updated_ts[j]))
        st.weight.append(float(weight[j]))
        st.referenceable.append(False)
        st.known.append(False)
    return range(first_index, first_index + n)


def _new_address(pyr: random.Random) -> str:
    unit = pyr.randrange(len(_UNITS)) if pyr.random() < ADDRESS_WITH_UNIT_RATE else -1
    return _address(
        int(math.exp(pyr.random() * math.log(9999))) + 1,
        pyr.randrange(len(_STREETS)),
        pyr.randrange(len(_STREET_SUFFIXES)),
        unit,
        pyr.randrange(1, 40),
        pyr.randrange(6),
    )


def _change_customer(st: _Customers, i: int, pyr: random.Random) -> str:
    """Apply one real-world change to customer i (at least one attribute differs afterwards)."""
    what = pyr.choices(
        ("email", "phone", "address", "city", "move", "last_name"),
        weights=(0.30, 0.25, 0.25, 0.12, 0.05, 0.03),
    )[0]
    old = (st.email[i], st.phone[i], st.address[i], st.city[i], st.state[i], st.last[i])
    s = _STATES[st.state[i]]
    for _ in range(20):
        if what == "email":
            st.email[i] = _email(
                st.first[i],
                st.last[i],
                pyr.randrange(7),
                pyr.choices(EMAIL_DOMAINS, weights=list(_EMAIL_DOMAIN_P))[0],
                pyr.randrange(1, 100),
            )
        elif what == "phone":
            st.phone[i] = f"{pyr.choice(s[4])}{pyr.randrange(200, 1000):03d}{pyr.randrange(10000):04d}"
            if pyr.random() < 0.3:
                st.phone_style[i] = pyr.choices(range(len(_PHONE_P)), weights=list(_PHONE_P))[0]
        elif what == "address":
            st.address[i] = _new_address(pyr)
        elif what == "city":
            st.city[i] = pyr.choice(s[3])
            st.address[i] = _new_address(pyr)
        elif what == "move":
            ns = pyr.choices(range(len(_STATES)), weights=list(_STATE_P))[0]
            st.state[i] = ns
            st.region[i] = int(_STATE_REGION[ns])
            st.city[i] = pyr.choice(_STATES[ns][3])
            st.address[i] = _new_address(pyr)
        else:
            st.last[i] = pyr.choice(LAST_NAMES)
            st.email[i] = _email(
                st.first[i],
                st.last[i],
                pyr.randrange(7),
                pyr.choices(EMAIL_DOMAINS, weights=list(_EMAIL_DOMAIN_P))[0],
                pyr.randrange(1, 100),
            )
        if (st.email[i], st.phone[i], st.address[i], st.city[i], st.state[i], st.last[i]) != old:
            return what
    st.address[i] = _new_address(pyr) + ", Apt 99"  # pragma: no cover - practically unreachable
    return what


def _mess_name(name: str, pyr: random.Random) -> str:
    options = ["lead", "trail", "both", "upper", "lower"] + (["double"] * 3 if " " in name else [])
    how = pyr.choice(options)
    if how == "lead":
        return " " + name
    if how == "trail":
        return name + " "
    if how == "both":
        return "  " + name + " "
    if how == "upper":
        return name.upper()
    if how == "lower":
        return name.lower()
    return name.replace(" ", "  ", 1)


def _malformed_email(email: str, pyr: random.Random) -> str:
    local, _, domain = email.partition("@")
    how = pyr.randrange(4)
    if how == 0:
        return local + domain
    if how == 1:
        return f"{local}@@{domain}"
    if how == 2:
        k = pyr.randrange(1, len(local)) if len(local) > 1 else 1
        return f"{local[:k]} {local[k:]}@{domain}"
    return f"{local}@"


def _invalid_phone(digits: str, pyr: random.Random) -> str:
    a, e, n = digits[:3], digits[3:6], digits[6:]
    return pyr.choice(
        (
            f"{e}-{n}",
            f"({a}) {e}-{n[:2]}",
            f"{a}{e}{n[:1]}",
            f"{a}-{e}-CALL",
            f"{a}-55X-{n}",
            "ask at desk",
            "000-000-0000",
            "(000) 000-0000",
            "0000000000",
        )
    )


_C_HEADER = CRM_CUSTOMERS.columns
_C_DATE_COLS = (("signup_date", _DATE_FORMATS + (UNPARSEABLE,)), ("updated_at", _TS_FORMATS))
_C_UNPARSEABLE = len(_DATE_FORMATS)


def _customer_records(
    rng: np.random.Generator,
    pyr: random.Random,
    st: _Customers,
    rows: list[tuple[int, int]],
    n_updates_dup: int,
    kind_counts: list[int],
    broken_counts: list[int],
    history_end_ts: int | None,
    new_rows: set[int],
) -> _FileData:
    """Build one customers file from base rows [(customer index, updated_ts)] in file order.

    History (history_end_ts given): extra ``customer_update`` rows follow their originals.
    """
    n = len(rows)
    eligible = np.array([j for j in range(n) if "\n" not in st.address[rows[j][0]]], dtype=np.int64)
    # in-place defects (codes 1..5 = CUSTOMER_DEFECTS[0..4]) and broken kinds (1, 2) on disjoint rows
    picks = _take(rng, eligible, kind_counts + broken_counts, reserve=1 if n else 0)
    defect = np.zeros(n, dtype=np.int16)
    broken = np.zeros(n, dtype=np.int8)
    for k, sel in enumerate(picks[: len(kind_counts)]):
        defect[sel] = k + 1
    for k, sel in enumerate(picks[len(kind_counts) :]):
        broken[sel] = k + 1
    clean = np.flatnonzero((defect == 0) & (broken == 0))
    clean_single = np.array([j for j in clean if "\n" not in st.address[rows[j][0]]], dtype=np.int64)
    upd_src, dup_src = _take(
        rng, clean_single, [n_updates_dup, _stoch(rng, CUSTOMER_DEFECT_RATES["exact_duplicate"] * n)]
    )
    sources = set(upd_src.tolist()) | set(dup_src.tolist())
    rest = np.array([j for j in clean_single if j not in sources], dtype=np.int64)
    # multi-line addresses: history rows, and new customers in deltas (state-level: the address has 2 lines)
    ml_pool = (
        rest if history_end_ts is not None else np.array([j for j in rest if rows[j][0] in new_rows], dtype=np.int64)
    )
    (ml_rows,) = _take(rng, ml_pool, [_stoch(rng, MULTILINE_ADDRESS_RATE * n)])
    for j in ml_rows:
        i = rows[j][0]
        st.address[i] = st.address[i] + "\n" + pyr.choice(_SECOND_LINES)
    rv_pool = np.array([j for j in clean if j not in sources], dtype=np.int64)
    (rv_rows,) = _take(rng, rv_pool, [_stoch(rng, REGION_VARIANT_RATE * n)])
    rv_set = set(rv_rows.tolist())
    ts_fmt = rng.choice(len(_TS_P), size=n + len(upd_src), p=_TS_P)

    messy, missing = CUSTOMER_DEFECTS.index("messy_name") + 1, CUSTOMER_DEFECTS.index("missing_required") + 1
    records: list[tuple] = []
    for j, (i, ts) in enumerate(rows):
        d, b = int(defect[j]), int(broken[j])
        region_text = _region_variant(REGIONS[st.region[i]], pyr.randrange(6)) if j in rv_set else None
        fields = st.row(i, ts, int(ts_fmt[j]), region_text)
        sfmt = st.signup_fmt[i]
        blank_id = False
        if d:
            kind = CUSTOMER_DEFECTS[d - 1]
            if kind == "malformed_email":
                fields[3] = _malformed_email(fields[3], pyr)
            elif kind == "invalid_phone":
                fields[4] = _invalid_phone(st.phone[i], pyr)
            elif kind == "messy_name":
                k = pyr.choice((1, 2))
                fields[k] = _mess_name(fields[k], pyr)
            elif kind == "missing_required":
                blank_id = pyr.random() < 0.5
                fields[0 if blank_id else 3] = ""
            elif kind == "unparseable_date":
                fields[9] = pyr.choice(_BAD_DATES)
                sfmt = _C_UNPARSEABLE
        btext = None
        if b:
            btext = (_broken_csv_line(fields, b, pyr), _broken_json_line(_C_HEADER, fields, pyr))
        if i in new_rows or history_end_ts is not None:
            st.referenceable[i] = b == 0 and d in (0, messy)
            st.known[i] = b == 0 and not blank_id
        records.append((fields, d, b, btext, j in rv_set, False, (sfmt, int(ts_fmt[j]))))
    # rows with an empty customer_id must stay distinguishable from each other (no accidental duplicates)
    seen: set[tuple] = set()
    for j, rec in enumerate(records):
        if rec[1] == missing and rec[0][0] == "":
            key = tuple(rec[0])
            if key in seen:  # pragma: no cover - astronomically unlikely
                rec[0][0] = st.cid(rows[j][0])
                rec[0][3] = ""
                st.known[rows[j][0]] = True
            seen.add(tuple(rec[0]))

    extras_after: list[int] = []
    extra_records: list[tuple] = []
    upd_code = CUSTOMER_DEFECTS.index("customer_update") + 1
    for m, j in enumerate(upd_src):  # history only: a later row for the same customer
        i, ts0 = rows[j]
        _change_customer(st, i, pyr)
        ts = ts0 + 1 + int(rng.integers(0, max(1, history_end_ts - ts0)))
        st.updated_ts[i] = ts
        f = int(ts_fmt[n + m])
        extras_after.append(int(j))
        extra_records.append((st.row(i, ts, f), upd_code, 0, None, False, False, (st.signup_fmt[i], f)))
    dup_code = CUSTOMER_DEFECTS.index("exact_duplicate") + 1
    for j in dup_src:
        src = records[j]
        extras_after.append(int(j))
        extra_records.append((list(src[0]), dup_code, 0, None, src[4], False, src[6]))
    order = _order_with_extras(rng, n, extras_after).tolist()
    allrec = records + extra_records
    _keep_quote_lines_off_multiline(
        order, lambda r: allrec[r][2] == 2, lambda r: allrec[r][2] == 0 and "\n" in allrec[r][0][5]
    )
    return _rows_to_filedata(_C_HEADER, [allrec[r] for r in order], CUSTOMER_DEFECTS, _C_DATE_COLS)


def _customer_kind_counts(rng: np.random.Generator, n: int, history: bool) -> tuple[list[int], list[int]]:
    kinds = [_stoch(rng, CUSTOMER_DEFECT_RATES[k] * n) for k in CUSTOMER_DEFECTS[:5]]
    broken = [_stoch(rng, BROKEN_LINE_RATES[k] * n) for k in CSV_BROKEN_KINDS]
    if history and n >= MIN_ROWS_FOR_GUARANTEED_BROKEN:
        broken = [max(1, b) for b in broken]
    return kinds, broken


def _history_customers(rng, pyr, st: _Customers, n: int, start: date) -> _FileData:
    start_ord = start.toordinal()
    start_ts = _epoch_day(start)
    end_ts = start_ts + 86399
    # region sizes by quota (largest remainder), shuffled
    raw = _REGION_SHARE_P * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    regions = rng.permutation(np.repeat(np.arange(_N_REGIONS), counts))
    # signups over the 4 years ending on start: 35% before the sales window, the rest growing towards today
    u = rng.random(n)
    pre = rng.random(n) < 0.35
    off = np.where(
        pre,
        -(2 * HISTORY_DAYS - 1) + np.floor(u * HISTORY_DAYS),
        -(HISTORY_DAYS - 1) + np.floor(HISTORY_DAYS * np.sqrt(u)),
    )
    off = np.minimum(off, 0).astype(np.int64)
    signup_ts = start_ts + off * 86400 + rng.integers(7 * 3600, 22 * 3600, n)
    later = rng.random(n) < 0.4
    upd = np.where(later, signup_ts + rng.random(n) * np.maximum(0, end_ts - signup_ts), signup_ts)
    upd = np.minimum(upd.astype(np.int64), end_ts - 3600)
    idx = _create_customers(rng, st, regions, start_ord + off, upd)
    kinds, broken = _customer_kind_counts(rng, n, history=True)
    n_upd = _stoch(rng, CUSTOMER_DEFECT_RATES["customer_update"] * n)
    fd = _customer_records(rng, pyr, st, [(i, st.updated_ts[i]) for i in idx], n_upd, kinds, broken, end_ts, set())
    # a sales line needs a customer who had signed up by then: make sure one exists on the window's first day
    window_first = start_ord - (HISTORY_DAYS - 1)
    refs = [i for i in idx if st.referenceable[i]]
    if refs and min(st.signup[i] for i in refs) > window_first:  # pragma: no cover - only for tiny runs
        i0 = min(refs, key=lambda i: st.signup[i])
        st.signup[i0] = window_first
        _patch_signup(fd, st, i0)
    return fd


def _patch_signup(fd: _FileData, st: _Customers, i: int) -> None:
    cid = st.cid(i)
    ids, signups = fd.cols[0], fd.cols[9]
    codes = fd.date_codes["signup_date"][0]
    for p, v in enumerate(ids):
        if v == cid and fd.broken[p] == 0 and codes[p] != _C_UNPARSEABLE:
            signups[p] = _fmt_date(st.signup[i], int(codes[p]))


def _delta_customers(rng, pyr, st: _Customers, n_updates: int, n_new: int, day: date) -> tuple[_FileData, int, range]:
    day_ts = _epoch_day(day)
    known = np.flatnonzero(np.array(st.known, dtype=bool))
    (upd_idx,) = _take(rng, known, [n_updates])
    ts_upd = day_ts + rng.integers(0, 86400, upd_idx.size)
    regions = rng.choice(_N_REGIONS, size=n_new, p=_REGION_SHARE_P)
    ts_new = day_ts + rng.integers(6 * 3600, 23 * 3600, n_new)
    new_idx = _create_customers(rng, st, regions, np.full(n_new, day.toordinal()), ts_new)
    for i, ts in zip(upd_idx.tolist(), ts_upd.tolist(), strict=True):
        _change_customer(st, i, pyr)
        st.updated_ts[i] = int(ts)
    rows = [(int(i), int(t)) for i, t in zip(upd_idx, ts_upd, strict=True)] + [(i, st.updated_ts[i]) for i in new_idx]
    rows.sort(key=lambda r: (r[1], r[0]))
    kinds, broken = _customer_kind_counts(rng, len(rows), history=False)
    fd = _customer_records(rng, pyr, st, rows, 0, kinds, broken, None, set(new_idx))
    return fd, int(upd_idx.size), new_idx


# --------------------------------------------------------------------------- products
_P_HEADER = ERP_PRODUCTS.columns
_P_DATE_COLS = (("updated_at", _TS_FORMATS),)


def _history_products(rng, pyr, pr: _Products, n: int, start: date) -> _FileData:
    start_ts = _epoch_day(start)
    cats = rng.permutation(np.arange(n) % len(_CATEGORIES))
    names: set[str] = set()
    for j in range(n):
        cat, lo, hi, nouns = _CATEGORIES[int(cats[j])]
        for attempt in range(1000):
            name = f"{pyr.choice(_BRANDS)} {pyr.choice(nouns)}"
            if attempt > 50:
                name += f" Mk {attempt - 49}"
            if name not in names:
                break
        names.add(name)
        x = math.exp(math.log(lo) + pyr.random() * (math.log(hi) - math.log(lo)))
        price = math.floor(x) + (0.99 if pyr.random() < 0.8 else 0.49)
        cost = round(price * pyr.uniform(0.42, 0.78), 2)
        pr.ids.append(f"PRD-{j + 1:05d}")
        pr.names.append(name)
        pr.category.append(cat)
        pr.cost.append(min(cost, round(price - 0.01, 2)))
        pr.price.append(round(price, 2))
        pr.updated_ts.append(start_ts - int(rng.integers(0, HISTORY_DAYS * 86400)))
    pr.popularity = rng.lognormal(0.0, 0.7, n)
    fmts = rng.choice(len(_TS_P), size=n + 2, p=_TS_P)
    records = [(pr.row(j, int(fmts[j])), 0, 0, None, False, False, (int(fmts[j]),)) for j in range(n)]
    # missing_required: an extra product with an empty product_id, anywhere in the file
    cat, lo, hi, nouns = _CATEGORIES[pyr.randrange(len(_CATEGORIES))]
    price = round(math.floor(math.exp(math.log(lo) + pyr.random() * (math.log(hi) - math.log(lo)))) + 0.99, 2)
    missing_row = [
        "",
        f"{pyr.choice(_BRANDS)} {pyr.choice(nouns)} (unlisted)",
        cat,
        f"{round(price * 0.6, 2):.2f}",
        f"{price:.2f}",
        _fmt_ts(start_ts - int(rng.integers(0, HISTORY_DAYS * 86400)), int(fmts[n])),
    ]
    extras_after = [-1.0]
    extra = [(missing_row, PRODUCT_DEFECTS.index("missing_required") + 1, 0, None, False, False, (int(fmts[n]),))]
    # exact_duplicate: a byte-identical copy of a product row, later in the file
    src = int(rng.integers(0, n))
    extras_after.append(src)
    extra.append(
        (
            list(records[src][0]),
            PRODUCT_DEFECTS.index("exact_duplicate") + 1,
            0,
            None,
            False,
            False,
            records[src][6],
        )
    )
    order = _order_with_extras(rng, n, extras_after)
    allrec = records + extra
    return _rows_to_filedata(_P_HEADER, [allrec[r] for r in order], PRODUCT_DEFECTS, _P_DATE_COLS)


def _delta_products(rng, pyr, pr: _Products, day: date) -> _FileData:
    day_ts = _epoch_day(day)
    n = len(pr.ids)
    changed = sorted(rng.choice(n, size=min(DELTA_PRICE_CHANGES, n), replace=False).tolist())
    records = []
    for j in changed:
        factor = pyr.choice((-1, 1)) * pyr.uniform(0.03, 0.15) + 1
        price = math.floor(pr.price[j] * factor) + 0.99
        if price <= pr.cost[j] or abs(price - pr.price[j]) < 0.005:
            price = math.floor(max(pr.cost[j] * 1.15, pr.price[j] * 1.05)) + 0.99
        pr.price[j] = round(price, 2)
        pr.updated_ts[j] = day_ts + int(rng.integers(6 * 3600, 20 * 3600))
        f = int(rng.choice(len(_TS_P), p=_TS_P))
        records.append((pr.row(j, f), 0, 0, None, False, False, (f,)))
    return _rows_to_filedata(_P_HEADER, records, PRODUCT_DEFECTS, _P_DATE_COLS)


# --------------------------------------------------------------------------- sales
_S_HEADER = ERP_SALES.columns
_S_DATE_NAMES = _DATE_FORMATS + (UNPARSEABLE,)


def _history_days(rng: np.random.Generator, n: int, start: date) -> np.ndarray:
    """Order dates (ordinals, sorted) over the HISTORY_DAYS ending on start: trend, seasons, weekdays."""
    first = start.toordinal() - (HISTORY_DAYS - 1)
    ords = np.arange(first, start.toordinal() + 1)
    days = [date.fromordinal(int(o)) for o in ords]
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    wd = np.array([d.weekday() for d in days])
    t = np.arange(HISTORY_DAYS) / max(1, HISTORY_DAYS - 1)
    trend = 0.7 + 0.6 * t
    season = (
        1
        + 0.10 * np.cos(2 * np.pi * (doy - 190) / 365.25)
        + 0.45 * np.exp(-0.5 * ((doy - 350) / 12) ** 2)
        + 0.35 * np.exp(-0.5 * ((doy - 332) / 4) ** 2)
    )
    weekday = np.array(WEEKDAY_FACTORS)[wd]
    w = trend * season * weekday
    return np.sort(ords[rng.choice(HISTORY_DAYS, size=n, p=w / w.sum())])


def _sales(
    rng,
    pyr,
    n: int,
    day_ords: np.ndarray,
    st: _Customers,
    pr: _Products,
    first_order_no: int,
    history: bool,
    first_buyers: Sequence[int] = (),
) -> _FileData:
    """Sales lines on the given (sorted) dates; ``first_buyers`` (a day's new customers) get a line each."""
    P = len(pr.ids)
    # customers: weighted among referenceable customers who had signed up by the order date
    signup = np.array(st.signup, dtype=np.int64)
    pool = np.flatnonzero(np.array(st.referenceable, dtype=bool))
    if pool.size == 0:
        raise RuntimeError("no valid customer to reference")  # pragma: no cover
    pool = pool[np.argsort(signup[pool], kind="stable")]
    cumw = np.cumsum(np.array(st.weight)[pool])
    K = np.maximum(np.searchsorted(signup[pool], day_ords, side="right"), 1)
    pos = np.minimum(np.searchsorted(cumw, rng.random(n) * cumw[K - 1], side="right"), K - 1)
    cust = pool[pos]
    buyers = np.array([i for i in first_buyers if st.referenceable[i]], dtype=np.int64)
    buyers = buyers[rng.random(buyers.size) < NEW_CUSTOMER_BUYS_RATE][: n // 2]
    if buyers.size:
        cust[np.sort(rng.choice(n, size=buyers.size, replace=False))] = buyers
    reg = np.array(st.region, dtype=np.int64)[cust]
    # products and quantities: richer regions buy pricier items and more of them
    price = np.array(pr.price)
    tilt = np.log(price / np.exp(np.log(price).mean()))
    pidx = np.zeros(n, dtype=np.int64)
    qty = np.zeros(n, dtype=np.int64)
    for r in range(_N_REGIONS):
        m = np.flatnonzero(reg == r)
        if not m.size:
            continue
        beta = 1.2 * math.log(_REGION_SPEND_V[r])
        pp = pr.popularity * np.exp(beta * tilt)
        qp = _QTY_BASE_P * _REGION_SPEND_V[r] ** (0.35 * (_QTY_VALUES - 1))
        pidx[m] = rng.choice(P, size=m.size, p=pp / pp.sum())
        qty[m] = rng.choice(_QTY_VALUES, size=m.size, p=qp / qp.sum())
    disc = rng.choice(len(_DISCOUNTS), size=n, p=_DISCOUNT_P)
    dfmt = rng.choice(len(_DATE_P), size=n, p=_DATE_P).astype(np.int8)

    # defects (codes 1..8 = SALES_DEFECTS[0..7]) and broken kinds on disjoint rows
    counts = [_stoch(rng, SALES_DEFECT_RATES[k] * n) for k in SALES_DEFECTS[:-1]]
    bcounts = [_stoch(rng, BROKEN_LINE_RATES[k] * n) for k in CSV_BROKEN_KINDS]
    if history and n >= MIN_ROWS_FOR_GUARANTEED_BROKEN:
        bcounts = [max(1, b) for b in bcounts]
    picks = _take(rng, np.arange(n), counts + bcounts, reserve=1)
    defect = np.zeros(n, dtype=np.int16)
    broken = np.zeros(n, dtype=np.int8)
    for k, sel in enumerate(picks[: len(counts)]):
        defect[sel] = k + 1
    for k, sel in enumerate(picks[len(counts) :]):
        broken[sel] = k + 1
    clean = np.flatnonzero((defect == 0) & (broken == 0))
    (dup_src,) = _take(rng, clean, [_stoch(rng, SALES_DEFECT_RATES["duplicate_order_line"] * n)])
    rest = np.setdiff1d(clean, dup_src)
    (free,) = _take(rng, rest, [_stoch(rng, FREE_ITEM_RATE * n)])

    # string columns by table look-ups
    oid = np.array([f"ORD-{k:010d}" for k in range(first_order_no, first_order_no + n)], dtype=object)
    cid_tab = np.array([f"C{x:08d}" for x in st.no], dtype=object)
    cid = cid_tab[cust]
    pid = np.array(pr.ids, dtype=object)[pidx]
    d0 = int(day_ords.min())
    span = int(day_ords.max()) - d0 + 1
    date_tab = np.array([[_fmt_date(d0 + k, f) for f in range(len(_DATE_FORMATS))] for k in range(span)], dtype=object)
    dates = date_tab[day_ords - d0, dfmt]
    qty_tab = np.array([str(q) for q in range(int(_QTY_VALUES.max()) + 1)], dtype=object)
    q = qty_tab[qty]
    price_tab = np.array([[f"{round(p * (1 - dd), 2):.2f}" for dd in _DISCOUNTS] for p in pr.price], dtype=object)
    up = price_tab[pidx, disc]
    up[free] = "0.00"

    def sel(kind: str) -> np.ndarray:
        return np.flatnonzero(defect == SALES_DEFECTS.index(kind) + 1)

    s = sel("unknown_customer")
    cid[s] = [f"C9{v:07d}" for v in rng.integers(0, 10**7, s.size)]
    s = sel("unknown_product")
    width = max(5, len(str(P + 10000)))
    pid[s] = [f"PRD-{v:0{width}d}" for v in rng.integers(P + 1000, P + 10000, s.size)]
    s = sel("zero_quantity")
    q[s] = "0"
    s = sel("negative_quantity")
    q[s] = ["-" + v for v in q[s]]
    s = sel("negative_price")
    up[s] = ["-" + v for v in up[s]]
    s = sel("unparseable_date")
    dates[s] = [pyr.choice(_BAD_DATES) for _ in range(s.size)]
    dfmt[s] = len(_DATE_FORMATS)
    for j in sel("unparseable_amount"):
        if pyr.random() < 0.5:
            q[j] = pyr.choice(_BAD_QUANTITIES)
        else:
            up[j] = pyr.choice(_BAD_PRICES + (f"{up[j]}.{pyr.randrange(10)}",))
    seen: set[tuple] = set()
    for j in sel("missing_required"):
        k = pyr.randrange(3)
        if k == 0:
            key = (cid[j], pid[j], dates[j], q[j], up[j])
            if key in seen:  # keep blank-order_id rows distinct from each other
                k = 1
            seen.add(key)
        (oid, cid, pid)[k][j] = ""

    cols = [oid, cid, pid, dates, q, up]
    btext = {}
    for j in np.flatnonzero(broken):
        btext[int(j)] = (_broken_csv_line([c[j] for c in cols], int(broken[j]), pyr), "")

    order = _order_with_extras(rng, n, dup_src)
    src_all = np.concatenate([np.arange(n), dup_src])[order]
    is_dup = np.concatenate([np.zeros(n, bool), np.ones(dup_src.size, bool)])[order]
    fdefect = defect[src_all]
    fdefect[is_dup] = SALES_DEFECTS.index("duplicate_order_line") + 1
    fbroken = broken[src_all]
    free_mask = np.zeros(n, dtype=bool)
    free_mask[free] = True
    bpos = np.flatnonzero(fbroken)
    return _FileData(
        header=_S_HEADER,
        cols=[c[src_all].tolist() for c in cols],
        broken=fbroken,
        broken_text={int(p): btext[int(src_all[p])] for p in bpos},
        defect=fdefect,
        defect_kinds=SALES_DEFECTS,
        multiline=np.zeros(src_all.size, dtype=bool),
        region_variant=np.zeros(src_all.size, dtype=bool),
        free_item=free_mask[src_all],
        date_codes={"order_date": (dfmt[src_all], _S_DATE_NAMES)},
    )


# --------------------------------------------------------------------------- writing
class _Sink:
    """Streams text to a file in UTF-8 while hashing it and counting physical lines."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "wb")
        self._h = hashlib.sha256()
        self.lines = 0
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\n")

    def flush(self) -> None:
        data = self.buf.getvalue().encode("utf-8")
        self.buf.seek(0)
        self.buf.truncate(0)
        self._h.update(data)
        self.lines += data.count(b"\n")
        self._f.write(data)

    def close(self) -> str:
        self.flush()
        self._f.close()
        return self._h.hexdigest()


def _write(path: Path, fd: _FileData, jsonl: bool) -> tuple[str, int]:
    sink = _Sink(path)
    n = fd.broken.size
    stops = sorted(fd.broken_text) + [n]
    if not jsonl:
        sink.writer.writerow(fd.header)
    start = 0
    for p in stops:
        for a in range(start, p, _CHUNK):
            b = min(p, a + _CHUNK)
            rows = zip(*(c[a:b] for c in fd.cols), strict=True)
            if jsonl:
                keys = fd.header
                sink.buf.write(
                    "".join(json.dumps(dict(zip(keys, r, strict=True)), ensure_ascii=False) + "\n" for r in rows)
                )
            else:
                sink.writer.writerows(rows)
            sink.flush()
        if p < n:
            sink.buf.write(fd.broken_text[p][1 if jsonl else 0] + "\n")
        start = p + 1
    sha = sink.close()
    return sha, sink.lines


def _file_manifest(fd: _FileData, sha: str, lines: int, jsonl: bool) -> dict:
    n = int(fd.broken.size)
    ok = fd.broken == 0
    if jsonl:
        broken_lines = {"invalid_json": int((~ok).sum())}
    else:
        broken_lines = {k: int((fd.broken == i + 1).sum()) for i, k in enumerate(CSV_BROKEN_KINDS)}
    dcount = np.bincount(fd.defect[ok], minlength=len(fd.defect_kinds) + 1)
    multiline = 0 if jsonl else int((fd.multiline & ok).sum())
    expected_lines = n + multiline + (0 if jsonl else 1)
    if lines != expected_lines:  # self-check: what was written is what was generated
        raise RuntimeError(f"physical line count {lines} != expected {expected_lines}")
    dates = {}
    for col, (codes, names) in fd.date_codes.items():
        c = np.bincount(codes[ok].astype(np.int64), minlength=len(names))
        dates[col] = {name: int(c[i]) for i, name in enumerate(names)}
    return {
        "sha256": sha,
        "physical_lines": lines,
        "records": n,
        "broken_lines": broken_lines,
        "loadable_records": int(ok.sum()),
        "clean_rows": int(dcount[0]),
        "defects": {k: int(dcount[i + 1]) for i, k in enumerate(fd.defect_kinds)},
        "multiline_records": multiline,
        "region_variants": int((fd.region_variant & ok).sum()),
        "free_items": int((fd.free_item & ok).sum()),
        "date_formats": dates,
    }


# --------------------------------------------------------------------------- anomalies
_DUPLICATE_LINE = SALES_DEFECTS.index("duplicate_order_line") + 1
_INVALID_PHONE = CUSTOMER_DEFECTS.index("invalid_phone") + 1


def parse_anomaly(spec: str, folder: int = 0) -> dict:
    """``kind`` or ``kind=detail``: missing_sales, prices_in_cents, region_silent[=<region>] (default: the
    region at the folder's index modulo 9), column_null[=phone|address|city] (default phone)."""
    kind, _, detail = spec.partition("=")
    kind, detail = kind.strip(), detail.strip()
    if kind not in ANOMALY_KINDS:
        raise ValueError(f"unknown anomaly {kind!r}; expected one of {', '.join(ANOMALY_KINDS)}")
    if kind == "region_silent":
        region = detail or REGIONS[folder % _N_REGIONS]
        if region not in REGIONS:
            raise ValueError(f"region_silent: {region!r} is not one of {', '.join(REGIONS)}")
        return {"kind": kind, "region": region}
    if kind == "column_null":
        column = detail or "phone"
        if column not in NULLABLE_CUSTOMER_COLUMNS:
            raise ValueError(
                f"column_null: {column!r} is not one of {', '.join(NULLABLE_CUSTOMER_COLUMNS)} "
                "(a required column would quarantine the whole file)"
            )
        return {"kind": kind, "source": "crm_customers", "column": column}
    if detail:
        raise ValueError(f"{kind} takes no detail, got {detail!r}")
    return {"kind": kind}


def _keep_records(fd: _FileData, keep: np.ndarray) -> _FileData:
    positions = np.flatnonzero(keep)
    renumber = {int(p): i for i, p in enumerate(positions)}
    return _FileData(
        header=fd.header,
        cols=[[column[p] for p in positions] for column in fd.cols],
        broken=fd.broken[positions],
        broken_text={renumber[p]: text for p, text in fd.broken_text.items() if p in renumber},
        defect=fd.defect[positions],
        defect_kinds=fd.defect_kinds,
        multiline=fd.multiline[positions],
        region_variant=fd.region_variant[positions],
        free_item=fd.free_item[positions],
        date_codes={column: (codes[positions], names) for column, (codes, names) in fd.date_codes.items()},
    )


def _in_cents(price: str) -> str:
    """ "12.34" -> "1234", "-19.99" -> "-1999", "0.00" -> "0"; text that is not a price stays as it is."""
    whole, dot, cents = price.partition(".")
    if not (dot and len(cents) == 2 and cents.isdigit() and whole.lstrip("-").isdigit()):
        return price
    return str(int(whole + cents))


def _inject(
    anomaly: dict, cust_fd: _FileData, sales_fd: _FileData, st: _Customers, rng: np.random.Generator
) -> tuple[_FileData, _FileData, dict]:
    """Apply one labelled anomaly to a delta's files; returns them and the manifest label."""
    label = dict(anomaly)
    kind = anomaly["kind"]
    if kind == "missing_sales":
        # Whole order ids go (a duplicated line with its original), so the manifest stays exact.
        ids = sales_fd.cols[0]
        groups = np.array([oid if oid else f"#{p}" for p, oid in enumerate(ids)], dtype=object)
        unique = np.unique(groups)
        gone = set(rng.choice(unique, size=round(MISSING_SALES_SHARE * unique.size), replace=False).tolist())
        keep = np.array([g not in gone for g in groups], dtype=bool)
        label.update(share=MISSING_SALES_SHARE, lines_removed=int((~keep).sum()))
        sales_fd = _keep_records(sales_fd, keep)
    elif kind == "prices_in_cents":
        sales_fd.cols[5] = [_in_cents(price) for price in sales_fd.cols[5]]
        label.update(factor=100)
    elif kind == "region_silent":
        region = _REGION_IDX[anomaly["region"]]

        def of_region(cid: str) -> bool:
            no = int(cid[1:]) if cid[:1] == "C" and cid[1:].isdigit() else 0
            return 1 <= no <= len(st) and st.region[no - 1] == region

        keep = np.array([not of_region(cid) for cid in sales_fd.cols[1]], dtype=bool)
        label.update(lines_removed=int((~keep).sum()))
        sales_fd = _keep_records(sales_fd, keep)
    else:  # column_null
        k = cust_fd.header.index(anomaly["column"])
        cust_fd.cols[k] = [""] * len(cust_fd.cols[k])
        if anomaly["column"] == "phone":  # an empty phone is not an invalid one
            cust_fd.defect[cust_fd.defect == _INVALID_PHONE] = 0
    return cust_fd, sales_fd, label


# --------------------------------------------------------------------------- public API
def generate(
    out_dir: Path,
    start_date: date,
    days: int = 1,
    customers: int = 10_000,
    orders: int = 10_000,
    products: int = 88,
    seed: int = 42,
    customers_format: str = "csv",
    progress: Callable[[str], None] | None = None,
    delta_orders: int | None = None,
    delta_weekday: bool = False,
    anomalies: Mapping[date, str] | None = None,
) -> list[dict]:
    """Write ``days`` extract folders under ``out_dir`` and return their manifests (see module doc).

    ``delta_orders``: sales lines per delta (default 1% of ``orders``). ``delta_weekday``: each
    delta's count is Poisson around that, times the weekday's factor (``WEEKDAY_FACTORS``).
    ``anomalies``: {delta date: spec} labelled anomalies (see ``parse_anomaly``), each written
    into its folder's manifest under "anomalies". Without these three the output is unchanged.
    """
    if customers_format not in CRM_CUSTOMERS.formats:
        raise ValueError(f"customers_format must be one of {CRM_CUSTOMERS.formats}, not {customers_format!r}")
    for name, v in (("days", days), ("customers", customers), ("orders", orders), ("products", products)):
        if int(v) < 1:
            raise ValueError(f"{name} must be at least 1")
    if int(seed) < 0:
        raise ValueError("seed must be >= 0")
    if delta_orders is not None and int(delta_orders) < 1:
        raise ValueError("delta_orders must be at least 1")
    if isinstance(start_date, datetime):
        start_date = start_date.date()
    injected = {}
    for day, spec in (anomalies or {}).items():
        if not 1 <= (day - start_date).days < int(days):
            raise ValueError(
                f"anomaly date {day} is not a delta date of this run "
                f"({start_date + timedelta(days=1)} .. {start_date + timedelta(days=int(days) - 1)})"
            )
        injected[day] = parse_anomaly(spec, (day - start_date).days)
    out_dir = Path(out_dir)
    say = progress or (lambda msg: None)
    jsonl = customers_format == "jsonl"
    params = {
        "start_date": start_date.isoformat(),
        "days": int(days),
        "customers": int(customers),
        "orders": int(orders),
        "products": int(products),
        "seed": int(seed),
        "customers_format": customers_format,
    }
    # Recorded only when used, so that the default manifests stay as they were.
    if delta_orders is not None:
        params["delta_orders"] = int(delta_orders)
    if delta_weekday:
        params["delta_weekday"] = True
    st, pr = _Customers(), _Products()
    next_order = 1
    manifests = []
    for k in range(int(days)):
        day = start_date + timedelta(days=k)
        folder = out_dir / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        rng_c, rng_p, rng_s = (np.random.default_rng([int(seed), k, f]) for f in range(3))
        # sample data, not cryptography
        pyr_c, pyr_p, pyr_s = (random.Random(f"{seed}/{k}/{f}") for f in range(3))  # noqa: S311
        if k == 0:
            say(f"{day}: history: {customers} customers, {products} products, {orders} sales lines")
            prod_fd = _history_products(rng_p, pyr_p, pr, int(products), start_date)
            cust_fd = _history_customers(rng_c, pyr_c, st, int(customers), start_date)
            say(f"{day}: customers generated")
            n_sales = int(orders)
            sales_fd = _sales(
                rng_s,
                pyr_s,
                n_sales,
                _history_days(rng_s, n_sales, start_date),
                st,
                pr,
                next_order,
                history=True,
            )
            contents = {"customers": int(customers), "products": int(products), "sales_lines": n_sales}
        else:
            n_upd = max(1, round(DELTA_UPDATED_CUSTOMERS_FRACTION * customers))
            n_new = max(1, round(DELTA_NEW_CUSTOMERS_FRACTION * customers))
            n_sales = max(1, round(DELTA_NEW_SALES_FRACTION * orders)) if delta_orders is None else int(delta_orders)
            if delta_weekday:  # a stream of its own: the other draws stay those of the default output
                n_sales = max(
                    1, int(np.random.default_rng([int(seed), k, 3]).poisson(n_sales * WEEKDAY_FACTORS[day.weekday()]))
                )
            say(f"{day}: delta: {n_upd} customer updates, {n_new} new customers, {n_sales} sales lines")
            prod_fd = _delta_products(rng_p, pyr_p, pr, day)
            cust_fd, n_upd, new_idx = _delta_customers(rng_c, pyr_c, st, n_upd, n_new, day)
            sales_fd = _sales(
                rng_s,
                pyr_s,
                n_sales,
                np.full(n_sales, day.toordinal()),
                st,
                pr,
                next_order,
                history=False,
                first_buyers=new_idx,
            )
            contents = {
                "updated_customers": n_upd,
                "new_customers": n_new,
                "changed_products": int(prod_fd.broken.size),
                "new_sales_lines": n_sales,
            }
        labels = []
        if day in injected:
            cust_fd, sales_fd, label = _inject(
                injected[day], cust_fd, sales_fd, st, np.random.default_rng([int(seed), k, 4])
            )
            contents["new_sales_lines"] = int(sales_fd.broken.size - (sales_fd.defect == _DUPLICATE_LINE).sum())
            labels.append(label)
        next_order += n_sales
        say(f"{day}: sales generated, writing files")
        files = {}
        cust_name = f"{CRM_CUSTOMERS.file_stem}.{customers_format}"
        other = folder / f"{CRM_CUSTOMERS.file_stem}.{'csv' if jsonl else 'jsonl'}"
        if other.exists():  # a folder never holds both customer formats
            other.unlink()
        for name, fd, as_jsonl in (
            (cust_name, cust_fd, jsonl),
            (f"{ERP_PRODUCTS.file_stem}.csv", prod_fd, False),
            (f"{ERP_SALES.file_stem}.csv", sales_fd, False),
        ):
            sha, lines = _write(folder / name, fd, as_jsonl)
            files[name] = _file_manifest(fd, sha, lines, as_jsonl)
        manifest = {
            "date": day.isoformat(),
            "kind": "history" if k == 0 else "delta",
            "seed": int(seed),
            "parameters": params,
            "contents": contents,
            "files": files,
        }
        if labels:
            manifest["anomalies"] = labels
        (folder / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        manifests.append(manifest)
        say(f"{day}: done")
    return manifests
