"""Tests for pipeline.sample.generate: determinism, layout, and that manifest.json tells the truth.

The files are re-parsed here independently of the generator, with the bronze
loader's rule: a record is one physical line, unless the line has an odd number
of '"', in which case following lines are joined until the count is even; the
joined text must parse with csv (strict=True) into exactly one row of the
header's field count, otherwise only the first line is rejected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tomllib
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.core.sources import CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES, REGIONS
from pipeline.sample import generate as gen_module
from pipeline.sample.generate import generate

START = date(2025, 3, 7)
SMALL = dict(start_date=START, days=3, customers=2000, orders=3000, products=88, seed=42)
DATES = [(START + timedelta(days=k)).isoformat() for k in range(SMALL["days"])]

CENSUS_DIVISIONS = {
    "New England": {"CT", "ME", "MA", "NH", "RI", "VT"},
    "Mid-Atlantic": {"NJ", "NY", "PA"},
    "East North Central": {"IL", "IN", "MI", "OH", "WI"},
    "West North Central": {"IA", "KS", "MN", "MO", "NE", "ND", "SD"},
    "South Atlantic": {"DE", "DC", "FL", "GA", "MD", "NC", "SC", "VA", "WV"},
    "East South Central": {"AL", "KY", "MS", "TN"},
    "West South Central": {"AR", "LA", "OK", "TX"},
    "Mountain": {"AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY"},
    "Pacific": {"AK", "CA", "HI", "OR", "WA"},
}
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
DATE_FORMATS = {
    "YYYY-MM-DD": (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "%Y-%m-%d"),
    "MM/DD/YYYY": (re.compile(r"^\d{2}/\d{2}/\d{4}$"), "%m/%d/%Y"),
    "YYYY/MM/DD": (re.compile(r"^\d{4}/\d{2}/\d{2}$"), "%Y/%m/%d"),
    "DD-Mon-YYYY": (re.compile(r"^\d{2}-[A-Z][a-z]{2}-\d{4}$"), "%d-%b-%Y"),
    "Month D, YYYY": (re.compile(r"^[A-Z][a-z]+ \d{1,2}, \d{4}$"), "%B %d, %Y"),
}
TS_FORMATS = {
    "YYYY-MM-DDTHH:MM:SSZ": (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"), "%Y-%m-%dT%H:%M:%SZ"),
    "YYYY-MM-DD HH:MM:SS": (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"), "%Y-%m-%d %H:%M:%S"),
}


# --------------------------------------------------------------------------- independent parsing
def parse_csv(path: Path, ncols: int) -> dict:
    """Split a landing CSV into header, loadable records and broken lines by the loader's rule."""
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    assert text.endswith("\n") and "\r" not in text
    lines = text.split("\n")[:-1]
    odd = [line.count('"') % 2 == 1 for line in lines]
    records, broken = [], []  # records: (fields, raw text, first line no); broken: (line, line no)
    i = 1
    while i < len(lines):
        j = i
        if odd[i]:
            j = i + 1
            while j < len(lines) and not odd[j]:
                j += 1
            j = min(j, len(lines) - 1)
        chunk = "\n".join(lines[i : j + 1])
        try:
            rows = list(csv.reader(io.StringIO(chunk), strict=True))
        except csv.Error:
            rows = None
        if rows is not None and len(rows) == 1 and len(rows[0]) == ncols:
            records.append((rows[0], chunk, i))
            i = j + 1
        else:
            broken.append((lines[i], i))
            i += 1
    header = next(csv.reader(io.StringIO(lines[0])))
    return {
        "header": header,
        "lines": lines,
        "records": records,
        "broken": broken,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }


def parse_jsonl(path: Path, keys: tuple[str, ...]) -> dict:
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    records, broken = [], []
    for n, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and tuple(obj) == keys and all(isinstance(v, str) for v in obj.values()):
            records.append(([obj[k] for k in keys], line, n))
        else:
            broken.append((line, n))
    return {"lines": lines, "records": records, "broken": broken, "sha256": hashlib.sha256(raw).hexdigest()}


def classify_broken(line: str, ncols: int) -> str:
    if '"' in line:
        assert line.count('"') == 1
        assert line.count(",") == ncols - 1
        fields = line.split(",")
        assert not fields[-1].startswith('"') and '"' not in fields[-1]
        assert sum(f.startswith('"') for f in fields) == 1
        return "unbalanced_quote"
    assert line.count(",") != ncols - 1
    return "wrong_field_count"


def date_format(value: str) -> str:
    for name, (rx, fmt) in DATE_FORMATS.items():
        if rx.match(value):
            try:
                datetime.strptime(value, fmt)
                return name
            except ValueError:
                return "unparseable"
    return "unparseable"


def parse_date(value: str) -> date | None:
    name = date_format(value)
    return None if name == "unparseable" else datetime.strptime(value, DATE_FORMATS[name][1]).date()


def ts_format(value: str) -> str:
    for name, (rx, fmt) in TS_FORMATS.items():
        if rx.match(value):
            datetime.strptime(value, fmt)
            return name
    raise AssertionError(f"bad timestamp {value!r}")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, TS_FORMATS[ts_format(value)][1])


def valid_phone(p: str) -> bool:
    if re.search(r"[A-Za-z]", p):
        return False
    digits = re.sub(r"\D", "", p)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return len(digits) == 10 and set(digits) != {"0"}


def messy(name: str) -> bool:
    return name != name.strip() or "  " in name or name.isupper() or name.islower()


def load(folder: Path, fmt: str = "csv") -> dict:
    cust_file = folder / f"crm_customers.{fmt}"
    if fmt == "csv":
        cust = parse_csv(cust_file, len(CRM_CUSTOMERS.columns))
    else:
        cust = parse_jsonl(cust_file, CRM_CUSTOMERS.columns)
    return {
        "manifest": json.loads((folder / "manifest.json").read_text(encoding="utf-8")),
        "crm_customers." + fmt: cust,
        "erp_products.csv": parse_csv(folder / "erp_products.csv", len(ERP_PRODUCTS.columns)),
        "erp_sales.csv": parse_csv(folder / "erp_sales.csv", len(ERP_SALES.columns)),
    }


def as_dicts(parsed: dict, columns: tuple[str, ...]) -> list[dict]:
    return [dict(zip(columns, fields, strict=True)) | {"_raw": raw} for fields, raw, _ in parsed["records"]]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    messages: list[str] = []
    manifests = generate(out, progress=messages.append, **SMALL)
    assert len(manifests) == SMALL["days"] and messages
    return out


@pytest.fixture(scope="module")
def parsed(small) -> dict[str, dict]:
    return {d: load(small / d) for d in DATES}


# --------------------------------------------------------------------------- determinism
def test_same_arguments_give_byte_identical_files(small, tmp_path):
    generate(tmp_path, **SMALL)
    for d in DATES:
        for f in sorted((small / d).iterdir()):
            assert f.read_bytes() == (tmp_path / d / f.name).read_bytes(), f"{d}/{f.name}"


def test_different_seed_differs_and_history_does_not_depend_on_days(small, tmp_path):
    generate(tmp_path / "s43", **(SMALL | {"seed": 43, "days": 1}))
    generate(tmp_path / "d1", **(SMALL | {"days": 1}))
    for name in ("crm_customers.csv", "erp_products.csv", "erp_sales.csv"):
        assert (tmp_path / "s43" / DATES[0] / name).read_bytes() != (small / DATES[0] / name).read_bytes()
        assert (tmp_path / "d1" / DATES[0] / name).read_bytes() == (small / DATES[0] / name).read_bytes()


def test_prints_nothing_and_reports_progress(tmp_path, capsys):
    messages: list[str] = []
    generate(tmp_path, START, days=2, customers=300, orders=400, progress=messages.append)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert any("history" in m for m in messages) and any("delta" in m for m in messages)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, START, customers_format="xml")
    with pytest.raises(ValueError):
        generate(tmp_path, START, days=0)


# --------------------------------------------------------------------------- layout and manifest truth
def test_layout_headers_and_encoding(small):
    assert sorted(p.name for p in small.iterdir()) == DATES
    for d in DATES:
        assert sorted(p.name for p in (small / d).iterdir()) == [
            "crm_customers.csv",
            "erp_products.csv",
            "erp_sales.csv",
            "manifest.json",
        ]
        for src in (CRM_CUSTOMERS, ERP_PRODUCTS, ERP_SALES):
            text = (small / d / f"{src.file_stem}.csv").read_text(encoding="utf-8")
            assert text.split("\n", 1)[0] == ",".join(src.columns)
            assert text.endswith("\n") and "\n\n" not in text and "\r" not in text


def test_manifest_is_sorted_deterministic_json_with_all_keys(small):
    for k, d in enumerate(DATES):
        text = (small / d / "manifest.json").read_text(encoding="utf-8")
        m = json.loads(text)
        assert text == json.dumps(m, sort_keys=True, indent=2) + "\n"
        assert m["date"] == d and m["kind"] == ("history" if k == 0 else "delta") and m["seed"] == 42
        assert m["parameters"] == {
            "start_date": DATES[0],
            "days": 3,
            "customers": 2000,
            "orders": 3000,
            "products": 88,
            "seed": 42,
            "customers_format": "csv",
        }
        kinds = {
            "crm_customers.csv": gen_module.CUSTOMER_DEFECTS,
            "erp_products.csv": gen_module.PRODUCT_DEFECTS,
            "erp_sales.csv": gen_module.SALES_DEFECTS,
        }
        assert set(m["files"]) == set(kinds)
        for name, f in m["files"].items():
            assert set(f) == {
                "sha256",
                "physical_lines",
                "records",
                "broken_lines",
                "loadable_records",
                "clean_rows",
                "defects",
                "multiline_records",
                "region_variants",
                "free_items",
                "date_formats",
            }
            assert set(f["defects"]) == set(kinds[name])
            assert set(f["broken_lines"]) == {"wrong_field_count", "unbalanced_quote"}
            assert f["records"] == sum(f["broken_lines"].values()) + f["loadable_records"]
            assert f["loadable_records"] == f["clean_rows"] + sum(f["defects"].values())
            for counts in f["date_formats"].values():
                assert sum(counts.values()) == f["loadable_records"]


@pytest.mark.parametrize("name", ["crm_customers.csv", "erp_products.csv", "erp_sales.csv"])
def test_manifest_counts_match_an_independent_reparse(parsed, name):
    ncols = {"crm_customers.csv": 11, "erp_products.csv": 6, "erp_sales.csv": 6}[name]
    for d in DATES:
        p, f = parsed[d][name], parsed[d]["manifest"]["files"][name]
        assert p["sha256"] == f["sha256"]
        assert len(p["lines"]) == f["physical_lines"]
        assert len(p["records"]) + len(p["broken"]) == f["records"]
        assert len(p["records"]) == f["loadable_records"]
        kinds = Counter(classify_broken(line, ncols) for line, _ in p["broken"])
        assert {k: kinds.get(k, 0) for k in f["broken_lines"]} == f["broken_lines"]
        assert sum("\n" in raw for _, raw, _ in p["records"]) == f["multiline_records"]
        # an unbalanced-quote line is never immediately followed by a multi-line record
        starts = {n: raw for _, raw, n in p["records"]}
        for line, n in p["broken"]:
            if '"' in line and n + 1 in starts:
                assert "\n" not in starts[n + 1]
    history = parsed[DATES[0]]["manifest"]["files"][name]
    if name != "erp_products.csv":
        assert all(v >= 1 for v in history["broken_lines"].values())
        assert history["multiline_records"] >= 1 or name == "erp_sales.csv"
    else:
        assert history["broken_lines"] == {"wrong_field_count": 0, "unbalanced_quote": 0}


# --------------------------------------------------------------------------- customers
def customer_truth(rows: list[dict], seen_before: set[str]) -> tuple[Counter, Counter, Counter]:
    defects, dates, stamps = Counter(), Counter(), Counter()
    raws, ids = set(), set()
    for r in rows:
        dates[date_format(r["signup_date"])] += 1
        stamps[ts_format(r["updated_at"])] += 1
        if r["_raw"] in raws:
            defects["exact_duplicate"] += 1
        elif r["customer_id"] and r["customer_id"] in ids:
            defects["customer_update"] += 1
        elif not r["customer_id"] or not r["email"]:
            defects["missing_required"] += 1
        elif not EMAIL_RE.match(r["email"]):
            defects["malformed_email"] += 1
        elif not valid_phone(r["phone"]):
            defects["invalid_phone"] += 1
        elif messy(r["first_name"]) or messy(r["last_name"]):
            defects["messy_name"] += 1
        elif date_format(r["signup_date"]) == "unparseable":
            defects["unparseable_date"] += 1
        raws.add(r["_raw"])
        ids.add(r["customer_id"])
    return defects, dates, stamps


def test_customer_defects_match_the_manifest(parsed):
    seen: set[str] = set()
    for d in DATES:
        rows = as_dicts(parsed[d]["crm_customers.csv"], CRM_CUSTOMERS.columns)
        f = parsed[d]["manifest"]["files"]["crm_customers.csv"]
        defects, dates, stamps = customer_truth(rows, seen)
        assert {k: defects.get(k, 0) for k in f["defects"]} == f["defects"], d
        assert {k: dates.get(k, 0) for k in f["date_formats"]["signup_date"]} == f["date_formats"]["signup_date"]
        assert {k: stamps.get(k, 0) for k in f["date_formats"]["updated_at"]} == f["date_formats"]["updated_at"]
        assert sum(r["region"] not in REGIONS for r in rows) == f["region_variants"]
        assert f["free_items"] == 0
        seen |= {r["customer_id"] for r in rows}
    hist = parsed[DATES[0]]["manifest"]["files"]["crm_customers.csv"]
    n = 2000
    for kind, rate in gen_module.CUSTOMER_DEFECT_RATES.items():
        assert abs(hist["defects"][kind] - rate * n) <= 1, kind
    assert abs(hist["region_variants"] - 0.05 * n) <= 1 and abs(hist["multiline_records"] - 0.005 * n) <= 1


def test_customers_are_realistic(parsed):
    rows = [r for r in as_dicts(parsed[DATES[0]]["crm_customers.csv"], CRM_CUSTOMERS.columns) if r["customer_id"]]
    by_region: dict[str, set[str]] = defaultdict(set)
    norm = {re.sub(r"[-\s]+", " ", r.lower()).strip(): r for r in REGIONS}
    for r in rows:
        region = norm[re.sub(r"[-\s]+", " ", r["region"].lower()).strip()]  # every variant maps back
        assert r["state"] in CENSUS_DIVISIONS[region]
        cities = {s[0]: s[3] for s in gen_module._STATES}[r["state"]]
        assert r["city"] in cities
        by_region[region].add(r["customer_id"])
    counts = {k: len(v) for k, v in by_region.items()}
    assert set(counts) == set(REGIONS)
    assert len(set(counts.values())) == len(REGIONS)  # clearly different sizes
    assert max(counts.values()) > 3 * min(counts.values())
    names = {r["first_name"].strip() for r in rows} | {r["last_name"].strip() for r in rows}
    assert any(not n.isascii() for n in names) and any("'" in n for n in names)
    assert any("," in r["address"] for r in rows) and any("\n" in r["address"] for r in rows)
    styles = Counter(
        re.sub(r"^\+9 ", "+1 ", re.sub(r"^9-(?=\d{3}-)", "1-", re.sub(r"\d", "9", r["phone"])))
        for r in rows
        if valid_phone(r["phone"])
    )
    for style in (
        "(999) 999-9999",
        "999-999-9999",
        "999.999.9999",
        "+1 999 999 9999",
        "9999999999",
        "1-999-999-9999",
    ):
        assert styles[style] > 0, style
    domains = Counter(r["email"].rsplit("@", 1)[-1] for r in rows if EMAIL_RE.match(r["email"]))
    assert len(domains) >= 5


def test_history_customer_updates_come_later_with_a_change(parsed):
    rows = as_dicts(parsed[DATES[0]]["crm_customers.csv"], CRM_CUSTOMERS.columns)
    first: dict[str, dict] = {}
    updates = 0
    for r in rows:
        cid = r["customer_id"]
        if cid and cid in first and r["_raw"] != first[cid]["_raw"]:
            updates += 1
            assert parse_ts(r["updated_at"]) > parse_ts(first[cid]["updated_at"])
            attrs = ("email", "phone", "address", "city", "state", "last_name")
            assert any(r[a] != first[cid][a] for a in attrs)
        first.setdefault(cid, r)
    assert updates == parsed[DATES[0]]["manifest"]["files"]["crm_customers.csv"]["defects"]["customer_update"] > 0


def test_deltas_update_existing_customers_with_later_updated_at(parsed):
    latest: dict[str, datetime] = {}
    for r in as_dicts(parsed[DATES[0]]["crm_customers.csv"], CRM_CUSTOMERS.columns):
        if r["customer_id"]:
            latest[r["customer_id"]] = max(latest.get(r["customer_id"], datetime.min), parse_ts(r["updated_at"]))
    first_buys = 0
    for d in DATES[1:]:
        rows = as_dicts(parsed[d]["crm_customers.csv"], CRM_CUSTOMERS.columns)
        m = parsed[d]["manifest"]
        assert m["contents"] == {
            "updated_customers": 20,
            "new_customers": 4,
            "changed_products": 2,
            "new_sales_lines": 30,
        }
        ids = {r["customer_id"] for r in rows if r["customer_id"]}
        existing = {c for c in ids if c in latest}
        assert len(existing) >= 15
        for r in rows:
            cid, ts = r["customer_id"], parse_ts(r["updated_at"])
            assert ts.date().isoformat() == d
            if cid in latest:
                assert ts > latest[cid]
        new_ids = ids - existing
        assert new_ids
        sales = as_dicts(parsed[d]["erp_sales.csv"], ERP_SALES.columns)
        first_buys += sum(r["customer_id"] in new_ids for r in sales)
        for r in rows:
            if r["customer_id"]:
                latest[r["customer_id"]] = max(latest.get(r["customer_id"], datetime.min), parse_ts(r["updated_at"]))
    assert first_buys > 0  # a day's new customers buy on their signup day


# --------------------------------------------------------------------------- products
def test_products(parsed):
    hist = as_dicts(parsed[DATES[0]]["erp_products.csv"], ERP_PRODUCTS.columns)
    f = parsed[DATES[0]]["manifest"]["files"]["erp_products.csv"]
    assert f["defects"] == {"exact_duplicate": 1, "missing_required": 1} and f["records"] == 90
    assert len({r["_raw"] for r in hist}) == 89
    assert sum(r["product_id"] == "" for r in hist) == 1
    assert len({r["product_id"] for r in hist if r["product_id"]}) == 88
    assert 6 <= len({r["category"] for r in hist}) <= 10
    for r in hist:
        assert 0 < float(r["unit_cost"]) < float(r["list_price"])
    price = {r["product_id"]: float(r["list_price"]) for r in hist}
    for d in DATES[1:]:
        delta = as_dicts(parsed[d]["erp_products.csv"], ERP_PRODUCTS.columns)
        fd = parsed[d]["manifest"]["files"]["erp_products.csv"]
        assert len(delta) == fd["clean_rows"] == 2 and sum(fd["defects"].values()) == 0
        for r in delta:
            assert r["product_id"] in price and float(r["list_price"]) != price[r["product_id"]]
            assert 0 < float(r["unit_cost"]) < float(r["list_price"])
            assert parse_ts(r["updated_at"]).date().isoformat() == d
            price[r["product_id"]] = float(r["list_price"])


# --------------------------------------------------------------------------- sales
def test_sales_defects_match_the_manifest(parsed):
    customers: set[str] = set()
    products: set[str] = set()
    order_ids: set[str] = set()
    for d in DATES:
        customers |= {r["customer_id"] for r in as_dicts(parsed[d]["crm_customers.csv"], CRM_CUSTOMERS.columns)}
        products |= {r["product_id"] for r in as_dicts(parsed[d]["erp_products.csv"], ERP_PRODUCTS.columns)}
        rows = as_dicts(parsed[d]["erp_sales.csv"], ERP_SALES.columns)
        f = parsed[d]["manifest"]["files"]["erp_sales.csv"]
        defects, dates, raws = Counter(), Counter(), set()
        free = 0
        for r in rows:
            dates[date_format(r["order_date"])] += 1
            if r["_raw"] in raws:
                defects["duplicate_order_line"] += 1
            elif not (r["order_id"] and r["customer_id"] and r["product_id"]):
                defects["missing_required"] += 1
            elif r["customer_id"] not in customers:
                defects["unknown_customer"] += 1
            elif r["product_id"] not in products:
                defects["unknown_product"] += 1
            elif date_format(r["order_date"]) == "unparseable":
                defects["unparseable_date"] += 1
            elif not re.match(r"^-?\d+$", r["quantity"]) or not re.match(r"^-?\d+\.\d\d$", r["unit_price"]):
                defects["unparseable_amount"] += 1
            elif r["quantity"] == "0":
                defects["zero_quantity"] += 1
            elif r["quantity"].startswith("-"):
                defects["negative_quantity"] += 1
            elif r["unit_price"].startswith("-"):
                defects["negative_price"] += 1
            elif r["unit_price"] == "0.00":
                free += 1
            if r["_raw"] not in raws and r["order_id"]:
                assert r["order_id"] not in order_ids  # unique per line, across folders too
                order_ids.add(r["order_id"])
            raws.add(r["_raw"])
        assert {k: defects.get(k, 0) for k in f["defects"]} == f["defects"], d
        assert free == f["free_items"]
        assert {k: dates.get(k, 0) for k in f["date_formats"]["order_date"]} == f["date_formats"]["order_date"]
        assert f["multiline_records"] == f["region_variants"] == 0
        if d != DATES[0]:
            assert all(parse_date(r["order_date"]) in (None, date.fromisoformat(d)) for r in rows)
    hist = parsed[DATES[0]]["manifest"]["files"]["erp_sales.csv"]
    for kind, rate in gen_module.SALES_DEFECT_RATES.items():
        assert abs(hist["defects"][kind] - rate * 3000) <= 1, kind
        assert hist["defects"][kind] >= 1
    assert abs(hist["free_items"] - 0.005 * 3000) <= 1


def test_sales_are_realistic(parsed):
    cust = {
        r["customer_id"]: r
        for r in as_dicts(parsed[DATES[0]]["crm_customers.csv"], CRM_CUSTOMERS.columns)
        if r["customer_id"]
    }
    rows = as_dicts(parsed[DATES[0]]["erp_sales.csv"], ERP_SALES.columns)
    valid = [
        r
        for r in rows
        if r["customer_id"] in cust
        and parse_date(r["order_date"])
        and re.match(r"^\d+$", r["quantity"])
        and re.match(r"^\d+\.\d\d$", r["unit_price"])
    ]
    days = [parse_date(r["order_date"]) for r in valid]
    assert min(days) >= START - timedelta(days=729) and max(days) <= START
    first_year = sum(d < START - timedelta(days=365) for d in days)
    assert len(days) - first_year > 1.15 * first_year  # more recent = more orders
    assert sum(1 <= int(r["quantity"]) <= 5 for r in valid) > 0.9 * len(valid)
    # a customer buys on or after signing up
    for r in valid:
        signup = parse_date(cust[r["customer_id"]]["signup_date"])
        assert signup is None or signup <= parse_date(r["order_date"])
    # regions spend differently
    spend: dict[str, list[float]] = defaultdict(list)
    for r in valid:
        region = cust[r["customer_id"]]["region"]
        if region in REGIONS:
            spend[region].append(int(r["quantity"]) * float(r["unit_price"]))
    avg = {k: sum(v) / len(v) for k, v in spend.items()}
    assert avg["Pacific"] > 1.3 * avg["East South Central"]


# --------------------------------------------------------------------------- jsonl
def test_jsonl_has_the_same_rows_as_csv(small, parsed, tmp_path):
    manifests = generate(tmp_path, **(SMALL | {"customers_format": "jsonl"}))
    for k, d in enumerate(DATES):
        j = load(tmp_path / d, "jsonl")
        c = parsed[d]
        assert not (tmp_path / d / "crm_customers.csv").exists()
        for name in ("erp_products.csv", "erp_sales.csv"):
            assert (tmp_path / d / name).read_bytes() == (small / d / name).read_bytes()
        jc, cc = j["crm_customers.jsonl"], c["crm_customers.csv"]
        assert [r[0] for r in jc["records"]] == [r[0] for r in cc["records"]]
        fj = j["manifest"]["files"]["crm_customers.jsonl"]
        fc = c["manifest"]["files"]["crm_customers.csv"]
        assert fj == manifests[k]["files"]["crm_customers.jsonl"]
        assert (
            fj["broken_lines"]
            == {"invalid_json": len(jc["broken"])}
            == {"invalid_json": sum(fc["broken_lines"].values())}
        )
        assert fj["physical_lines"] == fj["records"] == len(jc["lines"]) == fc["records"]
        assert fj["multiline_records"] == 0
        for key in ("loadable_records", "clean_rows", "defects", "region_variants", "date_formats"):
            assert fj[key] == fc[key]
        assert fj["sha256"] == jc["sha256"]
        assert j["manifest"]["parameters"]["customers_format"] == "jsonl"


# --------------------------------------------------------------------------- documentation
def test_rates_are_documented_in_the_module_docstring():
    doc = gen_module.__doc__
    for kind in (
        *gen_module.CUSTOMER_DEFECTS,
        *gen_module.SALES_DEFECTS,
        *gen_module.BROKEN_LINE_RATES,
        "invalid_json",
        "free_item",
        "multiline_records",
        "region_variants",
    ):
        assert f"``{kind}``" in doc, kind
    for rates in (gen_module.CUSTOMER_DEFECT_RATES, gen_module.SALES_DEFECT_RATES):
        for kind, rate in rates.items():
            assert re.search(rf"``{kind}``\s+{rate * 100:g}%", doc), kind


# --------------------------------------------------------------------------- vocabularies
VOCABULARIES = Path(gen_module.__file__).with_name("vocabularies")
VOCABULARY_FILES = {
    "states.csv": ("state", "division", "population_millions", "cities", "area_codes"),
    "email_domains.csv": ("domain", "weight"),
    "categories.toml": None,
    "first_names.txt": "FIRST_NAMES",
    "last_names.txt": "LAST_NAMES",
    "streets.txt": "_STREETS",
    "street_suffixes.txt": "_STREET_SUFFIXES",
    "address_units.txt": "_UNITS",
    "address_second_lines.txt": "_SECOND_LINES",
    "brands.txt": "_BRANDS",
    "months.txt": "_MONTHS",
}


def vocabulary_body(name: str) -> list[str]:
    """Read independently of the generator: a '#' header line, then the data lines."""
    lines = (VOCABULARIES / name).read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# ") and len(lines[0]) > 20, f"{name}: needs a one-line header comment"
    assert len(lines) > 1, f"{name} is empty"
    return lines[1:]


def vocabulary_csv(name: str) -> list[dict[str, str]]:
    reader = csv.DictReader(vocabulary_body(name), strict=True)
    rows = list(reader)
    assert tuple(reader.fieldnames) == VOCABULARY_FILES[name] and rows, name
    for row in rows:
        assert None not in row and all(v for v in row.values()), (name, row)
    return rows


def test_vocabulary_files_load_into_the_generator_constants():
    assert {p.name for p in VOCABULARIES.iterdir()} == {*VOCABULARY_FILES, "README.md"}
    readme = (VOCABULARIES / "README.md").read_text(encoding="utf-8")
    for name, constant in VOCABULARY_FILES.items():
        assert f"`{name}`" in readme, name
        if name.endswith(".txt"):
            items = vocabulary_body(name)
            assert all(s and s == s.strip() for s in items), name
            assert len(set(items)) == len(items), f"{name} has duplicates"
            assert getattr(gen_module, constant) == tuple(items), name
    # states: one row per state, each division a region, positive populations (the draw weights)
    states = vocabulary_csv("states.csv")
    assert len(states) == len({r["state"] for r in states}) == 51
    assert {r["division"] for r in states} == set(REGIONS)
    assert all(float(r["population_millions"]) > 0 for r in states)
    assert all(re.fullmatch(r"[2-9]\d\d(\|[2-9]\d\d)*", r["area_codes"]) for r in states)
    assert gen_module._STATES == tuple(
        (
            r["state"],
            r["division"],
            float(r["population_millions"]),
            tuple(r["cities"].split("|")),
            tuple(int(a) for a in r["area_codes"].split("|")),
        )
        for r in states
    )
    # e-mail domains: weights positive, aligned with their domains, summing to 1
    domains = vocabulary_csv("email_domains.csv")
    assert gen_module.EMAIL_DOMAINS == tuple(r["domain"] for r in domains)
    weights = [float(r["weight"]) for r in domains]
    assert all(w > 0 for w in weights) and abs(sum(weights) - 1) < 1e-9
    assert gen_module._EMAIL_DOMAIN_P.tolist() == weights and len(weights) == len(gen_module.EMAIL_DOMAINS)
    # categories: a price range and distinct product nouns each
    categories = tomllib.loads("\n".join(vocabulary_body("categories.toml")))["categories"]
    assert len(categories) >= 6 and len({c["name"] for c in categories}) == len(categories)
    for c in categories:
        assert 0 < c["min_price"] < c["max_price"] and c["products"], c["name"]
        assert len(set(c["products"])) == len(c["products"]), c["name"]
    assert gen_module._CATEGORIES == tuple(
        (c["name"], c["min_price"], c["max_price"], tuple(c["products"])) for c in categories
    )
    months = vocabulary_body("months.txt")
    assert [datetime.strptime(f"{m} 1, 2024", "%B %d, %Y").month for m in months] == list(range(1, 13))


def test_generated_values_come_from_the_vocabulary_files(parsed):
    def fold(name: str) -> str:  # undo messy_name: spaces around and doubled inside, ALL CAPS / all lower
        return " ".join(name.split()).casefold()

    first = {fold(n) for n in vocabulary_body("first_names.txt")}
    last = {fold(n) for n in vocabulary_body("last_names.txt")}
    cities = {r["state"]: set(r["cities"].split("|")) for r in vocabulary_csv("states.csv")}
    domains = {r["domain"] for r in vocabulary_csv("email_domains.csv")}
    months = vocabulary_body("months.txt")
    for d in DATES:
        rows = as_dicts(parsed[d]["crm_customers.csv"], CRM_CUSTOMERS.columns)
        assert rows
        for r in rows:
            assert fold(r["first_name"]) in first, r["first_name"]
            assert fold(r["last_name"]) in last, r["last_name"]
            assert r["city"] in cities[r["state"]], (r["state"], r["city"])
            if EMAIL_RE.match(r["email"]):
                assert r["email"].rsplit("@", 1)[1] in domains, r["email"]
            m = re.fullmatch(r"([A-Z][a-z]+) \d{1,2}, \d{4}", r["signup_date"])
            assert m is None or m[1] in months, r["signup_date"]
    categories = {c["name"]: c for c in tomllib.loads("\n".join(vocabulary_body("categories.toml")))["categories"]}
    brands = vocabulary_body("brands.txt")
    products = as_dicts(parsed[DATES[0]]["erp_products.csv"], ERP_PRODUCTS.columns)
    for r in products:
        c = categories[r["category"]]
        name = re.sub(r"( Mk \d+)?( \(unlisted\))?$", "", r["product_name"])
        assert any(name.startswith(b + " ") and name[len(b) + 1 :] in c["products"] for b in brands), name
        assert c["min_price"] - 1 < float(r["list_price"]) < c["max_price"] + 1, r  # floor(x) + .49 or .99
