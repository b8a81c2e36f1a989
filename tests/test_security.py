"""Security checks over the code and every committed file.

- ruff's bandit rules (S) pass, and the configuration keeps them on;
- SQL is built only from constants, .sql files and psycopg2.sql composition:
  no f-string, % or + formatting, or str.format, reaches a query, and every
  value travels as a parameter;
- no credential-looking string is committed outside example files, in the
  working tree or in any commit of the history, and the files that hold
  secrets are git-ignored.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CODE_DIRS = ("pipeline", "console")


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True).stdout.decode()


def repo_files() -> list[str]:
    """Tracked files and the untracked ones git does not ignore: what is, or would be, committed."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return sorted(path for path in set(listed) if path and (REPO / path).is_file())


# ---------------------------------------------------------------- ruff S


def test_ruff_security_rules_pass():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "S", "--no-cache", "--quiet", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_configuration_keeps_security_rules_on_outside_tests():
    lint = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in lint["select"]
    assert not [code for code in lint.get("ignore", []) if code.startswith("S")]
    for pattern, codes in lint.get("per-file-ignores", {}).items():
        if not pattern.startswith("tests/"):
            assert not [code for code in codes if code.startswith("S")], pattern
    # A noqa comment without codes silences every rule, S included; each must name its rules.
    bare = [
        f"{path}:{number}"
        for path in python_files()
        for number, line in enumerate((REPO / path).read_text().splitlines(), start=1)
        if re.search(r"[#]\s*noqa(?!:)", line, re.IGNORECASE)
    ]
    assert bare == []


# ---------------------------------------------------------------- SQL composition

SQL_CALLS = {"execute", "executemany", "copy_expert", "mogrify", "read_sql", "read_sql_query", "text"}
# Text a query may be made of: file contents and string methods that keep them text.
TEXT_METHODS = {"read_text", "strip", "rstrip", "lstrip", "removesuffix", "removeprefix"}
# Query text that is neither a constant nor a file, each reviewed: (file, source of the expression) -> why.
REVIEWED = {
    ("pipeline/quality/rules.py", "p['sql']"): "an `expression` rule's predicate from sql/quality_rules.toml, "
    "reviewed configuration like the .sql files, never data",
    (
        "pipeline/tasks_gold.py",
        "'\\n'.join((line for line in statement.splitlines() if not line.lstrip().startswith('--'))).strip()",
    ): "one statement of a psycopg2.sql-composed script (its as_string), comment lines dropped",
    (
        "pipeline/extractors/postgres.py",
        "str(self.query).strip().rstrip(';')",
    ): "a database source's `query` from sources.toml: reviewed configuration like the .sql files, run "
    "read-only on the source, never data",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def python_files() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for d in CODE_DIRS for p in (REPO / d).rglob("*.py"))


def _call_name(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _is_sql_constructor(node: ast.AST) -> bool:
    """sql.SQL(...) (psycopg2.sql), also when imported as SQL."""
    return _call_name(node) == "SQL" and (
        isinstance(node.func, ast.Name) or (isinstance(node.func.value, ast.Name) and node.func.value.id == "sql")
    )


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or isinstance(node, ast.Constant) and isinstance(node.value, str)


# The one SQL-file loader (pipeline/core/db.py): its argument names a file under sql/ (it refuses any other path),
# and what it returns is that file's text (sql_text) or sql.SQL of it (sql_statement).
SQL_FILE_LOADERS = ("sql_text", "sql_statement")


def _nodes(node: ast.AST):
    """The expression's nodes, except what names a file that is read (its text is the file's)."""
    yield node
    if _call_name(node) in ("read_text", *SQL_FILE_LOADERS):
        return
    for child in ast.iter_child_nodes(node):
        yield from _nodes(child)


def _formatting(node: ast.AST) -> str | None:
    """Why an expression builds text by formatting, or None."""
    for sub in _nodes(node):
        if isinstance(sub, ast.JoinedStr):
            return "an f-string"
        if (
            isinstance(sub, ast.BinOp)
            and isinstance(sub.op, ast.Mod | ast.Add)
            and (_is_str(sub.left) or _is_str(sub.right))
        ):
            return "text built with % or +"
        if _call_name(sub) in ("format", "join") and _is_str(sub.func.value):
            return f"str.{_call_name(sub)}()"
    return None


class SqlScan(ast.NodeVisitor):
    """Findings for one module: formatted text reaching a query or sql.SQL, unreviewed text in sql.SQL."""

    def __init__(self, path: str, tree: ast.Module):
        self.path = path
        self.findings: list[Finding] = []
        self.assigned: list[dict[str, list[ast.AST]]] = [{}]  # name -> values, per function scope
        # Module-level tables of constant strings, and functions returning text: both are text.
        self.constant_tables = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Dict)
            and all(map(_is_str, node.value.values))
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        self.text_functions: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                returns = [sub.value for sub in ast.walk(node) if isinstance(sub, ast.Return) and sub.value]
                if returns and all(self.is_text_source(value) for value in returns):
                    self.text_functions.add(node.name)

    def is_text_source(self, node: ast.AST) -> bool:
        """A constant, a file's text, a choice between those, an entry of a constant table."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return True
        if isinstance(node, ast.IfExp):
            return self.is_text_source(node.body) and self.is_text_source(node.orelse)
        if isinstance(node, ast.Subscript):
            return isinstance(node.value, ast.Name) and node.value.id in self.constant_tables
        name = _call_name(node)
        if name in SQL_FILE_LOADERS:
            return True
        if name in TEXT_METHODS and isinstance(node.func, ast.Attribute):
            return name == "read_text" or self.is_text_source(node.func.value)
        if name == "get" and isinstance(node.func.value, ast.Name):
            return node.func.value.id in self.constant_tables and all(map(self.is_text_source, node.args[1:]))
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and name in self.text_functions

    def visit_FunctionDef(self, node):  # noqa: N802 - ast.NodeVisitor's naming
        scope: dict[str, list[ast.AST]] = {}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    if isinstance(target, ast.Name):
                        scope.setdefault(target.id, []).append(sub.value)
        self.assigned.append(scope)
        self.generic_visit(node)
        self.assigned.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def _values(self, node: ast.AST) -> list[ast.AST]:
        """The expression, or what a local name was assigned (one level)."""
        if isinstance(node, ast.Name):
            return self.assigned[-1].get(node.id, []) or [node]
        return [node]

    def _reviewed(self, node: ast.AST) -> bool:
        return (self.path, ast.unparse(node)) in REVIEWED

    def visit_Call(self, node):  # noqa: N802
        name = _call_name(node)
        if _is_sql_constructor(node) and node.args:
            for value in self._values(node.args[0]):
                problem = _formatting(value)
                if self._reviewed(value):
                    continue
                if problem:
                    self._add(node, f"{problem} inside sql.SQL(): {ast.unparse(value)[:80]}")
                elif not self.is_text_source(value):
                    self._add(
                        node,
                        f"sql.SQL() over text that is neither a constant nor a .sql file: {ast.unparse(value)[:80]}",
                    )
        elif name in SQL_CALLS or name == "execute_values":
            index = 1 if name == "execute_values" else 0
            for value in self._values(node.args[index]) if len(node.args) > index else []:
                problem = _formatting(value)
                if problem and not _is_sql_constructor(value) and not self._reviewed(value):
                    self._add(node, f"{problem} passed to {name}(): {ast.unparse(value)[:80]}")
        self.generic_visit(node)

    def _add(self, node: ast.AST, problem: str) -> None:
        self.findings.append(Finding(self.path, node.lineno, problem))


def scan_source(path: str, source: str) -> list[Finding]:
    tree = ast.parse(source)
    scan = SqlScan(path, tree)
    scan.visit(tree)
    return scan.findings


def test_queries_are_composed_from_constants_files_and_identifiers():
    findings = [f for path in python_files() for f in scan_source(path, (REPO / path).read_text())]
    assert [str(f) for f in findings] == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ('cur.execute(f"select * from {table}")', "an f-string passed to execute()"),
        ('cur.execute("select * from t where id = %s" % value)', "text built with % or + passed to execute()"),
        ('cur.execute("select * from " + table)', "text built with % or + passed to execute()"),
        ('cur.execute("select * from {}".format(table))', "str.format() passed to execute()"),
        ('def f(cur):\n    query = f"delete from {t}"\n    cur.execute(query)', "an f-string passed to execute()"),
        ('cur.copy_expert(f"copy {t} from stdin", buffer)', "an f-string passed to copy_expert()"),
        ('execute_values(cur, f"insert into {t} values %s", rows)', "an f-string passed to execute_values()"),
        ('sql.SQL(f"select {column} from t")', "an f-string inside sql.SQL()"),
        ("sql.SQL(text_from_somewhere)", "sql.SQL() over text that is neither a constant nor a .sql file"),
        ('cur.execute(db.sql_text("x.sql") + f" where {column} = 1")', "text built with % or + passed to execute()"),
        ('pd.read_sql("select * from t where id = " + str(i), conn)', "text built with % or + passed to read_sql()"),
    ],
)
def test_the_sql_scan_finds_formatted_queries(source, expected):
    findings = scan_source("example.py", source)
    assert len(findings) == 1 and expected in findings[0].problem, findings


@pytest.mark.parametrize(
    "source",
    [
        'cur.execute("select * from t where id = %s", (value,))',
        'cur.execute(sql.SQL("select * from {} where id = %s").format(sql.Identifier("s", "t")), (value,))',
        'cur.execute(sql.SQL("analyze {}").format(table).as_string(cur))',
        "cur.execute(path.read_text(), params)",
        'cur.execute(sql.SQL((SQL_DIR / "x.sql").read_text().strip().rstrip(";")).format(**parts))',
        'execute_values(cur, "insert into t (a, b) values %s", rows)',
        'cur.execute(db.sql_text(f"metrics/{name}.sql"), params)',
        'cur.execute(db.sql_statement(f"silver/steps/{name}.sql").format(**parts), params)',
        'sql.SQL(sql_text(relative).strip().rstrip(";"))',
    ],
)
def test_the_sql_scan_accepts_composed_queries(source):
    assert scan_source("example.py", source) == []


def test_sql_files_never_quote_a_parameter():
    """A %(name)s inside quotes would be a value pasted into a literal; parameters stand alone."""
    quoted = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "sql").rglob("*.sql"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"'[^']*%\(\w+\)s[^']*'", line.split("--")[0])
    ]
    assert quoted == []


# ---------------------------------------------------------------- credentials

# Formats that are credentials whatever surrounds them.
TOKEN_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Stripe live key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password hash": re.compile(
        r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=_-]{8,}\$[A-Za-z0-9+/=_-]{16,}"
        r"|\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"
    ),
}
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^\s/@'\"`]+)@")
# KEY = value / key: value in configuration files (Python has ruff's S105-S107 for this).
CONFIG_SECRET = re.compile(
    r"""(?ix) (?:^|[\s"',])
        ([\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[\w.-]*)
        ["']?\s*[:=]\s*
        (?:"([^"]*)"|'([^']*)'|([^\s#,;]*))"""
)
PLACEHOLDERS = {
    "",
    "pass",
    "password",
    "passwd",
    "secret",
    "token",
    "changeme",
    "change-me",
    "change_me",
    "none",
    "null",
    "nil",
    "false",
    "true",
    "example",
    "dummy",
    "redacted",
    "-",
}
CONFIG_SUFFIXES = {
    ".cfg",
    ".ini",
    ".toml",
    ".yml",
    ".yaml",
    ".json",
    ".conf",
    ".properties",
    ".env",
    ".sh",
    ".txt",
    ".md",
    ".sql",
    ".service",
    ".timer",
}
CONFIG_NAMES = {"Dockerfile", "Makefile", ".env", "crontab"}


def is_example(path: str) -> bool:
    return any("example" in part.lower() for part in Path(path).parts)


def is_placeholder(value: str) -> bool:
    value = value.strip()
    return (
        value.lower() in PLACEHOLDERS
        or value[:1] in ("$", "<", "{", "%")
        or len(set(value)) == 1
        or value.lower().startswith(("your", "set-", "set_"))
    )


def credential_findings(path: str, text: str) -> list[str]:
    found = []
    config_like = (
        Path(path).suffix in CONFIG_SUFFIXES or Path(path).name in CONFIG_NAMES or Path(path).name.startswith(".env")
    )
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in TOKEN_PATTERNS.items():
            if pattern.search(line):
                found.append(f"{path}:{number}: {kind}")
        for match in URL_CREDENTIALS.finditer(line):
            user_info = match.group(1)
            if ":" in user_info and "$" not in user_info:
                if not is_placeholder(user_info.split(":", 1)[1]):
                    found.append(f"{path}:{number}: password in a URL")
        if config_like:
            for match in CONFIG_SECRET.finditer(line):
                value = next(v for v in match.groups()[1:] if v is not None)
                if not is_placeholder(value):
                    found.append(f"{path}:{number}: {match.group(1)} set to a literal")
    return found


def test_no_credential_in_the_committed_files():
    found = []
    for path in repo_files():
        if is_example(path):
            continue
        found += credential_findings(path, (REPO / path).read_bytes().decode("utf-8", "replace"))
    assert found == []


def history_findings(repo: Path) -> list[str]:
    """Credential formats in every version of every file ever committed to the repository."""
    blobs: dict[str, str] = {}
    listing = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--all", "--objects"], check=True, capture_output=True, text=True
    ).stdout
    for line in listing.splitlines():
        sha, _space, path = line.partition(" ")
        if path and not is_example(path):
            blobs.setdefault(sha, path)
    batch = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        check=True,
        capture_output=True,
        input="".join(f"{sha}\n" for sha in blobs).encode(),
    ).stdout
    found, offset = [], 0
    while offset < len(batch):
        header_end = batch.index(b"\n", offset)
        sha, kind, size = batch[offset:header_end].decode().split(" ")
        body = batch[header_end + 1 : header_end + 1 + int(size)]
        offset = header_end + 1 + int(size) + 1
        if kind == "blob":
            text = body.decode("utf-8", "replace")
            # Only the unambiguous formats: a placeholder judgement made today is not rewritten into history.
            found += [
                f"{sha[:10]} {f}"
                for f in credential_findings(blobs[sha], text)
                if not f.endswith(("password in a URL", "set to a literal"))
            ]
    return found


def test_no_credential_in_the_history():
    """A credential removed in a later commit is still published."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert history_findings(REPO) == []


def test_the_history_scan_finds_a_credential_removed_later(tmp_path):
    def run(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    run("init", "-q")
    (tmp_path / "settings.py").write_text(f'KEY = "{FAKE["aws"]}"\n')
    run("add", "settings.py")
    run("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "leak")
    (tmp_path / "settings.py").write_text('KEY = os.environ["KEY"]\n')
    run("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-am", "fix")
    assert credential_findings("settings.py", (tmp_path / "settings.py").read_text()) == []
    found = history_findings(tmp_path)
    assert len(found) == 1 and found[0].endswith("settings.py:1: AWS access key id")


FAKE = {  # built here so that this file holds no credential-looking string itself
    "aws": "AKIA" + "Q" * 16,
    "github": "ghp_" + "a1B2" * 9,
    "pem": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "jwt": "eyJ" + "hbGciOiJIUzI1NiJ9" + ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0" + ".c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "hash": "scrypt$16384$8$1$" + "c2FsdHNhbHQ=" + "$" + "a2V5a2V5a2V5a2V5a2V5a2V5",
}


@pytest.mark.parametrize(
    "path, text, kind",
    [
        ("pipeline/x.py", f'KEY = "{FAKE["aws"]}"', "AWS access key id"),
        ("docs/notes.md", f"token {FAKE['github']}", "GitHub token"),
        ("deploy/key.txt", FAKE["pem"], "private key"),
        ("console/app.py", f"headers = {{'Authorization': 'Bearer {FAKE['jwt']}'}}", "JSON web token"),
        ("tests/test_x.py", f"stored = '{FAKE['hash']}'", "password hash"),
        ("README.md", "DATABASE_URL=postgresql://metalayer:" + "Tr0ub4dor" + "@db:5432/metalayer", "password in a URL"),
        ("luigi.cfg", "password = " + "Tr0ub4dor", "password set to a literal"),
        ("docker-compose.yml", "      POSTGRES_PASSWORD: " + "Tr0ub4dor", "POSTGRES_PASSWORD set to a literal"),
        ("config.json", '{"api_key": "' + "k3y-" * 5 + '"}', "api_key set to a literal"),
    ],
)
def test_the_credential_scan_finds_credentials(path, text, kind):
    assert [f for f in credential_findings(path, text) if kind in f], credential_findings(path, text)


@pytest.mark.parametrize(
    "path, text",
    [
        ("README.md", "| `DATABASE_URL` | `postgresql://user:pass@host:5432/db` |"),
        (
            "docker-compose.yml",
            "  DATABASE_URL: postgresql://${POSTGRES_USER:-m}:${POSTGRES_PASSWORD:?set it}@postgres/m",
        ),
        ("docker-compose.yml", "      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"),
        ("luigi.cfg", "password = ${METALAYER_SMTP_PASSWORD}"),
        (".streamlit/config.toml", 'password_hash = ""'),
        ("docs/x.md", "Secrets (a password in `DATABASE_URL`) come from the environment only."),
    ],
)
def test_the_credential_scan_passes_references_and_placeholders(path, text):
    assert credential_findings(path, text) == []


def test_secret_files_are_ignored_and_not_committed():
    must_ignore = [".env", ".streamlit/secrets.toml", ".metalayer/pgdata/postgresql.auto.conf"]
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", *must_ignore], capture_output=True, text=True
    ).stdout.split()
    assert ignored == must_ignore
    risky = re.compile(r"(^|/)(\.env|secrets\.toml|\.pgpass|id_rsa|id_ed25519|credentials\.json)$|\.(pem|key|p12)$")
    assert [path for path in repo_files() if risky.search(path)] == []
