#!/usr/bin/env bash
# Confab and Janus side by side, in one run of confab-loadtest, on this host.
#
# libnice (Janus) never uses loopback addresses for ICE, so everything runs
# in a network namespace this script makes, on a veth interface with
# 10.77.0.1/24 (both ends in the namespace); no packet leaves the namespace. Needs root, `apt-get
# install janus`, and the binaries built: cargo build -p confab -p confab-loadtest
#
#   loadtest/bench/side-by-side.sh [confab-loadtest options...]
#   e.g. loadtest/bench/side-by-side.sh --participants 6 --duration 30 --json out.json --plot out.svg
#
# Only the videoroom plugin and the HTTP transport of Janus are loaded;
# Janus and Confab run in the foreground of this script and are stopped,
# and the namespace removed, when it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${CARGO_TARGET_DIR:-target}/debug"
ns="confab-lt-$$"
addr=10.77.0.1
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
# A veth pair with both ends inside the namespace (no dummy driver needed).
ip -n "$ns" link add lt0 type veth peer name lt1
ip -n "$ns" addr add "$addr/24" dev lt0
ip -n "$ns" link set lt1 up
ip -n "$ns" link set lt0 up

# A private Janus configuration: videoroom + HTTP on the namespace address.
conf="$work/janus"
mkdir -p "$conf"
cp /etc/janus/janus.plugin.videoroom.jcfg "$conf/"
plugins=$(cd /usr/lib/x86_64-linux-gnu/janus/plugins && ls *.so | grep -v videoroom | paste -sd, -)
transports=$(cd /usr/lib/x86_64-linux-gnu/janus/transports && ls *.so | grep -v 'libjanus_http' | paste -sd, -)
cat > "$conf/janus.jcfg" <<EOF
general: {
  configs_folder = "$conf"
  plugins_folder = "/usr/lib/x86_64-linux-gnu/janus/plugins"
  transports_folder = "/usr/lib/x86_64-linux-gnu/janus/transports"
  events_folder = "/usr/lib/x86_64-linux-gnu/janus/events"
  loggers_folder = "/usr/lib/x86_64-linux-gnu/janus/loggers"
  debug_level = 2
  admin_secret = "janusoverlord"
  protected_folders = ["/bin", "/boot", "/dev", "/etc", "/initrd", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr", "/var"]
}
media: {
  rtp_port_range = "40000-50000"
}
nat: {
  ice_enforce_list = "$addr"
}
plugins: { disable = "$plugins" }
transports: { disable = "$transports" }
loggers: { disable = "libjanus_jsonlog.so" }
events: { }
EOF
cat > "$conf/janus.transport.http.jcfg" <<EOF
general: { json = "compact" base_path = "/janus" http = true port = 8088 ip = "$addr" https = false }
admin: { admin_base_path = "/admin" admin_http = false admin_https = false }
cors: { }
certificates: { }
EOF

ip netns exec "$ns" janus -F "$conf" -C "$conf/janus.jcfg" -N -o -L "$work/janus.log" &
pids+=($!); janus_pid=$!
ip netns exec "$ns" "$bin/confab" --bind 127.0.0.1 --http-port 8080 --xmpp-port 5222 \
  --media-bind "$addr" --media-port 10000 > "$work/confab.log" 2>&1 &
pids+=($!); confab_pid=$!
for _ in $(seq 50); do
  if ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$addr/8088 && exec 3<>/dev/tcp/127.0.0.1/8080" 2>/dev/null; then break; fi
  sleep 0.2
done

# Each target is measured with its own pid; the tool runs them in turn.
ip netns exec "$ns" "$bin/confab-loadtest" --target confab --target janus \
  --xmpp ws://127.0.0.1:8080/xmpp-websocket --janus "http://$addr:8088/janus" \
  --media-ip "$addr" --confab-pid "$confab_pid" --janus-pid "$janus_pid" "$@"
