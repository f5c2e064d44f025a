# Debian packages Confab needs, installed only when missing. Sourced by
# run.sh (building and starting Confab) and test.sh (the test suite).

need_pkgs=()

# What building Confab needs: a C/C++ toolchain, pkg-config, libvpx (the
# recorder's VP8 decoder and encoder, the load tester's VP8), libopus (the
# recorder's audio mix), and nasm for OpenH264 (without it OpenH264
# builds without its assembly and encodes about 3x slower).
need_build_deps() {
  command -v cc >/dev/null 2>&1 || need_pkgs+=(build-essential)
  command -v c++ >/dev/null 2>&1 || need_pkgs+=(g++)
  command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
  pkg-config --exists vpx 2>/dev/null || need_pkgs+=(libvpx-dev)
  pkg-config --exists opus 2>/dev/null || need_pkgs+=(libopus-dev)
  command -v nasm >/dev/null 2>&1 || need_pkgs+=(nasm)
}

# Install what was found missing (as root, or through sudo).
install_needed() {
  [ ${#need_pkgs[@]} -gt 0 ] || return 0
  echo "installing ${need_pkgs[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # dpkg may trip over a crowded /tmp while unpacking Chromium.
  local apt_tmp
  apt_tmp="$(mktemp -d)"
  $sudo env TMPDIR="$apt_tmp" apt-get update -qq
  $sudo env TMPDIR="$apt_tmp" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  rm -rf "$apt_tmp"
}
