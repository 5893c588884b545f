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
cargo test --workspace

step "openapi-spec-validator generated/openapi.json"
.venv/bin/openapi-spec-validator generated/openapi.json

step "all tests passed"
