#!/bin/sh
# Container entry point. The first argument picks the role:
#   web                 (default) apply migrations, then serve config.asgi with uvicorn
#   worker              run the django.tasks database worker (remote deletions, retention sweep)
#   scheduler           run the retention sweep every RETENTION_SWEEP_INTERVAL seconds (600)
#   healthcheck         probe web's /healthz (the image's HEALTHCHECK)
#   healthcheck-worker  check that the worker can reach its database (it serves no HTTP)
#   anything else       run as given, e.g. `python manage.py createsuperuser`
# Arguments after the role are passed on to uvicorn or db_worker.
set -eu

role="${1:-web}"
# Read by uvicorn --workers below and by the app's system checks (several processes need Redis).
export WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "$role" in
web)
    # Only the web role migrates, before it serves, so the worker (which compose starts once web
    # is healthy) never sees an old schema. Where several web replicas start at once, set
    # DJANGO_MIGRATE=false on them and run `migrate` once as a release step instead.
    # migrate runs the system checks first; without it they run on their own, so that a
    # configuration the app refuses (e.g. several workers without Redis) never serves.
    if [ "${DJANGO_MIGRATE:-true}" = "true" ]; then
        python manage.py migrate --noinput
    else
        python manage.py check
    fi
    # The lifespan shutdown saves replies still streaming; the graceful timeout lets those that
    # are nearly done finish first. Per-message deflate is off: compressing every small fragment
    # cost 16% of the CPU and a zlib stream per socket (bench/RESULTS.md, S2).
    exec uvicorn config.asgi:application \
        --host 0.0.0.0 \
        --port 8000 \
        --proxy-headers \
        --workers "$WEB_CONCURRENCY" \
        --lifespan on \
        --ws-per-message-deflate false \
        --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-25}" \
        "$@"
    ;;
worker)
    exec python manage.py db_worker "$@"
    ;;
scheduler)
    # The sweep is idempotent and safe to overlap, so a plain loop stands in for cron.
    while true; do
        python manage.py retention_sweep || echo "retention sweep failed; retrying next round" >&2
        sleep "${RETENTION_SWEEP_INTERVAL:-600}"
    done
    ;;
healthcheck)
    # Django answers 400 to a Host outside ALLOWED_HOSTS, so the probe names the first one.
    exec python - <<'PY'
import os
import urllib.request

host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip().lstrip(".")
request = urllib.request.Request("http://127.0.0.1:8000/healthz", headers={"Host": host})
urllib.request.urlopen(request, timeout=4)
PY
    ;;
healthcheck-worker)
    # `manage.py check --database` would pass with the database down: connect instead.
    exec python - <<'PY'
import django

django.setup()
from django.db import connection

connection.ensure_connection()
PY
    ;;
*)
    exec "$role" "$@"
    ;;
esac
