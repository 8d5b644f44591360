#!/usr/bin/env bash
# Runs `ortaq bench exchange` with the RabbitMQ baseline side by side. Makes a Python virtual
# environment with pika under target/ on first use; RabbitMQ must listen on 127.0.0.1:5672
# (guest/guest) or at $AMQP_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
if ! "$venv/bin/python" -c 'import pika' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'pika==1.3.2'
fi
cargo build --release --quiet
exec target/release/ortaq bench exchange --rabbitmq "$venv/bin/python" "$@"
