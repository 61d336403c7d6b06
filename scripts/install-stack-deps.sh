#!/bin/sh
# What `make airflow EXECUTOR=celery`, the Celery stack's tests and the shared-pace tests need beyond
# uv.lock: Debian's redis-server (the Celery broker and the shared pace) and PostgreSQL server (the
# metadata database), installed with apt-get when missing (as root, or through `sudo -n`), and the
# unprivileged user the throwaway PostgreSQL cluster runs as when the stack runs as root (PostgreSQL
# refuses root). With `redis` as the only argument, only redis-server is checked (the test suite).
set -eu

SERVER_USER=gooten-postgres
packages=""
if ! command -v redis-server >/dev/null 2>&1; then
    packages="redis-server"
fi
if [ "${1:-all}" != "redis" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    packages="$packages postgresql"
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    as_root="none"
fi

if [ -n "$packages" ]; then
    if [ "$as_root" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing $packages: install them (Debian: apt-get install -y $packages) as root" >&2
        exit 1
    fi
    echo "Installing Debian's$packages (apt-get) ..."
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    # the packaged services are not used: each stack and test starts its own server on a free port of
    # 127.0.0.1
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
fi

if [ "${1:-all}" != "redis" ] && [ "$(id -u)" -eq 0 ] && ! id "$SERVER_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVER_USER"
fi
command -v redis-server >/dev/null
