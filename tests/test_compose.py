"""docker-compose.yml, Dockerfile and .env.example, checked without Docker.

Docker cannot run here, so these tests read the files the way Compose and
Docker would and check what would break a `docker compose up`: every service's
image or build, command, ports, mounts, healthchecks and dependencies, the
variables .env must provide, and that the app commands are ones the CLI
accepts. tests/test_observability.py runs the same commands natively.
"""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
APP_SERVICES = {"migrate", "luigid", "scheduler", "console", "exporter", "watcher"}
IMAGE_SERVICES = {"postgres", "prometheus", "pushgateway", "grafana"}
# Service keys this file may use (a subset of the Compose specification); a typo
# such as `depends-on` or `healthcheck.intervall` would be silently ignored by old Compose versions.
SERVICE_KEYS = {
    "build",
    "image",
    "command",
    "environment",
    "configs",
    "volumes",
    "ports",
    "healthcheck",
    "depends_on",
    "restart",
    "shm_size",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period"}
# What each service listens on inside its container.
CONTAINER_PORTS = {
    "postgres": 5432,
    "luigid": 8082,
    "console": 8501,
    "exporter": 9108,
    "prometheus": 9090,
    "pushgateway": 9091,
    "grafana": 3000,
}
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?([-?])([^}]*))?\}")


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with the given values (defaults otherwise)."""
    env = env or {}

    def value(match: re.Match) -> str:
        name, kind, rest = match.groups()
        if name in env:
            return env[name]
        if kind == "-":
            return rest
        raise KeyError(f"{name} has no default and is not set")

    return VARIABLE.sub(value, text).replace("$$", "$")


def example_env() -> dict[str, str]:
    values = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts, host paths relative to the repo."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = interpolate(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def named_volumes(service: dict) -> list[str]:
    names = []
    for volume in service.get("volumes", []):
        source = interpolate(volume).split(":")[0]
        if not source.startswith((".", "/")):
            names.append(source)
    return names


def test_the_stack_has_the_services_of_the_issue_each_from_an_image_or_the_app_build(compose):
    services = compose["services"]
    assert set(services) == APP_SERVICES | IMAGE_SERVICES
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, f"{name}: unknown keys {set(service) - SERVICE_KEYS}"
        assert ("build" in service) != ("image" in service and name in IMAGE_SERVICES), name
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == "metalayer:latest", name
    for name in IMAGE_SERVICES:
        image = services[name]["image"]
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: pin the image version, not {image!r}"
    assert set(compose) <= {"name", "services", "volumes", "configs", "x-app", "x-app-environment"}


def test_app_commands_are_ones_the_metalayer_cli_accepts(compose):
    parser = build_parser()
    services = compose["services"]
    commands = {name: services[name]["command"] for name in APP_SERVICES - {"scheduler"}}
    assert commands == {
        "migrate": ["metalayer", "db", "bootstrap"],
        "luigid": ["metalayer", "luigid", "--port", "8082"],
        "console": ["metalayer", "console", "--port", "8501"],
        "exporter": ["metalayer", "exporter", "--port", "9108"],
        "watcher": ["metalayer", "watch", "--scheduler-url", "http://luigid:8082"],
    }
    for name, command in commands.items():
        args = parser.parse_args(command[1:])
        if hasattr(args, "port"):
            assert args.port == CONTAINER_PORTS[name]
    # The scheduler: a shell line that writes the crontab, installs the daily run and keeps cron in front.
    shell, flag, line = services["scheduler"]["command"]
    assert (shell, flag) == ("sh", "-c")
    steps = [shlex.split(step) for step in interpolate(line).split("&&")]
    assert steps[-1] == ["exec", "cron", "-f"]
    schedule = next(step for step in steps if step[:2] == ["metalayer", "schedule"])
    args = parser.parse_args(schedule[1:])
    assert args.install and args.cron == "$METALAYER_CRON"
    # cron starts jobs with an empty environment: the settings go into the crontab first.
    assert "crontab -" in steps[0][-2:] or steps[0][-2:] == ["crontab", "-"]
    for name in ("DATABASE_URL", "LUIGI_CONFIG_PATH"):
        assert name in line


def test_image_services_run_with_commands_that_match_their_mounts(compose):
    services = compose["services"]
    prometheus = dict(arg.split("=", 1) for arg in services["prometheus"]["command"] if "=" in arg)
    mounted = {target: source for source, target in bind_mounts(services["prometheus"])}
    config = prometheus["--config.file"]
    assert mounted[config] == "./monitoring/prometheus.yml"
    assert prometheus["--storage.tsdb.path"] in {volume.split(":")[1] for volume in services["prometheus"]["volumes"]}
    # Rule files are resolved next to the config file, so each must be mounted there.
    rules = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus.yml").read_text())["rule_files"]
    for rule_file in rules:
        target = str(Path(config).parent / rule_file)
        assert mounted.get(target) == f"./monitoring/{rule_file}", f"{rule_file} is not mounted at {target}"
    assert services["pushgateway"]["command"] == ["--web.listen-address=:9091"]
    # The postgres service runs with the settings MetaLayer gives its embedded server.
    from pipeline.core.db import EMBEDDED_RESTART_SETTINGS, EMBEDDED_SETTINGS

    command = services["postgres"]["command"]
    assert command[0] == "postgres"
    settings = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")
    assert settings == {**EMBEDDED_SETTINGS, "shared_buffers": EMBEDDED_RESTART_SETTINGS["shared_buffers"]}


def test_ports_publish_each_listening_service_on_the_bind_address(compose):
    env = example_env()
    for name, service in compose["services"].items():
        if name not in CONTAINER_PORTS:
            assert "ports" not in service, f"{name} listens on nothing"
            continue
        (mapping,) = service["ports"]
        host, host_port, container_port = interpolate(mapping, env).split(":")
        assert host == env["BIND_ADDRESS"] == "127.0.0.1"
        assert int(container_port) == CONTAINER_PORTS[name]
        assert int(host_port) == CONTAINER_PORTS[name], f"{name}: .env.example publishes another port"
    published = [interpolate(s["ports"][0], env).split(":")[1] for s in compose["services"].values() if "ports" in s]
    assert len(published) == len(set(published))


def test_every_bind_mount_exists_in_the_repo_and_every_named_volume_is_declared(compose):
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for source, target in bind_mounts(service):
            if source == "./data/landing":
                # The extracts dir: data, not code; git-ignored and created by Compose when missing.
                assert target == "/data/landing"
                assert subprocess.run(["git", "check-ignore", "-q", "data/landing"], cwd=REPO_ROOT).returncode == 0
                continue
            assert (REPO_ROOT / source).exists(), f"{name} mounts {source}, which is not in the repo"
        for volume in named_volumes(service):
            assert volume in declared, f"{name} uses undeclared volume {volume}"
            used.add(volume)
    assert used == declared
    services = compose["services"]
    assert "pgdata" in named_volumes(services["postgres"])
    # postgres 18+ images keep their data under /var/lib/postgresql (one subdirectory per major version).
    assert "pgdata:/var/lib/postgresql" in services["postgres"]["volumes"]
    assert services["postgres"]["image"].split(":")[1].split(".")[0] >= "18"


def test_healthchecks_and_dependencies_start_the_stack_in_order(compose):
    services = compose["services"]
    for name, service in services.items():
        if name == "migrate":
            assert service["restart"] == "no"
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert set(check) <= HEALTHCHECK_KEYS
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        if name in CONTAINER_PORTS and name != "postgres":
            # The check talks to the service's own port.
            assert str(CONTAINER_PORTS[name]) in " ".join(check["test"]), name
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency]
            elif condition == "service_completed_successfully":
                assert services[dependency].get("restart") == "no"
            else:
                assert condition == "service_started"
    # Everything that touches the warehouse waits for the schema; the schema waits for a healthy server.
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APP_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        assert name not in path, f"dependency cycle {' -> '.join((*path, name))}"
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        if name not in order:
            order.append(name)

    for name in services:
        visit(name)
    assert order.index("postgres") < order.index("migrate") < order.index("scheduler")


def test_settings_come_from_env_with_every_variable_in_env_example_and_no_secret_committed(compose):
    text = COMPOSE_FILE.read_text()
    referenced = {match.group(1) for match in VARIABLE.finditer(text)}
    required = {match.group(1) for match in VARIABLE.finditer(text) if match.group(2) == "?"}
    env = example_env()
    assert referenced <= set(env), f"missing from .env.example: {referenced - set(env)}"
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "METALAYER_READER_PASSWORD"} <= required
    # The console gets its role's password; every other app service shares the common environment.
    console = compose["services"]["console"]["environment"]
    assert {key: console[key] for key in compose["x-app"]["environment"]} == compose["x-app"]["environment"]
    assert set(console) - set(compose["x-app"]["environment"]) == {
        "METALAYER_READER_PASSWORD",
        "METALAYER_OPS_PASSWORD_HASH",
    }
    for name in required:
        assert env[name] == "change-me", f"{name} in .env.example must be a placeholder"
    for name, value in env.items():
        if re.search("PASSWORD|SECRET|TOKEN", name):
            assert value in ("change-me", "''"), name
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO_ROOT).returncode == 0
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert tracked == ""
    # No literal password in the compose file: every password comes from a ${...} reference.
    environments = [compose["x-app"]["environment"], *(s.get("environment", {}) for s in compose["services"].values())]
    for environment in environments:
        for key, value in environment.items():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{[A-Z_]+:[?-][^}]*\}", value), f"{key}: {value!r}"
    assert ":${POSTGRES_PASSWORD:?" in compose["x-app"]["environment"]["DATABASE_URL"]
    # The app's database URL is built from the same variables the postgres service uses.
    url = interpolate(compose["x-app"]["environment"]["DATABASE_URL"], env)
    assert url == "postgresql://metalayer:change-me@postgres:5432/metalayer"


def test_the_luigi_overrides_name_real_settings_and_real_services(compose):
    from pipeline.core.config import metrics

    (mount,) = compose["x-app"]["configs"]
    assert compose["x-app"]["environment"]["LUIGI_CONFIG_PATH"] == mount["target"]
    content = compose["configs"][mount["source"]]["content"]
    parser = configparser.ConfigParser()
    parser.read_string(content)
    assert set(parser.sections()) == {"core", "metrics"}
    assert set(parser["metrics"]) <= set(metrics.get_param_names())
    assert parser["metrics"]["pushgateway_url"] == f"http://pushgateway:{CONTAINER_PORTS['pushgateway']}"
    assert parser["core"]["default_scheduler_url"] == f"http://luigid:{CONTAINER_PORTS['luigid']}"
    for name in APP_SERVICES:
        assert compose["services"][name]["configs"] == [mount]


def test_prometheus_and_grafana_configs_point_at_compose_services(compose):
    prometheus = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: target
        for job in prometheus["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {
        "metalayer-exporter": "exporter:9108",
        "luigid": "luigid:8082",
        "pushgateway": "pushgateway:9091",
        "prometheus": "localhost:9090",
    }
    for target in targets.values():
        host, port = target.split(":")
        if host != "localhost":
            assert CONTAINER_PORTS[host] == int(port)
    grafana = compose["services"]["grafana"]
    mounted = {source: target for source, target in bind_mounts(grafana)}
    provisioning = REPO_ROOT / "monitoring" / "grafana" / "provisioning"
    assert mounted["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == f"http://prometheus:{CONTAINER_PORTS['prometheus']}"
    provider = yaml.safe_load((provisioning / "dashboards" / "metalayer.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == mounted["./monitoring/grafana/dashboards"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == provider["options"]["path"]
    assert (REPO_ROOT / "monitoring" / "grafana" / "dashboards" / Path(home).name).is_file()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    first = path.split("/")[0]
    return any(Path(first).match(pattern.removeprefix("**/")) or Path(path).match(pattern) for pattern in patterns)


def test_the_dockerfile_builds_what_the_services_run(compose):
    instructions = dockerfile_instructions()
    base = next(rest for keyword, rest in instructions if keyword == "FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    copied = []
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, _ = rest.split()
            copied += sources
    for source in copied:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repo"
        assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    # What the code reads next to its packages (pipeline/core/db.py REPO_ROOT) is in the image.
    assert {"luigi.cfg", "sql", "pipeline", "console", "pyproject.toml"} <= {s.rstrip("/") for s in copied}
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install -e ." in runs, "sql/ and luigi.cfg are found next to the packages only in an editable install"
    assert re.search(r"apt-get install .*\bcron\b", runs), "the scheduler service runs cron"
    exposed = {int(port) for keyword, rest in instructions if keyword == "EXPOSE" for port in rest.split()}
    assert exposed == {CONTAINER_PORTS[name] for name in APP_SERVICES if name in CONTAINER_PORTS}
    for ignored in (".env", ".venv", ".metalayer", "data", ".git"):
        assert dockerignored(ignored), f"{ignored} must stay out of the build context"
