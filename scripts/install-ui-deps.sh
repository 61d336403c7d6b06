#!/bin/sh
# What the browser tests (tests/ui, `make test-ui`) need beyond uv.lock: Debian's Chromium.
# Playwright (from uv.lock) drives /usr/bin/chromium through executable_path; no browser is downloaded.
# Installs the `chromium` package with apt-get when /usr/bin/chromium is missing (as root, or through
# `sudo -n`). With GOOTEN_UI_CHROMIUM set to another binary, only checks that it exists.
set -eu

if [ -n "${GOOTEN_UI_CHROMIUM:-}" ]; then
    if [ -x "$GOOTEN_UI_CHROMIUM" ]; then
        exit 0
    fi
    echo "error: GOOTEN_UI_CHROMIUM=$GOOTEN_UI_CHROMIUM is not an executable file" >&2
    exit 1
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: /usr/bin/chromium is missing and there is no apt-get: install Chromium, then set" \
        "GOOTEN_UI_CHROMIUM to its binary" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "error: /usr/bin/chromium is missing: run 'apt-get update && apt-get install -y chromium' as root" >&2
    exit 1
fi

echo "Installing Debian's chromium for the browser tests (apt-get) ..."
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
test -x /usr/bin/chromium
