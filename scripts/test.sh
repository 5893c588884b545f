#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, the Rust workspace (unit, codegen
# snapshots, integration and contract tests), and the external OpenAPI validator.
# Python tools go into .venv (created on first run). SDK suites join here as the SDKs land.
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

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (workspace)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"

step "openapi-spec-validator generated/openapi.json"
.venv/bin/openapi-spec-validator generated/openapi.json

# One closing line for the whole run (doc-test binaries with zero tests print the last
# `test result` line otherwise).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\n%d passed, %d failed\n", p, f }' "$log"
