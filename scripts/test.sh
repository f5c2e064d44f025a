#!/usr/bin/env bash
# Confab's whole test suite. Installs what it needs when missing, then runs
# every test of every crate. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests need, installed only when missing.
need_pkgs=()
command -v cc >/dev/null 2>&1 || need_pkgs+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}"
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Logs of failing tests are the first thing to read: keep them useful.
export RUST_LOG="${RUST_LOG:-warn}"

if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doc tests: run them first, so that nextest's
  # summary of every test is what the run ends on.
  cargo test --workspace --doc
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
