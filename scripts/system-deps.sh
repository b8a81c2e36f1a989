#!/usr/bin/env bash
# Debian packages the tests need: Prometheus and the Pushgateway (observability
# smoke test), Chromium and ChromeDriver (the console's browser test), PostgreSQL
# 15 (tests/test_postgres_versions.py starts its own password-authenticated
# server from its binaries beside the embedded 18).
# Installs only what is missing; needs root or passwordless sudo.
set -euo pipefail
need=()
{ command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
