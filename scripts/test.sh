#!/usr/bin/env bash
# Runs every test of the workspace (installs system packages first when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
HOOD_SETUP_TESTS=1
source scripts/setup.sh
# The Vulkan backend is tested on Mesa's lavapipe (installed by setup.sh); a missing device is a
# failure here, not a skip.
export HOOD_VK_REQUIRE_DEVICE=1
# The validation-layer test must run, not skip (setup.sh installs vulkan-validationlayers).
export HOOD_VK_REQUIRE_VALIDATION=1
cargo test --workspace --all-targets --features "$HOOD_TEST_FEATURES"
