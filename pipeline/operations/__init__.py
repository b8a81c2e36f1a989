"""Running and watching the pipeline: runner, maintenance (rerun, backfill, purge), SLA, alerts, metrics and the exporter, luigid, the landing watcher."""
