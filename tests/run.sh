#!/usr/bin/env bash
# Runs every test of the workspace. The NATS tests start their own nats-server
# (Debian's package, /usr/sbin/nats-server); it is installed here when missing.
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

cargo test --workspace "$@"
