// The call page (/<room>): pre-join preview, the grid of participants,
// controls, people list, chat, active speaker and connection quality.
//
// What it is for: the DOM and the user's choices. XMPP is in xmpp.js, the
// peer connection in call.js, the Jingle mapping in jingle.js.

import { Call } from "./call.js";
import { loadConfig, RoomConnection } from "./xmpp.js";
import { LevelMeter, Quality } from "./stats.js";

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const room = decodeURIComponent(location.pathname.split("/").filter(Boolean)[0] ?? "")
  .toLowerCase()
  .replace(/[^a-z0-9._-]/g, "-");
const codec = (params.get("codec") ?? localStorage.getItem("confab.codec") ?? "vp8").toLowerCase() === "h264" ? "h264" : "vp8";
const simulcast = params.get("simulcast") !== "off";

const log = {
  info: (...a) => console.info("[confab]", ...a),
  warn: (...a) => console.warn("[confab]", ...a),
  error: (...a) => console.error("[confab]", ...a),
};

/** Everything the page knows; `window.confab` for the curious (and the tests). */
const app = {
  room,
  codec,
  nick: null,
  conn: null,
  call: null,
  stream: null,
  camera: null,
  screen: null,
  people: new Map(),
  mids: new Map(),
  // Times in ms since navigation start (performance.now()).
  timings: { load: 0, media: null, online: null, joined: null, accepted: null, connected: null, firstFrame: null },
  left: false,
};
window.confab = app;

/** Records when a step of joining first happened. */
function mark(step) {
  app.timings[step] ??= performance.now();
}

// ------------------------------------------------------------ tiles

function initials(nick) {
  return nick
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
}

function hue(nick) {
  let h = 0;
  for (const ch of nick) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function makeTile(nick, self) {
  const tile = document.createElement("div");
  tile.className = "tile no-video";
  tile.dataset.nick = nick;
  if (self) tile.classList.add("self");
  tile.innerHTML = `
    <video autoplay playsinline muted></video>
    <div class="avatar"><span></span></div>
    <div class="label"><span class="mic-off" title="Muted">${ICONS.micOff}</span><span class="name"></span></div>`;
  tile.querySelector(".avatar span").textContent = initials(nick) || "?";
  tile.querySelector(".avatar").style.setProperty("--hue", hue(nick));
  tile.querySelector(".name").textContent = self ? `${nick} (you)` : nick;
  return tile;
}

function person(nick, self = false) {
  let p = app.people.get(nick);
  if (!p) {
    p = { nick, self, role: "participant", media: { audio: "on", video: "on", screen: "off" }, tile: makeTile(nick, self), video: null, audio: new Map(), level: 0 };
    app.people.set(nick, p);
    $("#grid").append(p.tile);
    layout();
  }
  return p;
}

function removePerson(nick) {
  const p = app.people.get(nick);
  if (!p) return;
  p.tile.remove();
  for (const el of p.audio.values()) el.remove();
  app.people.delete(nick);
  for (const [mid, owner] of app.mids) if (owner === nick) app.mids.delete(mid);
  layout();
}

/** Forget every remote track (the call they came in is over); tiles stay. */
function clearMedia() {
  for (const p of app.people.values()) {
    if (p.self) continue;
    p.video = null;
    p.videoMid = null;
    p.tile.querySelector("video").srcObject = null;
    for (const el of p.audio.values()) el.remove();
    p.audio.clear();
    renderTile(p);
  }
  app.mids.clear();
}

function clearRemote() {
  for (const nick of [...app.people.keys()]) if (!app.people.get(nick).self) removePerson(nick);
}

/** Reflow the grid: the most square arrangement of 16:9 tiles. */
function layout() {
  const grid = $("#grid");
  const n = Math.max(1, app.people.size);
  const { width, height } = grid.getBoundingClientRect();
  let best = { cols: 1, size: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min(width / cols, ((height / rows) * 16) / 9);
    if (w > best.size) best = { cols, size: w };
  }
  grid.style.setProperty("--cols", best.cols);
  grid.style.setProperty("--tile-w", `${Math.floor(best.size) - 12}px`);
  renderPeople();
}
window.addEventListener("resize", layout);

function renderTile(p) {
  const t = p.tile;
  t.classList.toggle("muted", p.media.audio === "off");
  const showVideo = p.self ? app.stream?.getVideoTracks().length && (p.media.video === "on" || p.media.screen === "on") : p.video && p.media.video !== "off";
  t.classList.toggle("no-video", !showVideo);
  t.classList.toggle("screen", p.media.screen === "on");
}

function renderPeople() {
  const list = $("#people");
  list.replaceChildren();
  const sorted = [...app.people.values()].sort((a, b) => (b.self - a.self) || a.nick.localeCompare(b.nick));
  for (const p of sorted) {
    const li = document.createElement("li");
    li.dataset.nick = p.nick;
    li.className = p.tile.classList.contains("speaking") ? "speaking" : "";
    li.innerHTML = `<span class="dot" style="--hue:${hue(p.nick)}"></span><span class="who"></span><span class="badges"></span>`;
    li.querySelector(".dot").textContent = initials(p.nick);
    li.querySelector(".who").textContent = p.self ? `${p.nick} (you)` : p.nick;
    const badges = li.querySelector(".badges");
    if (p.role === "moderator") badges.insertAdjacentHTML("beforeend", `<span title="Moderator">${ICONS.star}</span>`);
    if (p.media.screen === "on") badges.insertAdjacentHTML("beforeend", `<span title="Sharing the screen">${ICONS.screen}</span>`);
    if (p.media.audio === "off") badges.insertAdjacentHTML("beforeend", `<span title="Muted">${ICONS.micOff}</span>`);
    if (p.media.video === "off") badges.insertAdjacentHTML("beforeend", `<span title="Camera off">${ICONS.camOff}</span>`);
    list.append(li);
  }
  $("#count").textContent = `${app.people.size} ${app.people.size === 1 ? "person" : "people"}`;
  $("#people-count").textContent = String(app.people.size);
}

// ------------------------------------------------------------ media

async function getMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    });
  } catch (err) {
    log.warn("camera and microphone:", err.message);
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      toast("No camera or microphone: you can still watch, listen and chat.");
      return new MediaStream();
    }
  }
}

function showSelf() {
  const p = person(app.nick, true);
  const video = p.tile.querySelector("video");
  const track = app.screen ?? app.camera;
  video.srcObject = track ? new MediaStream([track]) : null;
  p.tile.classList.toggle("mirror", !app.screen);
  renderTile(p);
}

function onTrack({ mid, owner, kind, track }) {
  const nick = owner ? owner.slice(owner.indexOf("/") + 1) : null;
  if (!nick || nick === app.nick) return;
  app.mids.set(mid, nick);
  const p = person(nick);
  if (kind === "video") {
    p.video = track;
    p.videoMid = mid;
    const video = p.tile.querySelector("video");
    video.srcObject = new MediaStream([track]);
    video.dataset.mid = mid;
    video.addEventListener(
      "loadeddata",
      () => {
        if (app.timings.firstFrame === null) {
          mark("firstFrame");
          log.info(`first remote frame ${Math.round(app.timings.firstFrame)} ms after page load`);
        }
      },
      { once: true },
    );
  } else {
    const audio = document.createElement("audio");
    audio.autoplay = true;
    audio.dataset.mid = mid;
    audio.srcObject = new MediaStream([track]);
    $("#audio").append(audio);
    p.audio.set(mid, audio);
  }
  renderTile(p);
}

function onRemoved({ mids }) {
  for (const mid of mids) {
    const nick = app.mids.get(mid);
    app.mids.delete(mid);
    const p = nick && app.people.get(nick);
    if (!p) continue;
    if (p.videoMid === mid) {
      p.video = null;
      p.videoMid = null;
      p.tile.querySelector("video").srcObject = null;
    }
    p.audio.get(mid)?.remove();
    p.audio.delete(mid);
    renderTile(p);
  }
}

// ------------------------------------------------------------ the call

async function startCall() {
  await app.media;
  const conn = app.conn;
  app.calls = (app.calls ?? 0) + 1;
  const call = new Call({ xmpp: conn.xmpp, roomJid: conn.roomJid, ownJid: conn.ownJid, stream: app.stream, codec, simulcast, log });
  app.call = call;
  conn.onJingle = (el) => call.handle(el);
  call.addEventListener("track", (e) => onTrack(e.detail));
  call.addEventListener("removed", (e) => onRemoved(e.detail));
  call.addEventListener("state", (e) => {
    if (e.detail.state === "connected") mark("connected");
    setStatus(e.detail.state);
  });
  call.addEventListener("accepted", () => mark("accepted"));
  call.addEventListener("ended", (e) => {
    if (app.call !== call) return;
    log.info("call ended:", e.detail.reason);
    clearMedia();
    if (!app.left && app.conn === conn && conn.joined) {
      // Still in the room (the media path failed, or the bridge ended the
      // session): call again, as a person would.
      setStatus("disconnected");
      setTimeout(() => {
        if (app.call === call && !app.left && app.conn === conn && conn.joined) startCall();
      }, 2000);
    }
  });
  if (app.screen) await call.replaceVideo(app.screen);
  try {
    await call.start();
  } catch (err) {
    log.error("calling the room failed:", err);
    toast("Could not start the call. Retrying…");
    call.close("failed-application");
    setTimeout(() => app.conn === conn && conn.joined && !app.left && startCall(), 3000);
  }
}

function setStatus(state) {
  const banner = $("#banner");
  const text = { new: "Connecting…", connecting: "Connecting…", disconnected: "Reconnecting…", failed: "Connection failed", offline: "Reconnecting…" }[state];
  banner.hidden = !text;
  banner.textContent = text ?? "";
  document.body.dataset.state = state;
}

async function join(nick) {
  app.nick = nick;
  localStorage.setItem("confab.name", nick);
  $("#prejoin").hidden = true;
  $("#app").hidden = false;
  document.title = `${room} · Confab`;
  showSelf();
  setStatus("connecting");
  const config = await loadConfig();
  const conn = new RoomConnection({ config, room, nick, log });
  app.conn = conn;
  conn.addEventListener("online", (e) => {
    mark("joined");
    if (e.detail.nick !== app.nick) {
      // The name was taken: the room gave us another one.
      removePerson(app.nick);
      app.nick = e.detail.nick;
      showSelf();
    }
    startCall();
  });
  conn.addEventListener("connected", () => mark("online"));
  conn.addEventListener("offline", () => {
    if (app.left) return;
    app.call?.close("gone");
    app.call = null;
    clearRemote();
    setStatus("offline");
  });
  conn.addEventListener("occupant", ({ detail }) => {
    const p = person(detail.nick, detail.self);
    p.role = detail.role;
    if (!detail.self) p.media = detail.media;
    renderTile(p);
    renderPeople();
  });
  conn.addEventListener("gone", ({ detail }) => {
    if (detail.self) {
      if (detail.kicked) leave("You were removed from the room by a moderator.");
      return;
    }
    removePerson(detail.nick);
  });
  conn.addEventListener("chat", ({ detail }) => addMessage(detail));
  conn.addEventListener("recording", ({ detail }) => ($("#rec").hidden = !detail.on));
  conn.addEventListener("subject", ({ detail }) => ($("#subject").textContent = detail.subject));
  conn.addEventListener("error", ({ detail }) => toast(detail.message));
  // Later changes (the camera becoming ready included) go through syncControls.
  conn.setMedia(localMedia());
  await conn.start().catch((err) => {
    log.error("connecting:", err);
    setStatus("offline");
  });
}

async function leave(message = "You left the call.") {
  if (app.left) return;
  app.left = true;
  app.call?.hangUp("success");
  await app.conn?.leave();
  for (const t of app.stream?.getTracks() ?? []) t.stop();
  app.screen?.stop();
  $("#app").hidden = true;
  $("#left").hidden = false;
  $("#left-message").textContent = message;
}

// ------------------------------------------------------------ controls

const micOn = () => app.stream?.getAudioTracks()[0]?.enabled ?? false;
const camOn = () => app.camera?.enabled ?? false;

/** What this participant sends, as its presence tells the room. */
function localMedia() {
  return { audio: micOn() ? "on" : "off", video: camOn() ? "on" : "off", screen: app.screen ? "on" : "off" };
}

function syncControls() {
  $("#mic").classList.toggle("off", !micOn());
  $("#mic").innerHTML = micOn() ? ICONS.mic : ICONS.micOff;
  $("#mic").title = micOn() ? "Mute (m)" : "Unmute (m)";
  $("#cam").classList.toggle("off", !camOn());
  $("#cam").innerHTML = camOn() ? ICONS.cam : ICONS.camOff;
  $("#cam").title = camOn() ? "Turn camera off (v)" : "Turn camera on (v)";
  $("#preview-mic").classList.toggle("off", !micOn());
  $("#preview-mic").innerHTML = micOn() ? ICONS.mic : ICONS.micOff;
  $("#preview-cam").classList.toggle("off", !camOn());
  $("#preview-cam").innerHTML = camOn() ? ICONS.cam : ICONS.camOff;
  $("#screen").classList.toggle("active", Boolean(app.screen));
  $("#screen").title = app.screen ? "Stop sharing" : "Share your screen";
  const media = localMedia();
  const self = app.people.get(app.nick);
  if (self) {
    self.media = media;
    renderTile(self);
    renderPeople();
  }
  app.conn?.setMedia(media);
}

function toggleMic() {
  const t = app.stream?.getAudioTracks()[0];
  if (!t) return toast("No microphone.");
  t.enabled = !t.enabled;
  syncControls();
}

function toggleCam() {
  if (!app.camera) return toast("No camera.");
  app.camera.enabled = !app.camera.enabled;
  syncControls();
}

async function toggleScreen() {
  if (app.screen) return stopScreen();
  if (!navigator.mediaDevices.getDisplayMedia) return toast("This browser cannot share the screen.");
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
  } catch {
    return;
  }
  const track = stream.getVideoTracks()[0];
  track.contentHint = "detail";
  app.screen = track;
  track.addEventListener("ended", stopScreen);
  await app.call?.replaceVideo(track);
  showSelf();
  syncControls();
}

async function stopScreen() {
  const track = app.screen;
  if (!track) return;
  app.screen = null;
  track.stop();
  await app.call?.replaceVideo(app.camera ?? null);
  showSelf();
  syncControls();
}

// ------------------------------------------------------------ chat

let unread = 0;

function addMessage({ nick, body, stamp, self }) {
  const li = document.createElement("li");
  li.className = self ? "mine" : "";
  li.innerHTML = `<div class="meta"><b></b><time></time></div><div class="body"></div>`;
  li.querySelector("b").textContent = self ? "You" : nick;
  li.querySelector("time").textContent = stamp.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  li.querySelector(".body").textContent = body;
  const list = $("#messages");
  list.append(li);
  while (list.children.length > 500) list.firstChild.remove();
  li.scrollIntoView({ block: "end" });
  if ($("#chat").hidden && !self) {
    unread += 1;
    $("#unread").textContent = String(unread);
    $("#unread").hidden = false;
  }
}

function showTab(tab) {
  for (const b of document.querySelectorAll("#side nav button")) b.classList.toggle("active", b.dataset.tab === tab);
  $("#people").hidden = tab !== "people";
  $("#chat").hidden = tab !== "chat";
  if (tab === "chat") {
    unread = 0;
    $("#unread").hidden = true;
    $("#chat-input").focus();
  }
}

// ------------------------------------------------------------ status

let toastTimer = null;
function toast(message) {
  const el = $("#toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 5000);
}

const meter = new LevelMeter();
const quality = new Quality();

async function poll() {
  const stats = await app.call?.stats().catch(() => null);
  if (stats) {
    const levels = meter.update(stats, app.mids, app.nick);
    let speaker = null;
    let loudest = 0.02;
    for (const [nick, level] of levels) {
      if (level > loudest && app.people.get(nick)?.media.audio !== "off") {
        loudest = level;
        speaker = nick;
      }
    }
    if (speaker) app.speaker = speaker;
    for (const p of app.people.values()) p.tile.classList.toggle("speaking", p.nick === app.speaker && levels.get(p.nick) > 0.01);
    const q = quality.update(stats);
    const el = $("#quality");
    el.dataset.level = String(q.level);
    el.title = q.summary;
    for (const li of document.querySelectorAll("#people li")) li.classList.toggle("speaking", li.dataset.nick === app.speaker && (levels.get(li.dataset.nick) ?? 0) > 0.01);
  } else if ($("#quality")) {
    $("#quality").dataset.level = "0";
  }
  setTimeout(poll, 500);
}

// ------------------------------------------------------------ start

const ICONS = {
  mic: `<svg viewBox="0 0 24 24"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 1 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z"/></svg>`,
  micOff: `<svg viewBox="0 0 24 24"><path d="M19 11h-2c0 .7-.2 1.4-.5 2l1.5 1.5c.6-1 1-2.2 1-3.5zm-4 .2V5a3 3 0 0 0-5.9-.8zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.3 2.7l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1c1-.1 1.9-.5 2.7-1l4 4 1.3-1.3z"/></svg>`,
  cam: `<svg viewBox="0 0 24 24"><path d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z"/></svg>`,
  camOff: `<svg viewBox="0 0 24 24"><path d="m21 6.5-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.2 0 .4-.1.5-.2l3.2 3.2 1.3-1.3z"/></svg>`,
  screen: `<svg viewBox="0 0 24 24"><path d="M20 18a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2H0v2h24v-2zm-7-3.5V12c-3 0-5 1-6.5 3 .6-2.9 2.3-5.7 6.5-6.3V6.3l4 4.1z"/></svg>`,
  star: `<svg viewBox="0 0 24 24"><path d="m12 17.3 6.2 3.7-1.6-7 5.4-4.7-7.2-.6L12 2 9.2 8.7 2 9.3l5.5 4.7-1.7 7z"/></svg>`,
};

async function main() {
  for (const el of document.querySelectorAll(".room-name")) el.textContent = room;
  $("#codec").value = codec;
  const name = (params.get("name") ?? "").trim();
  $("#name").value = name || localStorage.getItem("confab.name") || "";
  $("#share-link").addEventListener("click", async () => {
    await navigator.clipboard?.writeText(`${location.origin}/${encodeURIComponent(room)}`).catch(() => {});
    toast("Link copied.");
  });

  // The camera and the connection start together; the call waits for both.
  app.media = getMedia().then((stream) => {
    mark("media");
    app.stream = stream;
    app.camera = stream.getVideoTracks()[0] ?? null;
    $("#preview").srcObject = stream;
    syncControls();
    if (app.nick) showSelf();
  });
  $("#preview-mic").addEventListener("click", toggleMic);
  $("#preview-cam").addEventListener("click", toggleCam);

  $("#mic").addEventListener("click", toggleMic);
  $("#cam").addEventListener("click", toggleCam);
  $("#screen").addEventListener("click", toggleScreen);
  $("#leave").addEventListener("click", () => leave());
  $("#side-toggle").addEventListener("click", () => {
    $("#side").classList.toggle("closed");
    layout();
  });
  for (const b of document.querySelectorAll("#side nav button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("#chat-input");
    const body = input.value.trim();
    if (!body || !app.conn?.joined) return;
    app.conn.say(body).catch(() => toast("Not connected: the message was not sent."));
    input.value = "";
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "m") toggleMic();
    if (e.key === "v") toggleCam();
  });
  window.addEventListener("beforeunload", () => {
    app.call?.hangUp("gone");
    app.conn?.leave();
  });
  syncControls();
  poll();

  $("#join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const nick = $("#name").value.trim();
    if (!nick) return;
    const chosen = $("#codec").value;
    localStorage.setItem("confab.codec", chosen);
    if (chosen !== codec) {
      // The codec is fixed for the page's life: reload with it.
      location.search = new URLSearchParams({ name: nick, codec: chosen }).toString();
      return;
    }
    join(nick);
  });
  if (name) join(name.slice(0, 64));
  else $("#prejoin").hidden = false;
}

main();
