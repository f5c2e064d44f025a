// A real call in headless Chromium: three browsers, each with its own fake
// camera and microphone (distinct y4m and wav files made with ffmpeg), join
// one room of a running Confab through the call page and check what a
// person would: both others' video decodes, their audio arrives, chat
// reaches everyone, recording shows (and, given the bridge's admin token,
// the admin page unlocks and lists the files), mute shows, and a
// participant who leaves disappears.
//
//   node e2e/call.mjs --base http://127.0.0.1:8080 --codec vp8|h264 \
//        [--out DIR] [--chromium PATH] [--room NAME] [--admin-token TOKEN]
//
// Prints one JSON report as its last line; exits 1 with the failed check
// otherwise. The Rust test `browser_call` runs it against a Confab it starts.

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const base = args.base ?? "http://127.0.0.1:8080";
const codec = args.codec === "h264" ? "h264" : "vp8";
const out = args.out ?? join(process.cwd(), "e2e-artifacts");
const room = args.room ?? `e2e-${codec}-${process.pid}`;
const adminToken = args["admin-token"];
const executablePath = args.chromium ?? process.env.CHROMIUM ?? "/usr/lib/chromium/chromium";
const MIME = { vp8: "video/VP8", h264: "video/H264" }[codec];
const PEOPLE = [
  { nick: "alice", pattern: "testsrc2", tone: 330 },
  { nick: "bob", pattern: "smptehdbars", tone: 440 },
  { nick: "carol", pattern: "mandelbrot", tone: 550 },
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[e2e ${codec}]`, ...a);

class CheckFailed extends Error {}

/**
 * Polls `check` until it holds or `ms` pass. `check` returns a truthy value
 * when satisfied, or `[false, what it saw]` to report on failure.
 */
async function eventually(what, ms, check) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const r = await check();
      if (Array.isArray(r) && r[0] === false) last = r[1];
      else if (r) return r;
      else last = r;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > until) throw new CheckFailed(`${what} (last seen: ${JSON.stringify(last)})`);
    await sleep(250);
  }
}

function makeMedia(dir) {
  for (const p of PEOPLE) {
    p.video = join(dir, `${p.nick}.y4m`);
    p.audio = join(dir, `${p.nick}.wav`);
    // 720p so that Chromium sends all three simulcast layers; a short loop
    // keeps the file small (Chromium replays it).
    execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", `${p.pattern}=size=1280x720:rate=15`, "-frames:v", "15", "-pix_fmt", "yuv420p", p.video]);
    execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", `sine=frequency=${p.tone}:sample_rate=48000:duration=10`, "-ac", "1", p.audio]);
  }
}

/** Waits until `p` decodes more frames from `from` than it had when called. */
async function keepsDecoding(p, from, what) {
  const start = (await snapshot(p.page)).remote[from]?.framesDecoded ?? 0;
  await eventually(what, 10_000, async () => {
    const now = (await snapshot(p.page)).remote[from];
    return now?.framesDecoded > start ? true : [false, now];
  });
}

async function launch(p) {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--autoplay-policy=no-user-gesture-required",
      `--use-file-for-fake-video-capture=${p.video}`,
      `--use-file-for-fake-audio-capture=${p.audio}`,
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning" || /first remote frame|call ended/.test(m.text())) log(`${p.nick}: ${m.text()}`);
  });
  page.on("pageerror", (e) => log(`${p.nick}: page error: ${e.message}`));
  return { ...p, browser, page };
}

/** What one page receives, per remote nick, and what it sends. */
function snapshot(page) {
  return page.evaluate(async () => {
    const app = window.confab;
    const stats = await app.call?.stats();
    const remote = {};
    const out = { video: [], codec: null };
    if (stats) {
      const codecs = new Map([...stats.values()].filter((s) => s.type === "codec").map((s) => [s.id, s.mimeType]));
      for (const s of stats.values()) {
        if (s.type === "inbound-rtp") {
          const nick = app.mids.get(s.mid);
          if (!nick) continue;
          const r = (remote[nick] ??= {});
          if (s.kind === "video") Object.assign(r, { framesDecoded: s.framesDecoded ?? 0, codec: codecs.get(s.codecId) ?? null, width: s.frameWidth ?? 0 });
          else Object.assign(r, { audioEnergy: s.totalAudioEnergy ?? 0, audioBytes: s.bytesReceived ?? 0 });
        } else if (s.type === "outbound-rtp" && s.kind === "video") {
          out.video.push({ rid: s.rid ?? null, bytes: s.bytesSent ?? 0 });
          out.codec = codecs.get(s.codecId) ?? out.codec;
        }
      }
    }
    const sdp = app.call?.pc?.remoteDescription?.sdp ?? "";
    return {
      nick: app.nick,
      tiles: [...document.querySelectorAll("#grid .tile")].map((t) => t.dataset.nick),
      remote,
      out,
      answerHasRidRecv: /a=rid:q recv/.test(sdp) && /a=rid:f recv/.test(sdp),
      answerHasSimulcastRecv: /a=simulcast:recv q;h;f/.test(sdp),
      messages: [...document.querySelectorAll("#messages .body")].map((b) => b.textContent),
      mutedTiles: [...document.querySelectorAll("#grid .tile.muted")].map((t) => t.dataset.nick),
      screenTiles: [...document.querySelectorAll("#grid .tile.screen")].map((t) => t.dataset.nick),
      calls: app.calls ?? 0,
      firstFrameMs: app.timings.firstFrame === null ? null : Math.round(app.timings.firstFrame),
      timings: Object.fromEntries(Object.entries(app.timings).map(([k, v]) => [k, v === null ? null : Math.round(v)])),
      connection: app.call?.pc?.connectionState ?? null,
    };
  });
}

async function main() {
  mkdirSync(out, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), "confab-e2e-"));
  const peers = [];
  try {
    makeMedia(scratch);
    for (const p of PEOPLE) peers.push(await launch(p));
    for (const p of peers) {
      await p.page.goto(`${base}/${room}?name=${p.nick}&codec=${codec}`);
    }

    // Everyone sees both others' video decoding and hears their audio.
    const before = {};
    for (const p of peers) {
      const others = peers.filter((o) => o !== p).map((o) => o.nick);
      before[p.nick] = await eventually(`${p.nick} decodes video and audio from ${others}`, 45_000, async () => {
        const s = await snapshot(p.page);
        const ok = others.every((o) => s.remote[o]?.framesDecoded > 0 && s.remote[o]?.audioEnergy > 0);
        return ok ? s : [false, s.remote];
      });
    }
    // ... and keeps doing so. (Polled rather than sampled once after a
    // fixed pause: on a busy machine a page may decode nothing for a
    // second without anything being wrong.)
    const report = { codec, room, firstFrameMs: null, pages: {} };
    for (const p of peers) {
      const others = peers.filter((o) => o !== p).map((o) => o.nick);
      const was = before[p.nick].remote;
      const s = await eventually(`${p.nick} keeps decoding video and audio from ${others}`, 15_000, async () => {
        const s = await snapshot(p.page);
        const ok = others.every((o) => s.remote[o]?.framesDecoded > was[o].framesDecoded && s.remote[o]?.audioEnergy > was[o].audioEnergy);
        return ok ? s : [false, s.remote];
      });
      for (const o of others) {
        if (s.remote[o].codec !== MIME) throw new CheckFailed(`${p.nick}: video from ${o} is ${s.remote[o].codec}, not ${MIME}`);
      }
      if (s.out.codec !== MIME) throw new CheckFailed(`${p.nick} sends ${s.out.codec}, not ${MIME}`);
      if (!s.answerHasRidRecv || !s.answerHasSimulcastRecv) throw new CheckFailed(`${p.nick}: the bridge's answer lacks a=rid recv / a=simulcast:recv`);
      // Chromium adds layers as its bandwidth estimate (fed by the bridge's
      // transport-cc feedback) grows.
      const layers = await eventually(`${p.nick} sends at least two simulcast layers`, 30_000, async () => {
        const now = await snapshot(p.page);
        const active = now.out.video.filter((v) => v.rid && v.bytes > 0).map((v) => v.rid);
        return active.length >= 2 ? active : [false, now.out.video];
      });
      await eventually(`${p.nick} shows three tiles`, 10_000, async () => {
        const now = await snapshot(p.page);
        return now.tiles.length === 3 ? true : [false, now.tiles];
      });
      report.pages[p.nick] = { firstFrameMs: s.firstFrameMs, timings: s.timings, layers, received: s.remote };
    }

    // Chat from alice reaches the others.
    const [alice, bob, carol] = peers;
    const text = `hello from alice ${Date.now()}`;
    await alice.page.click('#side nav button[data-tab="chat"]');
    await alice.page.fill("#chat-input", text);
    await alice.page.press("#chat-input", "Enter");
    for (const p of [bob, carol]) {
      await eventually(`${p.nick} sees alice's chat message`, 10_000, async () => (await snapshot(p.page)).messages.includes(text));
    }

    // alice created the room, so she moderates it: her "/record start"
    // makes every page show that the call is recorded, "/record stop" ends it.
    for (const [command, on] of [["/record start", true], ["/record stop", false]]) {
      await alice.page.fill("#chat-input", command);
      await alice.page.press("#chat-input", "Enter");
      for (const p of peers) {
        await eventually(`${p.nick} shows recording ${on ? "on" : "off"}`, 15_000, async () => (await p.page.isVisible("#rec")) === on);
      }
    }

    // An admin opens the admin page in a browser of their own: it asks for
    // the token, and once given it lists the files just recorded, whose
    // download links work (the page keeps the token in a cookie).
    if (adminToken) {
      const context = await alice.browser.newContext();
      try {
        const admin = await context.newPage();
        await admin.goto(`${base}/admin`);
        await eventually("the admin page asks for the token", 10_000, async () => admin.isVisible("#unlock-token"));
        await admin.fill("#unlock-token", adminToken);
        await admin.click("#unlock button");
        const names = await eventually("the admin page lists the call's recordings", 15_000, async () => {
          const names = await admin.$$eval("#recordings tbody td.mono", (tds) => tds.map((td) => td.textContent));
          return names.filter((n) => n.startsWith(`${room}-`)).length >= 3 && !(await admin.isVisible("#unlock")) ? names : [false, names];
        });
        const href = await admin.getAttribute("#recordings tbody a", "href");
        const status = await admin.evaluate(async (u) => (await fetch(u, { method: "HEAD" })).status, href);
        if (status !== 200) throw new CheckFailed(`the admin page's download link ${href} answers ${status}`);
        log(`admin page lists ${names.length} recordings; ${href} downloads`);
      } finally {
        await context.close();
      }
    }

    // bob mutes: the others see it on his tile.
    await bob.page.click("#mic");
    for (const p of [alice, carol]) {
      await eventually(`${p.nick} sees bob muted`, 10_000, async () => (await snapshot(p.page)).mutedTiles.includes("bob"));
    }

    // bob shares his screen: the others see it in his tile, still moving.
    await bob.page.click("#screen");
    for (const p of [alice, carol]) {
      await eventually(`${p.nick} sees bob's screen`, 10_000, async () => (await snapshot(p.page)).screenTiles.includes("bob"));
    }
    await keepsDecoding(carol, "bob", "bob's screen share reaches carol");

    // alice's WebSocket drops: her page reconnects, rejoins and calls again
    // by itself, and media flows both ways once more.
    await alice.page.evaluate(() => window.confab.conn.xmpp.socket.socket.close());
    await eventually("alice rejoins and decodes bob and carol again", 30_000, async () => {
      const s = await snapshot(alice.page);
      return s.calls >= 2 && s.connection === "connected" && s.remote.bob?.framesDecoded > 0 && s.remote.carol?.framesDecoded > 0 ? s : [false, { calls: s.calls, connection: s.connection, remote: s.remote }];
    });
    for (const p of [bob, carol]) {
      await eventually(`${p.nick} decodes alice again after her reconnect`, 30_000, async () => {
        const a = await snapshot(p.page);
        await sleep(500);
        const b = await snapshot(p.page);
        return b.tiles.includes("alice") && b.remote.alice?.framesDecoded > (a.remote.alice?.framesDecoded ?? 0) ? true : [false, b.remote.alice];
      });
    }
    await bob.page.click("#screen");

    // bob's call fails while he stays in the room: his page calls again.
    const callsBefore = (await snapshot(bob.page)).calls;
    await bob.page.evaluate(() => window.confab.call.hangUp("connectivity-error"));
    await eventually("bob calls again and decodes alice and carol", 30_000, async () => {
      const s = await snapshot(bob.page);
      return s.calls > callsBefore && s.remote.alice?.framesDecoded > 0 && s.remote.carol?.framesDecoded > 0 ? s : [false, { calls: s.calls, remote: s.remote }];
    });

    // Keep a picture of the call.
    await alice.page.screenshot({ path: join(out, `call-${codec}.png`) });

    // carol leaves: her tile disappears from the others, the rest goes on.
    await carol.page.click("#leave");
    for (const p of [alice, bob]) {
      await eventually(`carol's tile disappears for ${p.nick}`, 15_000, async () => {
        const s = await snapshot(p.page);
        return !s.tiles.includes("carol") && s.tiles.length === 2;
      });
    }
    await keepsDecoding(alice, "bob", "alice still receives bob after carol left");

    // The last page to join finds the others already publishing: its time
    // from page load to the first decoded remote frame is what a person
    // joining a call waits.
    report.firstFrameMs = report.pages[PEOPLE.at(-1).nick].firstFrameMs;
    report.screenshot = join(out, `call-${codec}.png`);
    console.log(JSON.stringify(report));
  } finally {
    await Promise.all(peers.map((p) => p.browser.close().catch(() => {})));
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (!existsSync(executablePath)) {
  console.error(`Chromium not found at ${executablePath} (set CHROMIUM or --chromium)`);
  process.exit(2);
}
main().catch((err) => {
  console.error(`[e2e ${codec}] FAILED: ${err instanceof CheckFailed ? err.message : err.stack}`);
  process.exit(1);
});
