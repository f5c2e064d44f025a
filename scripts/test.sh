#!/usr/bin/env bash
# Confab's whole test suite. Installs what it needs when missing, then runs
# every test of every crate. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests need, installed only when missing.
source scripts/deps.sh
need_build_deps
# The browser client's build and the browser tests; ffprobe for recordings.
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
[ -x /usr/lib/chromium/chromium ] || [ -n "${CHROMIUM:-}" ] || need_pkgs+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need_pkgs+=(ffmpeg)
install_needed

# playwright-core and @xmpp/client need Node.js 20 (Debian 12 ships 18).
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "test.sh: Node.js 20 or newer is needed, found $(node --version) (NodeSource has Debian packages)" >&2
  exit 1
fi

# The browser client: its npm packages (locked), its unit tests, and a
# fresh build compared with the copy embedded in the binary (web/dist).
(cd web/client && npm ci --no-audit --no-fund --loglevel=error && npm test)
fresh="$(mktemp -d)"
node web/client/build.mjs "$fresh/dist" >/dev/null
if ! diff -r "$fresh/dist" web/dist >/dev/null; then
  diff -r "$fresh/dist" web/dist | head -20 || true
  echo "test.sh: web/dist is stale: run 'npm run build' in web/client and commit web/dist" >&2
  rm -rf "$fresh"
  exit 1
fi
rm -rf "$fresh"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Logs of failing tests are the first thing to read: keep them useful.
export RUST_LOG="${RUST_LOG:-warn}"

# The tree is rustfmt-formatted (rustfmt.toml) and clippy-clean; both are
# checked before anything runs.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doc tests: run them first, so that nextest's
  # summary of every test is what the run ends on.
  cargo test --workspace --doc
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
