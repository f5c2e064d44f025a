// Confab's admin page: rooms, participants, their tracks, codecs and
// bitrates, polled from the admin API every 2 seconds. Plain JS, no build.
//
//   GET /api/rooms         -> { rooms: [{ name, jid, participants, in_call }] }
//   GET /api/rooms/<room>  -> { name, jid, subject, participants: [{ nick, role,
//                               in_call, connected, rtt_ms, bytes_in, bytes_out,
//                               tracks: [...], receives: [...] }] }
//   GET /api/recordings    -> { recording: [{ room, started_unix, by }],
//                               files: [{ name, url, size, modified_unix, in_progress }] }
//   POST | DELETE /api/rooms/<room>/recording: start | stop recording the room
//   (the recording routes answer 401 without the admin token, when one is
//   set, or 403 to other machines when none is)
"use strict";

const POLL_MS = 2000;
const $ = (sel) => document.querySelector(sel);

/** A DOM element with attributes and children (strings become text, never HTML). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function bitrate(bps) {
  if (!bps) return "0 bit/s";
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(0)} kbit/s`;
  return `${bps} bit/s`;
}

const count = (n) => Number(n ?? 0).toLocaleString();
const loss = (l) => (l === null || l === undefined ? "–" : `${(l * 100).toFixed(1)}%`);

/** The room shown in detail: from the URL's #room=<name>. */
function selected() {
  return new URLSearchParams(location.hash.slice(1)).get("room");
}

function select(name) {
  location.hash = new URLSearchParams({ room: name }).toString();
}

async function getJson(url) {
  const res = await fetch(url, { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

function renderRooms(rooms) {
  const tbody = $("#rooms tbody");
  const current = selected();
  tbody.replaceChildren();
  if (!rooms.length) {
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: 4 }, "No rooms right now.")));
  }
  for (const r of rooms) {
    const tr = el(
      "tr",
      { class: r.name === current ? "selected" : "" },
      el("td", {}, el("span", { class: "mono" }, r.name)),
      el("td", { class: "num" }, count(r.participants)),
      el("td", { class: "num" }, count(r.in_call)),
      el("td", { class: "num" }, el("a", { href: `/${encodeURIComponent(r.name)}`, target: "_blank", rel: "noopener" }, "Open")),
    );
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      select(r.name);
    });
    tbody.append(tr);
  }
  $("#t-rooms").textContent = count(rooms.length);
  $("#t-people").textContent = count(rooms.reduce((n, r) => n + r.participants, 0));
  $("#t-calls").textContent = count(rooms.reduce((n, r) => n + r.in_call, 0));
}

function trackRows(tracks) {
  if (!tracks.length) return el("span", { class: "muted" }, "nothing");
  return el(
    "table",
    { class: "tracks" },
    tracks.map((t) =>
      el(
        "tr",
        {},
        el("td", { class: "kind" }, t.kind),
        el("td", { class: "codec" }, t.codec ?? "–"),
        el("td", { class: "muted" }, t.rids.length ? `simulcast ${t.rids.join("/")}` : ""),
        el("td", { class: "num", title: "received from the participant" }, `in ${bitrate(t.bitrate_in_bps)}`),
        el("td", { class: "num", title: `forwarded to ${t.subscribers} participant(s)` }, `out ${bitrate(t.bitrate_out_bps)}`),
        el("td", { class: "num muted" }, `${count(t.packets_in)} pkts`),
        el("td", { class: t.loss > 0.02 ? "num lossy" : "num muted", title: "loss from the participant" }, `loss ${loss(t.loss)}`),
      ),
    ),
  );
}

function receiveRows(receives) {
  if (!receives.length) return el("span", { class: "muted" }, "nothing");
  return el(
    "table",
    { class: "tracks" },
    receives.map((r) =>
      el(
        "tr",
        {},
        el("td", {}, r.from ?? "(gone)"),
        el("td", { class: "kind" }, r.kind),
        el("td", { class: "codec" }, r.codec ?? "–"),
        el("td", { class: "num" }, bitrate(r.bitrate_bps)),
        el("td", { class: r.loss > 0.02 ? "num lossy" : "num muted", title: "loss toward the participant" }, `loss ${loss(r.loss)}`),
        el("td", { class: "num muted", title: "NACKs and keyframe requests (PLI/FIR) the participant sent" }, `NACK ${count(r.nacks)} · PLI ${count(r.keyframe_requests)}`),
      ),
    ),
  );
}

function callBadge(p) {
  if (!p.in_call) return el("span", { class: "badge" }, "not in call");
  if (!p.connected) return el("span", { class: "badge wait" }, "connecting");
  return el("span", { class: "badge ok" }, "connected");
}

function renderRoom(room) {
  $("#room-gone").hidden = true;
  $("#room-name").textContent = room.name;
  $("#room-subject").textContent = room.subject ? `“${room.subject}”` : "";
  $("#room-open").href = `/${encodeURIComponent(room.name)}`;
  const tbody = $("#participants tbody");
  tbody.replaceChildren();
  if (!room.participants.length) {
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "Nobody is in this room.")));
  }
  let inBps = 0;
  let outBps = 0;
  for (const p of room.participants) {
    for (const t of p.tracks) inBps += t.bitrate_in_bps;
    for (const r of p.receives) outBps += r.bitrate_bps;
    tbody.append(
      el(
        "tr",
        {},
        el("td", {}, el("span", { class: "nick" }, p.nick), el("span", { class: "role" }, p.role)),
        el("td", {}, callBadge(p)),
        el("td", { class: "num" }, p.rtt_ms === null ? "–" : `${p.rtt_ms.toFixed(1)} ms`),
        el("td", {}, trackRows(p.tracks)),
        el("td", {}, receiveRows(p.receives)),
      ),
    );
  }
  $("#t-in").textContent = bitrate(inBps);
  $("#t-out").textContent = bitrate(outBps);
}

function size(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${bytes} B`;
}

let recordingRooms = new Set();

function renderRecordings(list) {
  recordingRooms = new Set((list.recording ?? []).map((r) => r.room));
  const tbody = $("#recordings tbody");
  tbody.replaceChildren();
  const files = list.files ?? [];
  if (!files.length) {
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: 4 }, "No recordings yet.")));
  }
  for (const f of files) {
    tbody.append(
      el(
        "tr",
        {},
        el("td", { class: "mono" }, f.name),
        el("td", { class: "num" }, size(f.size)),
        el("td", {}, f.in_progress ? "recording…" : new Date(f.modified_unix * 1000).toLocaleString()),
        el("td", {}, f.in_progress ? "" : el("a", { href: f.url, download: f.name }, "Download")),
      ),
    );
  }
  const name = selected();
  const on = name !== null && recordingRooms.has(name.toLowerCase());
  const button = $("#room-record");
  button.textContent = on ? "Stop recording" : "Start recording";
  button.dataset.on = on ? "1" : "";
}

async function toggleRecording() {
  const name = selected();
  if (!name) return;
  const method = $("#room-record").dataset.on ? "DELETE" : "POST";
  const res = await fetch(`/api/rooms/${encodeURIComponent(name)}/recording`, { method });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    setStatus("error", `Recording: ${body.error ?? `HTTP ${res.status}`}`);
    return;
  }
  poll();
}

function setStatus(state, text) {
  const s = $("#status");
  s.dataset.state = state;
  s.textContent = text;
}

async function poll() {
  try {
    const { status, body } = await getJson("/api/rooms");
    if (status !== 200) throw new Error(body.error ?? `HTTP ${status}`);
    const rooms = body.rooms ?? [];
    if (!selected() && rooms.length) select(rooms[0].name);
    renderRooms(rooms);

    const name = selected();
    $("#room-panel").hidden = !name;
    if (name) {
      const detail = await getJson(`/api/rooms/${encodeURIComponent(name)}`);
      if (detail.status === 200) {
        renderRoom(detail.body);
      } else {
        $("#room-name").textContent = name;
        $("#room-gone").hidden = false;
        $("#room-gone").textContent = detail.body.error ?? "This room no longer exists.";
        $("#participants tbody").replaceChildren();
        $("#t-in").textContent = "–";
        $("#t-out").textContent = "–";
      }
    }
    const recordings = await getJson("/api/recordings");
    $("#unlock").hidden = recordings.status !== 401 && recordings.status !== 403;
    $("#unlock-token").hidden = recordings.status !== 401;
    $("#unlock button").hidden = recordings.status !== 401;
    if (recordings.status === 200) renderRecordings(recordings.body);
    else if (!$("#unlock").hidden) $("#unlock-why").textContent = recordings.body.error ?? `HTTP ${recordings.status}`;
    setStatus("live", `Live · ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus("error", `Cannot reach the bridge: ${err.message}`);
  }
}

// The bridge asks for its admin token: keep it in a cookie, which the
// download links then carry too.
$("#unlock").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("#unlock-token").value.trim();
  if (!/^[A-Za-z0-9\-_.~+/=]+$/.test(token)) {
    $("#unlock-why").textContent = "An admin token is made of letters, digits and - _ . ~ + / =.";
    return;
  }
  document.cookie = `confab_admin=${token}; Path=/; SameSite=Strict`;
  $("#unlock-token").value = "";
  poll();
});

window.addEventListener("hashchange", poll);
$("#room-record").addEventListener("click", toggleRecording);
poll();
setInterval(poll, POLL_MS);
