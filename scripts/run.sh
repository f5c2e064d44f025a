#!/usr/bin/env bash
# Build and start Confab with its embedded defaults (installing the system
# libraries the build needs when missing). Arguments go to `confab`, e.g.
# `./scripts/run.sh --config confab.toml`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
need_build_deps
install_needed
exec cargo run --bin confab -- "$@"
