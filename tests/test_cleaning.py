"""The silver cleaning functions (sql/schema/040_cleaning.sql) on a real PostgreSQL.

Each function runs over a table of (input, expected) pairs in one query. The
inputs come from three places: every style the generator writes (taken from
its own formatting helpers, so a new style there shows up here), a generated
extract whose manifest says exactly how many values are malformed, and hand
written edge cases. Expected values come from small reference implementations
in this file, written independently of the SQL.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.core.sources import REGIONS
from pipeline.sample import generate as gen

TEXT_FUNCTIONS = (
    "silver.clean_email({x})",
    "silver.is_valid_email({x})",
    "silver.clean_name({x})",
    "silver.phone_e164({x})",
    "silver.phone_e164({x}, '44', 10)",
    "silver.parse_date({x})",
    "silver.parse_date({x}, true)",
    "silver.parse_timestamp({x})",
    "silver.parse_timestamp({x}, 'America/New_York', true)",
    "silver.parse_integer({x})",
    "silver.parse_money({x})",
    "silver.parse_money({x}, true)",
    "silver.vocabulary_key({x})",
)
# The default region vocabulary (sources.toml), looked up as the customers model does.
REGION_LOOKUP = (
    "(select canonical from unnest(array[" + ", ".join(f"'{r}'" for r in REGIONS) + "]) as canonical "
    "where silver.vocabulary_key(canonical) = silver.vocabulary_key({x}))"
)
PUBLIC_FUNCTIONS = (
    "clean_email",
    "is_valid_email",
    "clean_name",
    "phone_e164",
    "parse_date",
    "parse_timestamp",
    "parse_integer",
    "parse_money",
    "vocabulary_key",
)
CLEANING_SQL = Path(__file__).resolve().parent.parent / "sql" / "schema" / "040_cleaning.sql"
TEN_KB = "x" * 10_240
NASTY = [
    None,
    "",
    " ",
    "\t\r\n",
    "   \u00a0  ",
    "😀",
    "📞 415-555-0123",
    "2024-02-30",
    "99999999999999999999",
    "-99999999999999999999",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1e309",
    "0x1F",
    "1_000",
    TEN_KB,
    "9" * 10_240,
    "2024-01-01" + " " * 10_000,
    "a@" * 5_000,
    "'; drop table silver.quarantine; --",
    "Robert'); DROP TABLE students;--",
    "\\x00",
    "%s %(x)s {}",
]


def run(query, expression: str, inputs: list) -> list:
    """expression (with {x} for the input) over every input, in input order, in one query."""
    rows = query(
        f"select {expression.format(x='t.input')} from unnest(%s::text[]) with ordinality as t(input, n) order by t.n",
        (list(inputs),),
    )
    return [r[0] for r in rows]


def check(query, expression: str, cases: list[tuple]) -> None:
    got = run(query, expression, [raw for raw, _ in cases])
    wrong = [(raw, want, have) for (raw, want), have in zip(cases, got, strict=True) if have != want]
    assert wrong == [], f"{expression}: (input, expected, got)"


# --------------------------------------------------------------------------- references
def reference_e164(raw: str | None) -> str | None:
    """The phone rules with Python regular expressions, default calling code 1, 10 national digits."""
    if raw is None:
        return None
    s = raw.strip(" ")
    if not re.fullmatch(r"\+?[0-9 ().-]+", s):
        return None
    digits = re.sub(r"[^0-9]", "", s)
    if s.startswith("+"):
        e = digits
    elif s.startswith("00"):
        e = digits[2:]
    elif len(digits) == 10:
        e = "1" + digits
    elif len(digits) == 11 and digits.startswith("1"):
        e = digits
    else:
        return None
    if e.startswith("1"):
        n = e[1:]
        ok = len(n) == 10 and n[0] in "23456789" and n[3] in "23456789" and len(set(n)) > 1
    else:
        ok = 8 <= len(e) <= 15 and e[0] in "23456789"
    return "+" + e if ok else None


ISO_TIMESTAMP = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<clock>[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)"
    r"(?P<zone>[Zz]|[+-](?P<zone_hours>[0-9]{2})(:?(?P<zone_minutes>[0-9]{2}))?)?"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference_timestamp_parts(s: str) -> tuple[datetime, timedelta | None] | None:
    """(written wall-clock time, written UTC offset or None) of an ISO 8601 timestamp with a time, else None.

    The grammar is a Python regular expression; the value comes from datetime.fromisoformat, which
    also drops fractional digits past the sixth.
    """
    m = ISO_TIMESTAMP.fullmatch(s)
    if not m or int(m["zone_hours"] or 0) > 23 or int(m["zone_minutes"] or 0) > 59:
        return None
    offset = "+00:00" if m["zone"] in ("Z", "z") else m["zone"] or ""
    try:
        written = datetime.fromisoformat(f"{m['date']}T{m['clock']}{offset}")
    except ValueError:
        return None
    return written.replace(tzinfo=None), written.utcoffset()


def wall_clock_to_utc(wall: datetime, zone: str) -> datetime:
    """wall read in zone. A wall-clock time a DST change skips or repeats has two offsets (fold 0 and 1):
    PostgreSQL takes the one that gives the later instant (before a skip, after a repeat)."""
    offsets = {wall.replace(tzinfo=ZoneInfo(zone), fold=fold).utcoffset() for fold in (0, 1)}
    return (wall - min(offsets)).replace(tzinfo=UTC)


def reference_epoch(s: str) -> datetime | None:
    if not re.fullmatch(r"-?[0-9]{1,12}(\.[0-9]{1,9})?", s):
        return None
    seconds = Decimal(s)
    if not Decimal(-62_135_596_800) <= seconds < Decimal(253_402_300_800):  # the years 1 to 9999
        return None
    return EPOCH + timedelta(microseconds=int((seconds * 10**6).to_integral_value(rounding=ROUND_DOWN)))


DATE_LAYOUTS = (  # (pattern, strptime format for months first, for days first or None when not read)
    (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "%Y-%m-%d", "%Y-%m-%d"),
    (r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}", "%m/%d/%Y", "%d/%m/%Y"),
    (r"[0-9]{4}/[0-9]{2}/[0-9]{2}", "%Y/%m/%d", "%Y/%m/%d"),
    (r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}", None, "%d.%m.%Y"),
    (r"[0-9]{8}", "%Y%m%d", "%Y%m%d"),
    (r"[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}", "%d-%b-%Y", "%d-%b-%Y"),
    (r"[A-Za-z]+ [0-9]{1,2}, [0-9]{4}", "%B %d, %Y", "%B %d, %Y"),
)


def reference_date(raw: str | None, day_first: bool = False) -> date | None:
    if raw is None:
        return None
    s = raw.strip(" \t\r\n")
    parts = reference_timestamp_parts(s)
    if parts is not None:
        return parts[0].date()  # the date as written, whatever the zone
    for pattern, months_first, days_first in DATE_LAYOUTS:
        fmt = days_first if day_first else months_first
        if fmt and re.fullmatch(pattern, s):
            try:
                # strptime's month names depend on case; the SQL accepts any case
                return datetime.strptime(s.title() if "b" in fmt or "B" in fmt else s, fmt).date()
            except ValueError:
                return None
    return None


def reference_timestamp(raw: str | None, zone: str = "UTC", epoch: bool = False) -> datetime | None:
    if raw is None:
        return None
    s = raw.strip(" \t\r\n")
    parts = reference_timestamp_parts(s)
    if parts is not None:
        wall, offset = parts
        return wall_clock_to_utc(wall, zone) if offset is None else (wall - offset).replace(tzinfo=UTC)
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", s):  # digits: seconds since 1970 when epoch, never a date
        return reference_epoch(s) if epoch else None
    d = reference_date(s)
    return wall_clock_to_utc(datetime(d.year, d.month, d.day), zone) if d else None


def reference_name(raw: str) -> str | None:
    collapsed = " ".join(raw.split())
    if collapsed == collapsed.upper() or collapsed == collapsed.lower():
        collapsed = collapsed.title()
    return collapsed or None


def region_key(name: str) -> str:
    return re.sub(r"[^a-z]+", " ", name.lower()).strip()


REFERENCE_REGIONS = {region_key(r): r for r in REGIONS}


def reference_region(raw: str | None) -> str | None:
    return None if raw is None else REFERENCE_REGIONS.get(region_key(raw))


EMAIL_RE = re.compile(r"[a-z0-9_%+-]+(\.[a-z0-9_%+-]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}")


def reference_email_valid(raw: str | None) -> bool | None:
    if raw is None or not raw.strip():
        return None
    email = raw.strip().lower()
    return bool(EMAIL_RE.fullmatch(email)) and len(email) <= 254


def reference_integer(raw: str | None) -> int | None:
    s = None if raw is None else raw.strip(" \t\r\n")
    if s is None or not re.fullmatch(r"[+-]?[0-9]{1,9}(\.0+)?", s):
        return None
    return int(Decimal(s))


CURRENCY_SYMBOLS = "$€£"
MONEY_SPACES = " \u00a0\u202f"


def reference_money(raw: str | None, decimal_comma: bool = False) -> Decimal | None:
    """Peels the amount apart step by step (the SQL uses one regular expression)."""
    s = None if raw is None else raw.strip(" \t\r\n")
    if not s or sum(s.count(c) for c in CURRENCY_SYMBOLS) > 1:
        return None
    sign = ""
    if s[0] in "+-":
        sign, s = s[0], s[1:]
    if s[:1] and s[0] in CURRENCY_SYMBOLS:  # a symbol before: maybe a space, maybe the sign after it
        s = s[1:]
        s = s[1:] if s[:1] and s[0] in MONEY_SPACES else s
        if s[:1] and s[0] in "+-":
            if sign:
                return None
            sign, s = s[0], s[1:]
    elif s[-1:] and s[-1] in CURRENCY_SYMBOLS:  # a symbol after: maybe a space before it
        s = s[:-1]
        s = s[:-1] if s[-1:] and s[-1] in MONEY_SPACES else s
    point, groups = (",", ". \u00a0\u202f") if decimal_comma else (".", ",")
    whole, _, fraction = s.partition(point)
    if _ and not re.fullmatch(r"[0-9]+", fraction) or fraction[2:].strip("0"):
        return None  # past the second decimal only zeros
    separators = {c for c in whole if c not in "0123456789"}
    if len(separators) > 1 or not separators <= set(groups):
        return None
    digits = re.split(r"[^0-9]", whole)
    if separators and (not 1 <= len(digits[0]) <= 3 or any(len(g) != 3 for g in digits[1:])):
        return None
    whole = "".join(digits)
    if not re.fullmatch(r"[0-9]{1,10}", whole):
        return None
    return Decimal(f"{sign}{whole}.{fraction or '0'}").quantize(Decimal("0.01"))


# --------------------------------------------------------------------------- what the generator writes
class PickOption:
    """Stands in for random.Random in a generator helper that only calls choice(): returns option k."""

    def __init__(self, k: int) -> None:
        self.k = k

    def choice(self, options):
        return options[self.k % len(options)]


def generator_dates() -> list[tuple[str, date]]:
    """Every day from 2023-01-01 to 2025-12-31 (leap day included) in every date format the generator writes."""
    days = [date(2023, 1, 1) + timedelta(days=k) for k in range((date(2025, 12, 31) - date(2023, 1, 1)).days + 1)]
    return [(gen._fmt_date(d.toordinal(), f), d) for d in days for f in range(len(gen.DATE_FORMAT_RATES))]


def generator_phones() -> list[tuple[str, str | None]]:
    cases = []
    for _state, _region, _pop, _cities, area_codes in gen._STATES:
        for area in area_codes:
            digits = f"{area}2010199"
            cases += [(gen._fmt_phone(digits, style), f"+1{digits}") for style in range(len(gen.PHONE_FORMAT_RATES))]
    invalid = {gen._invalid_phone("4155550123", random.Random(k)) for k in range(400)}
    assert len(invalid) == 9, "the generator's invalid phone styles changed; review this test"
    return cases + [(raw, None) for raw in sorted(invalid)]


# --------------------------------------------------------------------------- schema-level properties
def test_every_function_is_inlinable_sql_immutable_and_parallel_safe(query):
    defined = set(re.findall(r"create or replace function silver\.(\w+)", CLEANING_SQL.read_text()))
    assert set(PUBLIC_FUNCTIONS) <= defined
    rows = query(
        """
        select p.proname, l.lanname, p.provolatile, p.proparallel, p.prosecdef, p.proconfig is null
        from pg_proc as p
        inner join pg_namespace as n on n.oid = p.pronamespace
        inner join pg_language as l on l.oid = p.prolang
        where n.nspname = 'silver' and p.proname = any(%s)
        """,
        (sorted(defined),),
    )
    assert {r[0]: r[1:] for r in rows} == {name: ("sql", "i", "s", False, True) for name in defined}


def test_calls_are_inlined_into_the_query(query):
    query("create table cleaning_probe (value text)")
    expressions = ", ".join(f.format(x="value") for f in TEXT_FUNCTIONS)
    plan = "\n".join(r[0] for r in query(f"explain verbose select {expressions} from cleaning_probe"))
    assert "silver." not in plan


def test_case_mapping_collation_handles_non_ascii_letters(query):
    # silver.unicode_case: pg_c_utf8 on 17 and later, the C library's C.UTF-8 on 15 and 16 (chosen at bootstrap)
    rows = query(
        """
        select
            upper(x collate silver.unicode_case), lower(upper(x collate silver.unicode_case)),
            initcap(x collate silver.unicode_case)
        from unnest(array['é', 'ễ', 'ß', 'josé', 'nguyễn']) as x
        """
    )
    assert rows == [
        ("É", "é", "É"),
        ("Ễ", "ễ", "Ễ"),
        ("ß", "ß", "ß"),  # simple case mapping: no upper-case ß, so it stays as it is
        ("JOSÉ", "josé", "José"),
        ("NGUYỄN", "nguyễn", "Nguyễn"),
    ]


# --------------------------------------------------------------------------- email
def test_clean_email(query):
    check(
        query,
        "silver.clean_email({x})",
        [
            ("Ann.Lee@Example.COM", "ann.lee@example.com"),
            ("  bob@x.org \t", "bob@x.org"),
            ("JOSÉ@X.COM", "josé@x.com"),
            ("", None),
            ("   ", None),
            (None, None),
        ],
    )


def test_is_valid_email(query):
    generated = [
        (gen._email(first, last, pattern, domain, 7), True)
        for first, last in zip(gen.FIRST_NAMES, gen.LAST_NAMES * 2, strict=False)
        for pattern in range(7)
        for domain in gen.EMAIL_DOMAINS[:2]
    ]
    malformed = {gen._malformed_email("ann.lee@example.com", random.Random(k)) for k in range(200)}
    assert {"ann.leeexample.com", "ann.lee@@example.com", "ann.lee@"} <= malformed and len(malformed) > 3
    hand = [
        ("Ann.Lee@Example.COM", True),
        ("  ann@example.co.uk  ", True),
        ("a+tag@sub-domain.example.io", True),
        ("o'brien@example.com", False),
        ("ann@example", False),
        ("ann@example.c", False),
        ("ann@example.c0m", False),
        ("ann@@example.com", False),
        ("ann@ex@ample.com", False),
        ("an n@example.com", False),
        (".ann@example.com", False),
        ("ann.@example.com", False),
        ("an..n@example.com", False),
        ("ann@-example.com", False),
        ("ann@example..com", False),
        ("@example.com", False),
        ("ann", False),
        ("a" * 250 + "@example.com", False),
        ("", None),
        ("  ", None),
        (None, None),
    ]
    cases = generated + [(m, False) for m in sorted(malformed)] + hand
    assert [c[1] for c in cases] == [reference_email_valid(c[0]) for c in cases]
    check(query, "silver.is_valid_email({x})", cases)


# --------------------------------------------------------------------------- names
def test_clean_name_on_every_generator_name_and_mess(query):
    cases = []
    for name in gen.FIRST_NAMES + gen.LAST_NAMES:
        cases.append((name, name))
        for k in range(8):
            messy = gen._mess_name(name, PickOption(k))
            cases.append((messy, reference_name(messy)))
    check(query, "silver.clean_name({x})", cases)


def test_clean_name_edge_cases(query):
    check(
        query,
        "silver.clean_name({x})",
        [
            ("o'brien", "O'Brien"),
            ("O'BRIEN", "O'Brien"),
            ("MARY-JANE", "Mary-Jane"),
            ("JOSÉ", "José"),
            ("josé", "José"),
            ("nguyễn", "Nguyễn"),
            ("ĐỨC", "Đức"),
            ("SIOBHÁN", "Siobhán"),
            ("weiß", "Weiß"),
            ("d’andre", "D’Andre"),
            ("McDonald", "McDonald"),
            ("DeShawn", "DeShawn"),
            ("van der Berg", "van der Berg"),
            ("  Anne \t\n Marie  ", "Anne Marie"),
            ("anne\u00a0marie", "Anne Marie"),
            ("X", "X"),
            ("", None),
            ("   ", None),
            ("\t", None),
            (None, None),
        ],
    )


def test_clean_name_ignores_the_callers_collation(query):
    # every collation the server has that case-maps differently: C, POSIX, default, and 18's pg_unicode_fast
    (version,) = query("select current_setting('server_version_num')::int / 10000")[0]
    collations = ['"C"', '"POSIX"', '"default"'] + (['"pg_unicode_fast"'] if version >= 18 else [])
    for collation in collations:
        check(
            query,
            f"silver.clean_name({{x}} collate {collation})",
            [("JOSÉ", "José"), ("nguyễn", "Nguyễn"), ("MARY-JANE", "Mary-Jane"), ("McDonald", "McDonald")],
        )


# --------------------------------------------------------------------------- phones
def test_phone_e164_every_generator_style_and_invalid_phone(query):
    # the documented examples are exactly the styles the generator's formatter writes
    assert {gen._fmt_phone("4155550123", style) for style in range(6)} == set(gen.PHONE_FORMAT_RATES)
    cases = [(raw, "+14155550123") for raw in gen.PHONE_FORMAT_RATES] + generator_phones()
    assert all(reference_e164(raw) == want for raw, want in cases)
    check(query, "silver.phone_e164({x})", cases)


def test_phone_e164_edge_cases(query):
    cases = [
        ("(415) 555-0123", "+14155550123"),
        ("415-555-0123", "+14155550123"),
        ("415.555.0123", "+14155550123"),
        ("+1 415 555 0123", "+14155550123"),
        ("4155550123", "+14155550123"),
        ("1-415-555-0123", "+14155550123"),
        ("  +1 (415) 555-0123  ", "+14155550123"),
        ("001 415 555 0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+49 30 901820", "+4930901820"),
        ("+1 415 555 012", None),  # +1 needs exactly 10 more digits
        ("+1 015 555 0123", None),  # area code starting 0
        ("(415) 155-0123", None),  # exchange starting 1
        ("222-222-2222", None),
        ("+1 999 999 9999", None),
        ("0000000000", None),
        ("+0 415 555 0123", None),
        ("+1234567", None),  # 7 digits
        ("+1234567890123456", None),  # 16 digits
        ("+234567890123456", "+234567890123456"),  # 15 digits
        ("+2345678901234567", None),  # 16 digits
        ("+23456789", "+23456789"),  # 8 digits
        ("415-555-012x", None),
        ("415 555 0123 ext 5", None),
        ("1 (800) FLOWERS", None),
        ("415+555+0123", None),
        ("++1 415 555 0123", None),
        ("+", None),
        ("", None),
        ("   ", None),
        (None, None),
    ]
    assert all(reference_e164(raw) == want for raw, want in cases)
    check(query, "silver.phone_e164({x})", cases)


def test_phone_e164_other_default_calling_code(query):
    check(
        query,
        "silver.phone_e164({x}, '44', 10)",
        [
            ("20 7946 0958", "+442079460958"),
            ("44 20 7946 0958", "+442079460958"),
            ("+1 415 555 0123", "+14155550123"),
            ("(415) 555-0123", "+444155550123"),
            ("123", None),
        ],
    )
    assert query("select silver.phone_e164('4155550123', null, 10), silver.phone_e164('4155550123', '1', null)") == [
        (None, None)
    ]


def test_phone_e164_matches_the_reference_on_random_digit_strings(query):
    rng = random.Random(20240229)
    inputs = []
    for _ in range(3000):
        n = rng.randrange(0, 18)
        inputs.append("".join(rng.choice("0123456789" * 4 + "1" * 6 + " ()-.+") for _ in range(n)))
    for _ in range(1000):  # plausible numbers, so that many are valid
        digits = "".join(rng.choice("0123456789") for _ in range(10))
        inputs.append(gen._fmt_phone(digits, rng.randrange(6)))
    check(query, "silver.phone_e164({x})", [(raw, reference_e164(raw)) for raw in inputs])


# --------------------------------------------------------------------------- dates
def test_parse_date_every_generator_format_every_day(query):
    cases = generator_dates()
    assert any(raw == "02/29/2024" for raw, _ in cases) and any(raw == "February 29, 2024" for raw, _ in cases)
    check(query, "silver.parse_date({x})", cases)


def test_parse_date_rejects_every_bad_date_the_generator_writes(query):
    check(query, "silver.parse_date({x})", [(raw, None) for raw in gen._BAD_DATES])


def test_parse_date_edge_cases(query):
    cases = [
        ("2024-02-29", date(2024, 2, 29)),
        ("2023-02-29", None),
        ("2000-02-29", date(2000, 2, 29)),
        ("1900-02-29", None),
        ("02/29/2024", date(2024, 2, 29)),
        ("02/29/2023", None),
        ("29-Feb-2024", date(2024, 2, 29)),
        ("29-feb-2023", None),
        ("February 29, 2024", date(2024, 2, 29)),
        ("FEBRUARY 29, 2023", None),
        ("2024-04-31", None),
        ("2024-04-30", date(2024, 4, 30)),
        ("2024-12-31", date(2024, 12, 31)),
        ("2024-00-10", None),
        ("2024-13-01", None),
        ("2024-01-00", None),
        ("0000-01-01", None),
        ("0001-01-01", date(1, 1, 1)),
        ("9999-12-31", date(9999, 12, 31)),
        ("  2025-03-07 ", date(2025, 3, 7)),
        ("\t2025-03-07\n", date(2025, 3, 7)),
        ("2025-03-07T14:05:09Z", date(2025, 3, 7)),
        ("2025-03-07T23:30:00-05:00", date(2025, 3, 7)),
        ("2025-03-07 14:05:09", date(2025, 3, 7)),
        ("2025-03-07T24:00:00Z", None),
        ("2025-03-07T23:60:00Z", None),
        ("2025-03-07T23:59:60Z", None),
        ("2025-03-07 23:59:60", None),
        ("2025-03-07T12:00:00+24:00", None),
        ("2025-03-07T12:00:00-05:60", None),
        ("2025-03-07T14:05:09", date(2025, 3, 7)),
        ("7-MAR-2025", date(2025, 3, 7)),
        ("07-mar-2025", date(2025, 3, 7)),
        ("march 7, 2025", date(2025, 3, 7)),
        ("March 07, 2025", date(2025, 3, 7)),
        ("Sept 7, 2025", None),
        ("Mar 7, 2025", None),
        ("07-March-2025", None),
        ("1--Mar-2025", None),
        ("007-Mar-2025", None),
        ("07-Mar-2025x", None),
        ("March  7, 2025", None),
        ("March 1 7, 2025", None),
        ("March 7,  2025", None),
        ("March 7 2025", None),
        ("Marchh 7, 2025", None),
        ("x March 7, 2025", None),
        ("March 123, 2025", None),
        ("March 31, 2025", date(2025, 3, 31)),
        ("April 31, 2025", None),
        ("07/03/2025x", None),
        ("07/3/2025", date(2025, 7, 3)),
        ("2025/3/07", None),
        ("2025/03/07 ", date(2025, 3, 7)),
        ("0a/03/2025", None),
        ("03/07/2O25", None),
        ("2025/0b/07", None),
        ("2025-0b-07", None),
        ("2025-03-+7", None),
        ("2025-03- 7", None),
        ("+2025-03-07", None),
        ("2025-03-07T1a:00:00Z", None),
        ("x7-Mar-2025", None),
        ("7-Mar-25", None),
        ("3/7/2025", date(2025, 3, 7)),
        ("2025-3-7", None),
        ("20250307", date(2025, 3, 7)),
        ("2025-03-07x", None),
        ("+025-03-07", None),
        ("2025-03--7", None),
        ("2-25-03-07", None),
        ("07/03/2025 ", date(2025, 7, 3)),  # month first, always
        ("2025/02/30", None),
        ("31/31/2020", None),
        ("00/00/0000", None),
        ("32-Jan-2024", None),
        ("not a date", None),
        ("", None),
        (None, None),
    ]
    assert [reference_date(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_date({x})", cases)


def test_parse_date_matches_the_reference_on_random_calendar_parts(query):
    rng = random.Random(7)
    inputs = []
    for _ in range(4000):
        y = rng.choice((0, 1, 1900, 2000, 2023, 2024, 9999, rng.randrange(0, 10000)))
        m, d = rng.randrange(0, 14), rng.randrange(0, 33)
        month = gen._MONTHS[(m - 1) % 12]  # the text layouts get a real month name and any day
        inputs.append(
            rng.choice(
                (
                    f"{y:04d}-{m:02d}-{d:02d}",
                    f"{m:02d}/{d:02d}/{y:04d}",
                    f"{y:04d}/{m:02d}/{d:02d}",
                    f"{d:02d}-{month[:3]}-{y:04d}",
                    f"{month} {d}, {y:04d}",
                    f"{m}/{d}/{y:04d}",
                    f"{d}.{m}.{y:04d}",
                    f"{d:02d}.{m:02d}.{y:04d}",
                    f"{y:04d}{m:02d}{d:02d}",
                    f"{y:04d}-{m:02d}-{d:02d}T12:00:00+05:30",
                )
            )
        )
    check(query, "silver.parse_date({x})", [(raw, reference_date(raw)) for raw in inputs])
    check(query, "silver.parse_date({x}, true)", [(raw, reference_date(raw, day_first=True)) for raw in inputs])


# --------------------------------------------------------------------------- timestamps
def test_parse_timestamp_every_generator_format(query):
    rng = random.Random(3)
    cases = []
    for _ in range(500):
        seconds = rng.randrange(0, 2_000_000_000)
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
        cases += [(gen._fmt_ts(seconds, f), expected) for f in range(len(gen.TIMESTAMP_FORMAT_RATES))]
    check(query, "silver.parse_timestamp({x})", cases)


def test_parse_timestamp_edge_cases(query):
    utc = UTC
    cases = [
        ("2025-03-07T14:05:09Z", datetime(2025, 3, 7, 14, 5, 9, tzinfo=utc)),
        ("2025-03-07 14:05:09", datetime(2025, 3, 7, 14, 5, 9, tzinfo=utc)),
        ("2025-03-07T23:30:00-05:00", datetime(2025, 3, 8, 4, 30, tzinfo=utc)),
        ("2025-03-07T05:30:00+05:30", datetime(2025, 3, 7, 0, 0, tzinfo=utc)),
        ("2025-03-07T00:10:00-00:30", datetime(2025, 3, 7, 0, 40, tzinfo=utc)),
        ("2024-12-31T23:59:59-01:00", datetime(2025, 1, 1, 0, 59, 59, tzinfo=utc)),
        ("2025-03-07", datetime(2025, 3, 7, tzinfo=utc)),
        ("03/07/2025", datetime(2025, 3, 7, tzinfo=utc)),
        ("March 7, 2025", datetime(2025, 3, 7, tzinfo=utc)),
        (" 2025-03-07T14:05:09Z ", datetime(2025, 3, 7, 14, 5, 9, tzinfo=utc)),
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=utc)),
        ("2023-02-29T12:00:00Z", None),
        ("2025-03-07T24:00:00Z", None),
        ("2025-03-07T23:60:00Z", None),
        ("2025-03-07T23:59:60Z", None),
        ("2025-03-07T12:00:00+24:00", None),
        ("2025-03-07T12:00:00+05:60", None),
        ("2025-03-07T12:00:00", datetime(2025, 3, 7, 12, tzinfo=utc)),
        ("2025-03-07T12:00:00z", datetime(2025, 3, 7, 12, tzinfo=utc)),
        ("2025-03-07T12:00Z", datetime(2025, 3, 7, 12, tzinfo=utc)),
        ("2025-03-07T12:00:00.123Z", datetime(2025, 3, 7, 12, 0, 0, 123000, tzinfo=utc)),
        ("2025-03-07 12:00:00Z", datetime(2025, 3, 7, 12, tzinfo=utc)),
        ("2025-03-07T1-:00:00Z", None),
        ("2025-03-07T12:00:00+0530", datetime(2025, 3, 7, 6, 30, tzinfo=utc)),
        ("2025-03-07T12:00:00+0a:00", None),
        ("2025-03-07T12:00:00+05:-1", None),
        ("2025-03-07T12:-1:00Z", None),
        ("2025-03-07 12:00: 1", None),
        ("2025-0x-07T12:00:00Z", None),
        ("not a time", None),
        ("", None),
        (None, None),
    ]
    assert [reference_timestamp(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_timestamp({x})", cases)


def test_parse_timestamp_and_date_match_the_reference_on_random_clock_parts(query):
    rng = random.Random(5)
    inputs = []
    for _ in range(3000):
        day = rng.choice(("2024-02-29", "2023-02-29", "2024-12-31", "2025-13-01", "2025-06-15", "2025-01-32"))
        clock = f"{rng.randrange(0, 26):02d}:{rng.randrange(0, 62):02d}:{rng.randrange(0, 62):02d}"
        zone = f"{rng.choice('+-')}{rng.randrange(0, 26):02d}:{rng.randrange(0, 62):02d}"
        inputs.append(rng.choice((f"{day}T{clock}Z", f"{day} {clock}", f"{day}T{clock}{zone}")))
    check(query, "silver.parse_timestamp({x})", [(raw, reference_timestamp(raw)) for raw in inputs])
    check(query, "silver.parse_date({x})", [(raw, reference_date(raw)) for raw in inputs])


def test_parse_timestamp_at_the_ends_of_the_calendar(query):
    """Offsets can push year 1 or 9999 across the year boundary; PostgreSQL still holds the instant."""
    rows = query(
        """
        select extract(epoch from silver.parse_timestamp(x))::bigint
        from unnest(array['0001-01-01T00:00:00+23:59', '9999-12-31T23:59:59-23:59']) with ordinality as t(x, n)
        order by n
        """
    )
    start = (datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    end = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    assert rows == [(int(start) - 86_340,), (int(end) + 86_340,)]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"])
def test_parse_timestamp_does_not_depend_on_the_session_time_zone(query, zone):
    inputs = [
        "2025-03-07T14:05:09Z",
        "2025-03-07 14:05:09",
        "2025-03-07T23:30:00-05:00",
        "2025-03-07",
        "07-Mar-2025",
    ]
    rows = query(
        f"set local timezone = '{zone}'; "
        "select extract(epoch from silver.parse_timestamp(x))::bigint from unnest(%s::text[]) with ordinality as t(x, n) "
        "order by n",
        (inputs,),
    )
    assert [r[0] for r in rows] == [int(reference_timestamp(x).timestamp()) for x in inputs]


# --------------------------------------------------------------------------- what people export
DAYS = ("2025-03-07", "2024-02-29", "2024-12-31")
SEPARATORS = ("T", "t", " ")
CLOCKS = (
    "14:05",
    "14:05:09",
    "14:05:09.1",
    "14:05:09.123",
    "14:05:09.123456",
    "14:05:09.1234567",
    "23:59:59.999999999",
)
WRITTEN_ZONES = (
    "",
    "Z",
    "z",
    "+05:30",
    "-03:00",
    "+0530",
    "-0800",
    "+05",
    "-11",
    "+00:00",
    "-00:30",
    "+23:59",
)


def iso_timestamps() -> list[str]:
    """Every ISO 8601 / RFC 3339 form, on a plain day, a leap day and a year's last day."""
    return [
        f"{day}{separator}{clock}{zone}"
        for day in DAYS
        for separator in SEPARATORS
        for clock in CLOCKS
        for zone in WRITTEN_ZONES
    ]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"])
def test_parse_timestamp_every_iso_8601_form_in_every_zone(query, zone):
    inputs = iso_timestamps()
    cases = [(raw, reference_timestamp(raw, zone)) for raw in inputs]
    assert None not in [want for _, want in cases] and len(cases) == 756
    check(query, f"silver.parse_timestamp({{x}}, '{zone}')", cases)


def test_parse_date_is_the_written_date_of_every_iso_8601_form(query):
    inputs = iso_timestamps()
    for day_first in (False, True):
        check(
            query,
            f"silver.parse_date({{x}}, {day_first})",
            [(raw, date.fromisoformat(raw[:10])) for raw in inputs],
        )


def test_parse_timestamp_iso_8601_edge_cases(query):
    utc = UTC
    cases = [
        ("2025-01-01T00:00:00", datetime(2025, 1, 1, tzinfo=utc)),  # Python's isoformat()
        ("2025-01-01 00:00:00", datetime(2025, 1, 1, tzinfo=utc)),
        ("2025-03-07T14:05", datetime(2025, 3, 7, 14, 5, tzinfo=utc)),
        ("2025-03-07T14:05:09.123456789+05:30", datetime(2025, 3, 7, 8, 35, 9, 123456, tzinfo=utc)),
        ("2025-03-07T14:05+0530", datetime(2025, 3, 7, 8, 35, tzinfo=utc)),
        ("2025-03-07t14:05:09-05", datetime(2025, 3, 7, 19, 5, 9, tzinfo=utc)),
        ("2025-03-07 14:05:09.5z", datetime(2025, 3, 7, 14, 5, 9, 500000, tzinfo=utc)),
        ("2025-03-07T14:05:09.000001Z", datetime(2025, 3, 7, 14, 5, 9, 1, tzinfo=utc)),
        ("2025-03-07T14:05:09.0000009Z", datetime(2025, 3, 7, 14, 5, 9, tzinfo=utc)),  # dropped, not rounded
        ("2024-12-31T23:59:59.9999999Z", datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=utc)),
        ("2025-03-07T00:00:00+23:59", datetime(2025, 3, 6, 0, 1, tzinfo=utc)),
        ("2025-03-07T00:00-0000", datetime(2025, 3, 7, tzinfo=utc)),
        ("  2025-03-07T14:05:09.5+01  ", datetime(2025, 3, 7, 13, 5, 9, 500000, tzinfo=utc)),
        ("2025-03-07T14:05:09.1234567890Z", None),  # 10 fractional digits
        ("2025-03-07T14:05:09.Z", None),
        ("2025-03-07T14:05:09,5Z", None),
        ("2025-03-07T14:05:.5Z", None),
        ("2025-03-07T14:05:9Z", None),
        ("2025-03-07T14:5:09Z", None),
        ("2025-03-07T14Z", None),
        ("2025-03-07T1405", None),
        ("2025-03-07T14:05:09+5:30", None),
        ("2025-03-07T14:05:09+05:3", None),
        ("2025-03-07T14:05:09+053", None),
        ("2025-03-07T14:05:09+05:30:00", None),
        ("2025-03-07T14:05:09 +05:30", None),
        ("2025-03-07T14:05:09ZZ", None),
        ("2025-03-07T14:05:09+05:30Z", None),
        ("2025-03-07T14:05:09Z+05:30", None),
        ("2025-03-07T14:05:09+24", None),
        ("2025-03-07T14:05:09+0560", None),
        ("2025-03-07T14:05:60Z", None),
        ("2025-03-07T14:60Z", None),
        ("2025-03-07T24:00Z", None),
        ("2025-03-07T24:00", None),
        ("2025-02-29T00:00Z", None),
        ("2025-03-07_14:05:09Z", None),
        ("2025-03-07T14:05:09.1.2Z", None),
        ("2025-03-07T14:05:09.-1Z", None),
        ("2025-03-07T14:05:09.１Z", None),  # a full-width digit
        ("2025-03-07T14:05:09é", None),
        ("2025-03-07T14:05:0é", None),
    ]
    assert [reference_timestamp(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_timestamp({x})", cases)
    dates = [(raw, None if want is None else date.fromisoformat(raw.strip()[:10])) for raw, want in cases]
    check(query, "silver.parse_date({x})", dates)


def test_parse_timestamp_zone_less_values_across_new_york_dst_changes(query):
    """Wall-clock time in America/New_York: EST (-5) in winter, EDT (-4) from 9 March to 2 November 2025."""
    utc = UTC
    cases = [
        ("2025-03-09 01:59:59", datetime(2025, 3, 9, 6, 59, 59, tzinfo=utc)),
        ("2025-03-09 02:30:00", datetime(2025, 3, 9, 7, 30, tzinfo=utc)),  # skipped: read as 03:30 EDT
        ("2025-03-09 03:00:00", datetime(2025, 3, 9, 7, 0, tzinfo=utc)),
        ("2025-03-09T12:00", datetime(2025, 3, 9, 16, 0, tzinfo=utc)),
        ("2025-11-02 00:30:00", datetime(2025, 11, 2, 4, 30, tzinfo=utc)),
        ("2025-11-02 01:30:00", datetime(2025, 11, 2, 6, 30, tzinfo=utc)),  # repeated: the second one, EST
        ("2025-11-02 02:00:00", datetime(2025, 11, 2, 7, 0, tzinfo=utc)),
        ("2025-03-09", datetime(2025, 3, 9, 5, 0, tzinfo=utc)),  # a bare date: midnight there
        ("2025-07-01", datetime(2025, 7, 1, 4, 0, tzinfo=utc)),
        ("07/01/2025", datetime(2025, 7, 1, 4, 0, tzinfo=utc)),
        ("July 1, 2025", datetime(2025, 7, 1, 4, 0, tzinfo=utc)),
        ("2025-07-01T12:00:00.25", datetime(2025, 7, 1, 16, 0, 0, 250000, tzinfo=utc)),
        ("2025-07-01T12:00:00Z", datetime(2025, 7, 1, 12, 0, tzinfo=utc)),  # a written zone wins
        ("2025-07-01T12:00:00+02:00", datetime(2025, 7, 1, 10, 0, tzinfo=utc)),
        ("2025-07-01T12:00:00-04", datetime(2025, 7, 1, 16, 0, tzinfo=utc)),
    ]
    assert [reference_timestamp(raw, "America/New_York") for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_timestamp({x}, 'America/New_York')", cases)
    # every quarter hour of both change days, against zoneinfo
    walls = [(datetime(2025, 3, 9) + timedelta(minutes=15 * k)).isoformat() for k in range(96)] + [
        (datetime(2025, 11, 2) + timedelta(minutes=15 * k)).isoformat(sep=" ") for k in range(96)
    ]
    check(
        query,
        "silver.parse_timestamp({x}, 'America/New_York')",
        [(raw, reference_timestamp(raw, "America/New_York")) for raw in walls],
    )


def test_parse_timestamp_epoch_seconds_only_when_configured(query):
    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    cases = [
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("1741356309", datetime(2025, 3, 7, 14, 5, 9, tzinfo=UTC)),
        (" 1741356309 ", datetime(2025, 3, 7, 14, 5, 9, tzinfo=UTC)),
        ("1741356309.5", datetime(2025, 3, 7, 14, 5, 9, 500000, tzinfo=UTC)),
        ("1741356309.1234567", datetime(2025, 3, 7, 14, 5, 9, 123456, tzinfo=UTC)),
        ("-1.5", datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC)),
        ("-86400", datetime(1969, 12, 31, tzinfo=UTC)),
        ("20250307", at(20250307)),  # seconds, not a date, when the column holds seconds
        ("253402300799", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("-62135596800", datetime(1, 1, 1, tzinfo=UTC)),
        ("253402300800", None),
        ("-62135596801", None),
        ("1741356309123", None),  # milliseconds are no seconds
        ("1741356309.1234567890", None),
        ("+5", None),
        ("1e9", None),
        ("1,000", None),
        ("1.2.3", None),
        ("--5", None),
        ("5.", None),
        (".5", None),
        ("0x10", None),
        ("2025-03-07", datetime(2025, 3, 7, tzinfo=UTC)),
        ("2025-03-07T14:05:09Z", datetime(2025, 3, 7, 14, 5, 9, tzinfo=UTC)),
    ]
    assert [reference_timestamp(raw, epoch=True) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_timestamp({x}, 'UTC', true)", cases)
    off = [(raw, None) for raw, _ in cases[:-2]] + cases[-2:]  # digits alone are nothing then
    assert [reference_timestamp(raw) for raw, _ in off] == [want for _, want in off]
    check(query, "silver.parse_timestamp({x})", off)
    check(query, "silver.parse_timestamp({x}, 'UTC', false)", off)
    rng = random.Random(13)
    seconds = [
        f"{rng.randrange(-(10**12), 10**12)}.{rng.randrange(10**9):09d}"[: rng.randrange(9, 24)] for _ in range(2000)
    ]
    check(
        query,
        "silver.parse_timestamp({x}, 'UTC', true)",
        [(x, reference_timestamp(x, epoch=True)) for x in seconds],
    )


def test_parse_timestamp_unknown_zone_is_a_configuration_error_raised_once(query):
    """A bad value is NULL; a bad zone name fails the statement, whatever the values, before reading a row."""
    import psycopg2

    query("create table zone_probe (value text)")
    for sql_text in (
        "select silver.parse_timestamp('2025-03-07T14:05:09Z', 'Mars/Olympus')",
        "select silver.parse_timestamp(value, 'Mars/Olympus') from zone_probe",
        "select silver.parse_timestamp(value, 'America/New_Yrok', true) from zone_probe",
    ):
        with pytest.raises(psycopg2.Error, match="time zone .* not recognized"):
            query(sql_text)
    assert query(
        "select silver.parse_timestamp('2025-03-07 14:05:09', null), silver.parse_timestamp('2025-03-07T14:05:09Z', null)"
    ) == [(None, datetime(2025, 3, 7, 14, 5, 9, tzinfo=UTC))]
    # a zone from a column is read row by row
    rows = query(
        "select silver.parse_timestamp(value, zone) from (values ('2025-03-07 12:00', 'Asia/Kolkata'), "
        "('2025-03-07 12:00', 'UTC'), ('2025-03-07 12:00', 'EST')) as t(value, zone)"
    )
    assert [r[0] for r in rows] == [
        datetime(2025, 3, 7, 6, 30, tzinfo=UTC),
        datetime(2025, 3, 7, 12, tzinfo=UTC),
        datetime(2025, 3, 7, 17, tzinfo=UTC),
    ]


def test_parse_date_day_first(query):
    cases = [  # (raw, with months first, with days first)
        ("03/04/2025", date(2025, 3, 4), date(2025, 4, 3)),
        ("13/01/2025", None, date(2025, 1, 13)),  # never swapped to make it fit
        ("01/13/2025", date(2025, 1, 13), None),
        ("3/7/2025", date(2025, 3, 7), date(2025, 7, 3)),
        ("03/7/2025", date(2025, 3, 7), date(2025, 7, 3)),
        ("12/12/2025", date(2025, 12, 12), date(2025, 12, 12)),
        ("31/12/2024", None, date(2024, 12, 31)),
        ("02/29/2024", date(2024, 2, 29), None),
        ("29/02/2024", None, date(2024, 2, 29)),
        ("29/02/2023", None, None),
        ("7.3.2025", None, date(2025, 3, 7)),
        ("07.03.2025", None, date(2025, 3, 7)),
        ("31.12.2024", None, date(2024, 12, 31)),
        ("29.02.2024", None, date(2024, 2, 29)),
        ("29.02.2023", None, None),
        ("12.31.2024", None, None),
        ("7.3.25", None, None),
        ("07.03.2025.", None, None),
        ("007.03.2025", None, None),
        ("07-03-2025", None, None),
        ("003/07/2025", None, None),
        ("3//2025", None, None),
        ("a/7/2025", None, None),
        ("2025-03-07", date(2025, 3, 7), date(2025, 3, 7)),
        ("2025/03/07", date(2025, 3, 7), date(2025, 3, 7)),
        ("20250307", date(2025, 3, 7), date(2025, 3, 7)),
        ("20251307", None, None),
        ("20240229", date(2024, 2, 29), date(2024, 2, 29)),
        ("2025030", None, None),
        ("202503071", None, None),
        ("7-Mar-2025", date(2025, 3, 7), date(2025, 3, 7)),
        ("March 7, 2025", date(2025, 3, 7), date(2025, 3, 7)),
        ("2025-03-07T23:30:00-05:00", date(2025, 3, 7), date(2025, 3, 7)),  # the written date, not UTC's
        ("2025-03-07T00:30:00+05:30", date(2025, 3, 7), date(2025, 3, 7)),
        (" 03/04/2025\t", date(2025, 3, 4), date(2025, 4, 3)),
    ]
    for day_first, column in ((False, 1), (True, 2)):
        table = [(case[0], case[column]) for case in cases]
        assert [reference_date(raw, day_first) for raw, _ in table] == [want for _, want in table]
        check(query, f"silver.parse_date({{x}}, {day_first})", table)
    check(query, "silver.parse_date({x})", [(case[0], case[1]) for case in cases])


# --------------------------------------------------------------------------- numbers
def test_parse_integer(query):
    cases = [(str(q), q) for q in range(-12, 13)] + [(q, None) for q in gen._BAD_QUANTITIES]
    cases += [
        (" 7 ", 7),
        ("+5", 5),
        ("007", 7),
        ("999999999", 999_999_999),
        ("-999999999", -999_999_999),
        ("1000000000", None),
        ("99999999999999999999", None),
        ("3.0", 3),
        ("3.5x", None),
        ("1 1/2", None),
        ("1,000", None),
        ("1_000", None),
        ("0x1F", None),
        ("1e3", None),
        ("- 5", None),
        ("+-5", None),
        ("NaN", None),
        ("inf", None),
        ("", None),
        ("   ", None),
        (None, None),
    ]
    assert [reference_integer(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_integer({x})", cases)


def test_parse_money(query):
    rng = random.Random(11)
    prices = [f"{rng.uniform(0, 2000):.2f}" for _ in range(300)]
    cases = [(p, Decimal(p)) for p in prices] + [("-" + p, -Decimal(p)) for p in prices[:50]]
    cases += [(p, None) for p in gen._BAD_PRICES] + [(p + ".7", None) for p in prices[:50]]
    cases += [
        ("0.00", Decimal("0.00")),
        ("-19.99", Decimal("-19.99")),
        ("$19.99", Decimal("19.99")),
        ("-$19.99", Decimal("-19.99")),
        ("$-19.99", Decimal("-19.99")),
        ("+$5", Decimal("5.00")),
        (" $1,234.56 ", Decimal("1234.56")),
        ("1,234,567,890.12", Decimal("1234567890.12")),
        ("9999999999.99", Decimal("9999999999.99")),
        ("12", Decimal("12.00")),
        ("12.3", Decimal("12.30")),
        ("12.", None),
        (".5", None),
        ("12.345", None),
        ("12.3.4", None),
        ("10000000000", None),
        ("12,345,678,901", None),
        ("123,456,789,012.00", None),
        ("12,34.56", None),
        ("1,2345", None),
        (",123", None),
        ("$$5", None),
        ("-$-5", None),
        ("$ 5", Decimal("5.00")),
        ("5$", Decimal("5.00")),
        ("€5", Decimal("5.00")),
        ("N/A", None),
        ("$", None),
        ("NaN", None),
        ("inf", None),
        ("-Infinity", None),
        ("1e309", None),
        ("99999999999999999999", None),
        ("", None),
        (None, None),
    ]
    assert [reference_money(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_money({x})", cases)


def test_parse_integer_whole_numbers_written_as_floats(query):
    """pandas writes an integer column that holds a null as floats: 3.0."""
    cases = [
        ("3.0", 3),
        ("3.00", 3),
        ("-3.0", -3),
        ("+3.000", 3),
        (" 12.0 ", 12),
        ("0.0", 0),
        ("-0.0", 0),
        ("999999999.0", 999_999_999),
        ("1000000000.0", None),
        ("3.", None),
        (".0", None),
        ("3.01", None),
        ("3.10", None),
        ("3.0.0", None),
        ("3,0", None),
        ("3.0e0", None),
    ]
    assert [reference_integer(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, "silver.parse_integer({x})", cases)


MONEY_GROUPS = {False: (",",), True: (".", " ", "\u00a0", "\u202f")}


def money_styles(amount: Decimal, decimal_comma: bool) -> list[str]:
    """amount written every way the setting allows: grouped or not, a symbol before or after, with or without a space."""
    plain = f"{abs(amount):.2f}"
    grouped = f"{abs(amount):,.2f}"
    if decimal_comma:
        plain = plain.replace(".", ",")
        numbers = [plain] + [grouped.replace(",", "_").replace(".", ",").replace("_", g) for g in MONEY_GROUPS[True]]
    else:
        numbers = [plain, grouped]
    sign = "-" if amount < 0 else ""
    out = []
    for number in numbers:
        out += [
            f"{sign}{number}",
            f"{sign}${number}",
            f"{sign}€ {number}",
            f"{sign}{number} €",
            f"{sign}{number}£",
        ]
        out += [f"£{sign}{number}", f"{sign}{number}00"]
    return out


@pytest.mark.parametrize("decimal_comma", [False, True])
def test_parse_money_every_style_of_random_amounts(query, decimal_comma):
    rng = random.Random(17)
    amounts = [Decimal(rng.randrange(-(10**12), 10**12)) / 100 for _ in range(300)]
    amounts += [Decimal("0.00"), Decimal("1000.00"), Decimal("-0.05"), Decimal("9999999999.99")]
    cases = [(raw, amount) for amount in amounts for raw in money_styles(amount, decimal_comma)]
    assert [reference_money(raw, decimal_comma) for raw, _ in cases] == [want for _, want in cases]
    check(query, f"silver.parse_money({{x}}, {decimal_comma})", cases)


def test_parse_money_symbols_decimal_comma_and_trailing_zeros(query):
    cases = [  # (raw, with a decimal point, with a decimal comma)
        ("1234.56", Decimal("1234.56"), None),
        ("1234,56", None, Decimal("1234.56")),
        ("1,234.56", Decimal("1234.56"), None),
        ("1.234,56", None, Decimal("1234.56")),
        ("1 234,56", None, Decimal("1234.56")),
        ("1\u00a0234,56", None, Decimal("1234.56")),
        ("1\u202f234\u202f567,5", None, Decimal("1234567.50")),
        ("1.234.567", None, Decimal("1234567.00")),
        ("1.234", None, Decimal("1234.00")),
        ("1,234", Decimal("1234.00"), None),
        ("12,5", None, Decimal("12.50")),
        ("12.5", Decimal("12.50"), None),
        ("2.5500", Decimal("2.55"), None),
        ("2,5500", None, Decimal("2.55")),
        ("2.5000000", Decimal("2.50"), None),
        ("2.5501", None, None),
        ("2.555", None, Decimal("2555.00")),  # with a decimal comma, '.' groups thousands
        ("2,555", Decimal("2555.00"), None),
        ("2.500,00", None, Decimal("2500.00")),
        ("1.234 567,00", None, None),  # one separator throughout
        ("1 234.567,00", None, None),
        ("1.23.456,00", None, None),
        ("12.34,56", None, None),
        ("1234.567,00", None, None),
        ("1,234,56", None, None),
        ("$1,234.56", Decimal("1234.56"), None),
        ("1.234,56 €", None, Decimal("1234.56")),
        ("€1.234,56", None, Decimal("1234.56")),
        ("-1.234,56 €", None, Decimal("-1234.56")),
        ("€-5", Decimal("-5.00"), Decimal("-5.00")),
        ("-€5", Decimal("-5.00"), Decimal("-5.00")),
        ("+£5", Decimal("5.00"), Decimal("5.00")),
        ("5 £", Decimal("5.00"), Decimal("5.00")),
        ("5\u00a0€", Decimal("5.00"), Decimal("5.00")),
        ("€ 5", Decimal("5.00"), Decimal("5.00")),
        ("$ -5", Decimal("-5.00"), Decimal("-5.00")),
        ("€5€", None, None),
        ("$5€", None, None),
        ("€€5", None, None),
        ("€  5", None, None),
        ("5  €", None, None),
        ("- €5", None, None),
        ("€5-", None, None),
        ("5-", None, None),
        ("(5.00)", None, None),
        ("EUR 5", None, None),
        ("¥5", None, None),
        ("1 234", None, Decimal("1234.00")),
        ("1 234.56", None, None),
        ("12 34,56", None, None),
        (" 1234 ", Decimal("1234.00"), Decimal("1234.00")),
        ("9.999.999.999,99", None, Decimal("9999999999.99")),
        ("99.999.999.999,99", None, None),
        ("9 999 999 999,990", None, Decimal("9999999999.99")),
        ("", None, None),
        (None, None, None),
    ]
    for decimal_comma, column in ((False, 1), (True, 2)):
        table = [(case[0], case[column]) for case in cases]
        assert [reference_money(raw, decimal_comma) for raw, _ in table] == [want for _, want in table]
        check(query, f"silver.parse_money({{x}}, {decimal_comma})", table)


# --------------------------------------------------------------------------- regions
def test_default_region_vocabulary_maps_every_generator_variant(query):
    cases = [(r, r) for r in REGIONS] + [(region_key(r), r) for r in REGIONS]
    cases += [(gen._region_variant(r, pick), r) for r in REGIONS for pick in range(6)]
    cases += [
        ("pacific", "Pacific"),
        (" PACIFIC", "Pacific"),
        ("Pacific ", "Pacific"),
        ("Mid Atlantic", "Mid-Atlantic"),
        ("mid_atlantic", "Mid-Atlantic"),
        ("New-England", "New England"),
        ("  new   england\t", "New England"),
        ("EAST-NORTH-CENTRAL", "East North Central"),
        ("Midatlantic", None),
        ("Atlantic", None),
        ("Pacífic", None),
        ("Pacific Northwest", None),
        ("", None),
        (None, None),
    ]
    assert [reference_region(raw) for raw, _ in cases] == [want for _, want in cases]
    check(query, REGION_LOOKUP, cases)


# --------------------------------------------------------------------------- never raising
def junk_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces = [
        *"0123456789",
        *" \t\r\n-/.:,+$()@%_'\"\\;",
        "T",
        "Z",
        "e",
        "E",
        "x",
        "Jan",
        "March",
        "NaN",
        "inf",
        "😀",
        "é",
        "ễ",
        "ß",
        "İ",
        "\u0301",
        "\u00a0",
        "\u200b",
        "\u202e",
        "中文",
        "ǆ",
        "2024-",
        "02-29",
        "T23:59:60",
        "+05:30",
        "Z",
        "1e309",
        "9" * 30,
        "'; drop table x; --",
    ]
    out = [""]
    for _ in range(n):
        out.append("".join(rng.choice(pieces) for _ in range(rng.randrange(0, 25))))
    out += [rng.choice(pieces) * 3000 for _ in range(3)]
    return out


def test_no_function_raises_on_junk(query):
    inputs = NASTY[1:] + junk_strings(200, seed=42)
    for expression in TEXT_FUNCTIONS:
        rows = run(query, expression, inputs + [None])
        assert len(rows) == len(inputs) + 1 and rows[-1] is None


def test_no_function_raises_on_constants_folded_at_plan_time(query):
    """With a constant argument the planner evaluates the inlined body itself: no branch may raise there either."""
    inputs = [x for x in NASTY if x is not None] + list(gen._BAD_DATES) + ["2023-02-29T00:00:00Z", "02/30/2024"]
    for expression in TEXT_FUNCTIONS:
        columns = ", ".join(expression.format(x="%s::text") for _ in inputs)
        assert len(query(f"select {columns}", tuple(inputs))[0]) == len(inputs)


def test_nasty_inputs_give_null_not_garbage(query):
    padded_date = "2024-01-01" + " " * 10_000
    inputs = [x for x in NASTY if x != padded_date]
    for expression in (
        "silver.phone_e164({x})",
        "silver.parse_date({x})",
        "silver.parse_timestamp({x})",
        "silver.parse_integer({x})",
        "silver.parse_money({x})",
        REGION_LOOKUP,
    ):
        got = run(query, expression, inputs)
        assert [(x, g) for x, g in zip(inputs, got, strict=True) if g is not None] == [], expression
    assert run(query, "silver.parse_date({x})", [padded_date]) == [date(2024, 1, 1)]
    assert run(query, "silver.clean_name({x})", [TEN_KB, "😀", "  😀  Ann  "]) == [
        "X" + TEN_KB[1:],
        "😀",
        "😀 Ann",
    ]
    assert query("select to_regclass('silver.quarantine') is not null") == [(True,)]


# --------------------------------------------------------------------------- a generated extract
def read_sales(path: Path) -> list[list[str]]:
    """Loadable sales lines (no multi-line records in this file): even quotes, six fields."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        if line.count('"') % 2:
            continue
        fields = next(csv.reader(io.StringIO(line)))
        if len(fields) == 6:
            rows.append(fields)
    return rows


def read_customers(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


@pytest.fixture(scope="module")
def extract(
    tmp_path_factory: pytest.TempPathFactory,
) -> list[tuple[dict, list[dict], list[list[str]], list[dict]]]:
    """(manifest, customers, sales lines, products) per folder of a history + 2 delta extract."""
    landing = tmp_path_factory.mktemp("cleaning-landing")
    manifests = gen.generate(landing, date(2024, 2, 27), days=3, customers=3000, orders=4000, customers_format="jsonl")
    out = []
    for manifest in manifests:
        folder = landing / manifest["date"]
        customers = read_customers(folder / "crm_customers.jsonl")
        sales = read_sales(folder / "erp_sales.csv")
        with (folder / "erp_products.csv").open(encoding="utf-8", newline="") as fh:
            products = list(csv.DictReader(fh))
        assert len(customers) == manifest["files"]["crm_customers.jsonl"]["loadable_records"]
        assert len(sales) == manifest["files"]["erp_sales.csv"]["loadable_records"]
        out.append((manifest, customers, sales, products))
    return out


def test_extract_customers_clean_exactly_as_the_manifest_says(query, extract):
    for manifest, customers, _sales, _products in extract:
        info = manifest["files"]["crm_customers.jsonl"]
        defects = info["defects"]
        columns = ("phone", "signup_date", "updated_at", "region", "first_name", "last_name", "email")
        values = {c: [row[c] for row in customers] for c in columns}

        phones = run(query, "silver.phone_e164({x})", values["phone"])
        assert phones == [reference_e164(v) for v in values["phone"]]
        assert phones.count(None) == defects["invalid_phone"]

        signups = run(query, "silver.parse_date({x})", values["signup_date"])
        assert signups == [reference_date(v) for v in values["signup_date"]]
        assert signups.count(None) == info["date_formats"]["signup_date"]["unparseable"] == defects["unparseable_date"]

        updated = run(query, "silver.parse_timestamp({x})", values["updated_at"])
        assert updated == [reference_timestamp(v) for v in values["updated_at"]] and None not in updated

        regions = run(query, REGION_LOOKUP, values["region"])
        assert regions == [reference_region(v) for v in values["region"]] and None not in regions
        assert (
            sum(raw != clean for raw, clean in zip(values["region"], regions, strict=True)) == info["region_variants"]
        )

        firsts = run(query, "silver.clean_name({x})", values["first_name"])
        lasts = run(query, "silver.clean_name({x})", values["last_name"])
        assert firsts == [reference_name(v) for v in values["first_name"]] and None not in firsts
        assert lasts == [reference_name(v) for v in values["last_name"]] and None not in lasts
        changed = [
            row
            for row, first, last in zip(customers, firsts, lasts, strict=True)
            if (first, last) != (row["first_name"], row["last_name"])
        ]
        assert len(changed) == defects["messy_name"]

        valid = run(query, "silver.is_valid_email({x})", values["email"])
        assert valid == [reference_email_valid(v) for v in values["email"]]
        assert valid.count(False) == defects["malformed_email"]
        assert 0 <= valid.count(None) <= defects["missing_required"]

    history = extract[0][0]["files"]["crm_customers.jsonl"]["defects"]
    assert min(history["invalid_phone"], history["unparseable_date"], history["messy_name"]) > 0


def test_extract_sales_and_products_clean_exactly_as_the_manifest_says(query, extract):
    for manifest, _customers, sales, products in extract:
        info = manifest["files"]["erp_sales.csv"]
        defects = info["defects"]
        order_dates = run(query, "silver.parse_date({x})", [row[3] for row in sales])
        assert order_dates == [reference_date(row[3]) for row in sales]
        assert (
            order_dates.count(None) == info["date_formats"]["order_date"]["unparseable"] == defects["unparseable_date"]
        )

        quantities = run(query, "silver.parse_integer({x})", [row[4] for row in sales])
        prices = run(query, "silver.parse_money({x})", [row[5] for row in sales])
        assert quantities == [reference_integer(row[4]) for row in sales]
        assert prices == [reference_money(row[5]) for row in sales]
        unparseable = sum(q is None or p is None for q, p in zip(quantities, prices, strict=True))
        assert unparseable == defects["unparseable_amount"]
        assert quantities.count(0) == defects["zero_quantity"]
        assert sum(q is not None and q < 0 for q in quantities) == defects["negative_quantity"]
        assert sum(p is not None and p < 0 for p in prices) == defects["negative_price"]
        assert sum(p == 0 for p in prices) == info["free_items"]

        costs = run(query, "silver.parse_money({x})", [row["unit_cost"] for row in products])
        list_prices = run(query, "silver.parse_money({x})", [row["list_price"] for row in products])
        stamps = run(query, "silver.parse_timestamp({x})", [row["updated_at"] for row in products])
        assert costs == [Decimal(row["unit_cost"]) for row in products]
        assert list_prices == [Decimal(row["list_price"]) for row in products]
        assert stamps == [reference_timestamp(row["updated_at"]) for row in products] and None not in stamps
