#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, the Rust workspace (unit, codegen
# snapshots, integration and contract tests), the external OpenAPI validator, the TypeScript
# and Python SDKs against a real server (the debug binary; the Rust SDK's live tests run with the
# workspace; the TypeScript suite includes the npm graphql-ws client), @graphql-codegen/cli on
# the seed's GraphQL documents, and the legacy subprotocol's npm client
# (subscriptions-transport-ws). Python tools and the Python SDK go into .venv (created on first
# run); the npm packages into sdk/typescript, tests/graphql-codegen and tests/legacy-graphql-ws
# (from their lock files).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "python tools (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt

step "cargo fmt --check"
cargo fmt --all -- --check

step "module cycles (layers point one way; a copy of ../shared/tools/module-cycles.py)"
python3 scripts/module-cycles.py

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The server binary first: the Rust SDK's live tests (sdk/rust/tests/live.rs, part of the
# workspace run below) start it, as do the TypeScript and Python suites.
step "cargo build --bin rustydb"
cargo build --quiet --bin rustydb

step "cargo test (workspace, including the Rust SDK against a live server)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"

step "openapi-spec-validator generated/openapi.json"
.venv/bin/openapi-spec-validator generated/openapi.json

step "TypeScript SDK: tsc --strict, live-server tests (REST, events, graphql-ws subscriptions)"
(cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error && npm test) 2>&1 | tee -a "$log"

step "GraphQL contract: @graphql-codegen/cli types from generated/schema.graphql and the seed's documents, tsc"
(cd tests/graphql-codegen && npm ci --no-audit --no-fund --loglevel=error && npm test) 2>&1 | tee -a "$log"

step "Legacy graphql-ws: subscriptions-transport-ws over a live server (periodic ka, no lost change)"
(cd tests/legacy-graphql-ws && npm ci --no-audit --no-fund --loglevel=error && npm test) 2>&1 | tee -a "$log"

step "Python SDK: mypy --strict, live-server tests"
(cd sdk/python && ../../.venv/bin/mypy rustydb_client tests && ../../.venv/bin/python -m pytest -q) 2>&1 | tee -a "$log"

# One closing line for the whole run (doc-test binaries with zero tests print the last
# `test result` line otherwise).
# Counts cargo's `test result:` lines, node's `# pass N` / `# fail N` and pytest's summary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     /^# pass [0-9]+$/ { p += $3 } /^# fail [0-9]+$/ { f += $3 }
     /^[0-9]+ (passed|failed)(, [0-9]+ (passed|failed))* in [0-9.]+s/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed,?$/) p += $(i-1); if ($(i) ~ /^failed,?$/) f += $(i-1) } }
     END { printf "\n%d passed, %d failed\n", p, f }' "$log"
