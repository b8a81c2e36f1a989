# syntax=docker/dockerfile:1
# The MetaLayer app image. docker-compose.yml runs every app service from it:
# migrate (schema), luigid, scheduler (cron), console and exporter.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    METALAYER_HOME=/var/lib/metalayer \
    METALAYER_LANDING_DIR=/data/landing

# cron runs the daily pipeline in the scheduler service, at TZ's local time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cron tzdata \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so a code change does not reinstall them: an editable
# install of empty packages. It stays editable because MetaLayer reads sql/ and
# luigi.cfg next to its packages (pipeline/core/db.py REPO_ROOT).
COPY pyproject.toml README.md ./
RUN mkdir pipeline console \
    && touch pipeline/__init__.py console/__init__.py \
    && pip install -e .

COPY luigi.cfg ./
COPY sql ./sql
COPY pipeline ./pipeline
COPY console ./console
RUN mkdir -p "$METALAYER_HOME/logs" "$METALAYER_LANDING_DIR"

# luigid, console, exporter
EXPOSE 8082 8501 9108
CMD ["metalayer", "--help"]
