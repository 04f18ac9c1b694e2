#!/usr/bin/env bash
# Runs every test of the workspace. The NATS tests start their own nats-server
# (Debian's package, /usr/sbin/nats-server); it is installed here when missing, as are
# chromium, Playwright and openpyxl for the web app's browser test, aiosmtpd and
# standardwebhooks for the deliveries' test.
#   tests/run.sh            # all tests
#   tests/run.sh -- kill_9  # arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    echo "tests/run.sh: installing nats-server (the NATS tests start their own)" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
    fi
fi

# The web app's browser test drives Debian's chromium with Playwright for Python (the
# system browser; Playwright's own download is never used) and reads workbooks with
# openpyxl: installed here when missing.
apt_install() {
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    fi
}
if ! command -v chromium >/dev/null 2>&1; then
    echo "tests/run.sh: installing chromium (the web app's browser test)" >&2
    apt_install chromium
fi
# The deliveries' test runs a real SMTP server (aiosmtpd) and verifies signed webhooks
# with the official standardwebhooks library.
if ! python3 -c "import playwright, openpyxl, aiosmtpd, standardwebhooks" >/dev/null 2>&1; then
    echo "tests/run.sh: installing playwright, openpyxl, aiosmtpd and standardwebhooks for Python" >&2
    # A Debian system Python refuses pip without --break-system-packages (PEP 668).
    python3 -m pip install -q playwright openpyxl aiosmtpd standardwebhooks \
        || python3 -m pip install -q --user --break-system-packages playwright openpyxl aiosmtpd standardwebhooks
fi

cargo test --workspace "$@"
