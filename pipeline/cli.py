"""`metalayer`: a thin command line over the functions the tests and the console call."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from pipeline.core import db


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


EXIT_ALREADY_RUNNING = 75  # EX_TEMPFAIL: try again later


def _print(message: str) -> None:
    print(message, flush=True)


def _locked(run) -> int:
    """Run a pipeline call; a date already running is a clear message and exit 75, not a traceback."""
    from pipeline.core.runs import RunAlreadyRunning

    try:
        return run()
    except RunAlreadyRunning as exc:
        print(f"metalayer: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.operations.maintenance import UsageError
    from pipeline.operations.runner import print_summary, run_or_join, run_pipeline

    if args.join and (args.wait or args.run_id):
        raise UsageError("--join works for the run in progress; it does not take --wait or --run-id")

    def run() -> int:
        if args.join:
            result = run_or_join(
                args.date,
                landing=args.landing,
                workers=args.workers,
                scheduler_url=args.scheduler_url,
                trigger=args.trigger,
                printer=_print,
            )
        else:
            result = run_pipeline(
                args.date,
                landing=args.landing,
                workers=args.workers,
                scheduler_url=args.scheduler_url,
                trigger=args.trigger,
                printer=_print,
                run_id=args.run_id,
                wait=args.wait,
            )
        print_summary(result)
        return 0 if result.success else 1

    return _locked(run)


def cmd_rerun(args: argparse.Namespace) -> int:
    from pipeline.operations.maintenance import rerun
    from pipeline.operations.runner import print_summary

    def run() -> int:
        result = rerun(
            args.task,
            args.date,
            downstream=args.downstream,
            landing=args.landing,
            trigger=args.trigger,
            workers=args.workers,
            scheduler_url=args.scheduler_url,
            run_id=args.run_id,
            wait=args.wait,
            full_refresh=args.full_refresh,
            printer=_print,
        )
        print_summary(result)
        return 0 if result.success else 1

    return _locked(run)


def cmd_backfill(args: argparse.Namespace) -> int:
    from pipeline.operations.maintenance import backfill

    def run() -> int:
        result = backfill(
            args.start,
            args.end,
            on_missing=args.on_missing,
            landing=args.landing,
            trigger=args.trigger,
            workers=args.workers,
            scheduler_url=args.scheduler_url,
            printer=_print,
        )
        done = ", ".join(f"{run.run_date} {run.status}" for run in result.runs) or "no dates run"
        print(f"\nbackfill {args.start} .. {args.end}: {done}")
        if result.missing:
            print("missing extract folders: " + ", ".join(str(day) for day in result.missing))
        if result.stopped_at:
            print(f"stopped at {result.stopped_at}", file=sys.stderr)
        return 0 if result.success else 1

    return _locked(run)


def cmd_purge(args: argparse.Namespace) -> int:
    from pipeline.operations.maintenance import purge

    result = purge(args.keep_days)
    print(f"purged extract dates before {result.cutoff}:")
    for table, rows in result.deleted.items():
        print(f"  {table:<28} {rows:>12,} rows")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from pipeline.operations.maintenance import cron_entry, install_crontab

    entry = cron_entry(args.cron, scheduler_url=args.scheduler_url)
    print(entry)
    if args.install:
        (db.metalayer_home() / "logs").mkdir(parents=True, exist_ok=True)
        install_crontab(entry)
        print("installed in the crontab of this user (replacing an earlier MetaLayer line)", file=sys.stderr)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from pipeline.quickstart import quickstart

    return 0 if quickstart(Path(args.landing) if args.landing else None).success else 1


def cmd_generate(args: argparse.Namespace) -> int:
    from pipeline.sample.generate import generate

    manifests = generate(
        Path(args.out),
        args.date,
        days=args.days,
        customers=args.customers,
        orders=args.orders,
        products=args.products,
        seed=args.seed,
        customers_format=args.customers_format,
        progress=lambda message: print(message, file=sys.stderr),
        delta_orders=args.delta_orders,
        delta_weekday=args.delta_weekday,
        anomalies=dict(args.anomaly or []),
    )
    for manifest in manifests:
        files = manifest["files"]
        counts = ", ".join(f"{name}: {info['records']:,} records" for name, info in sorted(files.items()))
        print(f"{Path(args.out) / manifest['date']}: {counts}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "url":
        print(db.Warehouse.from_environment().url)
        return 0
    if args.action == "bootstrap":
        db.bootstrap(db.Warehouse.from_environment().url)
        print("schema applied:", ", ".join(path.name for path in db.schema_files()))
        return 0
    if os.environ.get("DATABASE_URL"):
        print("DATABASE_URL is set: MetaLayer does not manage that server.", file=sys.stderr)
        return 1
    print("embedded PostgreSQL stopped" if db.stop_embedded() else "embedded PostgreSQL was not running")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.bench import run_bench

    report = run_bench(
        orders=args.orders,
        customers=args.customers,
        days=args.days,
        workers=args.workers,
        keep=args.keep,
        printer=lambda message: print(message, file=sys.stderr),
    )
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    app = db.REPO_ROOT / "console" / "app.py"
    env = {**os.environ, "DATABASE_URL": db.Warehouse.from_environment().url}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    # From the repository root, so that .streamlit/config.toml and secrets.toml apply.
    return subprocess.call(command, env=env, cwd=db.REPO_ROOT)  # noqa: S603 - fixed argv, no shell


def cmd_luigid(args: argparse.Namespace) -> int:
    from pipeline.operations.scheduler import luigid_command

    command, env = luigid_command(port=args.port, address=args.address)
    print(
        f"luigid on http://{args.address}:{args.port} (config {env['LUIGI_CONFIG_PATH']})", file=sys.stderr, flush=True
    )
    # Become luigid (same pid): a supervisor's or a test's SIGTERM reaches the scheduler itself.
    os.chdir(db.REPO_ROOT)
    os.execve(command[0], command, env)  # noqa: S606 - fixed argv, no shell


def cmd_watch(args: argparse.Namespace) -> int:
    from pipeline.core.config import landing_dir, watch
    from pipeline.operations.watch import Watcher

    config = watch()
    watcher = Watcher(
        Path(args.landing).resolve() if args.landing else landing_dir(),
        quiet_seconds=config.quiet_seconds if args.quiet_seconds is None else args.quiet_seconds,
        poll_seconds=config.poll_seconds if args.poll_seconds is None else args.poll_seconds,
        workers=args.workers,
        scheduler_url=args.scheduler_url,
        printer=_print,
    )
    return watcher.serve()


def cmd_exporter(args: argparse.Namespace) -> int:
    from pipeline.operations.exporter import serve

    return serve(port=args.port, address=args.address)


def _graph_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", help="landing dir (default: METALAYER_LANDING_DIR or luigi.cfg)")
    parser.add_argument("--workers", type=int, default=1, help="Luigi workers (tasks run side by side)")
    parser.add_argument("--scheduler-url", help="central luigid, e.g. http://localhost:8082 (default: local)")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if a run of the date is in progress, wait for it instead of exiting with code 75",
    )
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument(
        "--trigger", default="cli", choices=["cli", "cron", "console", "backfill", "test"], help=argparse.SUPPRESS
    )


def _anomaly(text: str) -> tuple[date, str]:
    from pipeline.sample.generate import parse_anomaly

    day, _, spec = text.partition(":")
    try:
        parse_anomaly(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return _date(day), spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metalayer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole graph for a date with bookkeeping and a summary")
    run.add_argument("--date", type=_date, default=date.today(), help="extract date (default: today)")
    _graph_options(run)
    _run_options(run)
    run.add_argument(
        "--join",
        action="store_true",
        help="if a run of the date is in progress through a luigid (another host), work for it as one "
        "more worker instead of exiting with code 75",
    )
    run.set_defaults(func=cmd_run)

    rerun = sub.add_parser("rerun", help="invalidate a task's markers (and downstream) for a date, then run")
    rerun.add_argument("task", help="a task family (e.g. SilverSales), a layer (bronze, silver, gold) or MasterTask")
    rerun.add_argument("--date", type=_date, default=date.today(), help="extract date (default: today)")
    rerun.add_argument(
        "--no-downstream",
        dest="downstream",
        action="store_false",
        help="invalidate only the task itself, not the tasks that depend on it",
    )
    rerun.add_argument(
        "--full-refresh",
        action="store_true",
        help="recompute the incremental gold tables among them from the whole fact",
    )
    _graph_options(rerun)
    _run_options(rerun)
    rerun.set_defaults(func=cmd_rerun)

    back = sub.add_parser("backfill", help="run each date from --start to --end in order")
    back.add_argument("--start", type=_date, required=True)
    back.add_argument("--end", type=_date, required=True)
    back.add_argument(
        "--on-missing",
        choices=["stop", "skip"],
        default="stop",
        help="a date without a landing folder stops the backfill (default) or is skipped",
    )
    _graph_options(back)
    back.add_argument("--trigger", default="backfill", choices=["backfill", "console", "test"], help=argparse.SUPPRESS)
    back.set_defaults(func=cmd_backfill)

    purge = sub.add_parser("purge", help="remove bronze, quarantine and run metadata older than the retention")
    purge.add_argument("--keep-days", type=int, help="days to keep (default: luigi.cfg [operations] retention_days)")
    purge.set_defaults(func=cmd_purge)

    schedule = sub.add_parser("schedule", help="print (or --install) the crontab line of the daily run")
    schedule.add_argument("--cron", help='five-field schedule (default: luigi.cfg [operations] cron, "0 2 * * *")')
    schedule.add_argument("--install", action="store_true", help="put it into this user's crontab")
    schedule.add_argument("--scheduler-url", help="run against this luigid (default: a local scheduler)")
    schedule.set_defaults(func=cmd_schedule)

    quick = sub.add_parser("quickstart", help="what `make run` does: seed the landing dir if empty, run, summarize")
    quick.add_argument("--landing", help="landing dir (default: METALAYER_LANDING_DIR or luigi.cfg)")
    quick.set_defaults(func=cmd_quickstart)

    gen = sub.add_parser("generate", help="write deterministic sample extracts with a manifest of defects")
    gen.add_argument("--out", required=True, help="landing dir to write <YYYY-MM-DD>/ folders into")
    gen.add_argument("--date", type=_date, default=date.today(), help="first (history) folder's date")
    gen.add_argument("--days", type=int, default=1, help="folders: the history plus days-1 daily deltas")
    gen.add_argument("--customers", type=int, default=10_000)
    gen.add_argument("--orders", type=int, default=10_000, help="sales lines in the history folder")
    gen.add_argument("--products", type=int, default=88)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--customers-format", choices=["csv", "jsonl"], default="csv")
    gen.add_argument("--delta-orders", type=int, help="sales lines per daily delta (default: 1%% of --orders)")
    gen.add_argument(
        "--delta-weekday",
        action="store_true",
        help="delta sizes vary: Poisson around --delta-orders times a weekday factor",
    )
    gen.add_argument(
        "--anomaly",
        action="append",
        type=_anomaly,
        metavar="DATE:KIND[=DETAIL]",
        help="inject a labelled anomaly on a delta date (repeatable): missing_sales, prices_in_cents, "
        "region_silent[=REGION], column_null[=phone|address|city]",
    )
    gen.set_defaults(func=cmd_generate)

    dbp = sub.add_parser("db", help="the warehouse database")
    dbp.add_argument("action", choices=["url", "stop", "bootstrap"])
    dbp.set_defaults(func=cmd_db)

    bench = sub.add_parser("bench", help="benchmark on a fresh database; prints JSON")
    bench.add_argument("--orders", type=int, default=1_000_000)
    bench.add_argument("--customers", type=int, default=100_000)
    bench.add_argument("--days", type=int, default=1)
    bench.add_argument("--workers", type=int, default=1, help="Luigi workers (1 keeps per-task rates uncontended)")
    bench.add_argument("--keep", action="store_true", help="keep the benchmark database and files")
    bench.set_defaults(func=cmd_bench)

    console = sub.add_parser("console", help="start the Streamlit console")
    console.add_argument("--port", type=int, default=8501)
    console.set_defaults(func=cmd_console)

    luigid = sub.add_parser("luigid", help="start the central Luigi scheduler with its visualiser")
    luigid.add_argument("--port", type=int, default=8082)
    luigid.add_argument("--address", default="0.0.0.0", help="listen address (default: all interfaces)")  # noqa: S104
    luigid.set_defaults(func=cmd_luigid)

    watch = sub.add_parser("watch", help="run each landing date once, as soon as its folder is complete")
    _graph_options(watch)
    watch.add_argument(
        "--quiet-seconds",
        type=float,
        help="a folder without _SUCCESS runs when its contract files are unchanged this long "
        "(default: luigi.cfg [watch] quiet_seconds, 30)",
    )
    watch.add_argument(
        "--poll-seconds",
        type=float,
        help="how often the landing dir is looked at (default: luigi.cfg [watch] poll_seconds, 5)",
    )
    watch.set_defaults(func=cmd_watch)

    exporter = sub.add_parser("exporter", help="serve Prometheus metrics read from the meta tables")
    exporter.add_argument("--port", type=int, default=9108)
    exporter.add_argument("--address", default="0.0.0.0", help="listen address (default: all interfaces)")  # noqa: S104
    exporter.set_defaults(func=cmd_exporter)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.operations.maintenance import UsageError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"metalayer {args.command}: {exc}", file=sys.stderr)
        return 2
    except (db.UnsupportedServer, db.EmbeddedServerError) as exc:
        # The message says what is wrong and what to do; a traceback would only bury it.
        print(f"metalayer {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
