#!/usr/bin/env bash
# Runs every test of the workspace (installs system packages first when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --all-targets
