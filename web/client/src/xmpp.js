// The page's XMPP side: one @xmpp/client connection over WebSocket
// (RFC 7395) as a guest, and the room (XEP-0045) on it.
//
// What it is for: joining and leaving the room, presence with the
// participant's media state, groupchat, and routing the room's Jingle IQs
// to whoever handles them. What it is not for: media (call.js) and the DOM
// (room.js).

import { client } from "@xmpp/client";
import xml from "@xmpp/xml";
import { NS } from "./jingle.js";

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
/** Confab's presence payload: what a participant sends (mute, camera, screen). */
export const NS_MEDIA = "urn:confab:presence:media:0";

/** Where the page connects, from /config.json (with the embedded defaults). */
export async function loadConfig() {
  const fallback = { domain: "localhost", muc: "conference.localhost", websocket: "/xmpp-websocket" };
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    if (res.ok) return { ...fallback, ...(await res.json()) };
  } catch {
    // Served without the config route: keep the defaults.
  }
  return fallback;
}

function websocketUrl(path) {
  if (/^wss?:\/\//.test(path)) return path;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

function bare(jid) {
  return String(jid ?? "").split("/")[0];
}

/**
 * A connection joined to one room. Events: "online", "offline",
 * "occupant" {nick, role, media, self}, "gone" {nick, kicked, self},
 * "chat" {nick, body, stamp}, "subject" {subject}, "error" {message}.
 * `onJingle(element, from)` answers the room's Jingle IQs.
 */
export class RoomConnection extends EventTarget {
  constructor({ config, room, nick, log = console }) {
    super();
    this.config = config;
    this.roomJid = `${room}@${config.muc}`;
    this.nick = nick;
    this.log = log;
    this.media = { audio: "on", video: "on", screen: "off" };
    this.joined = false;
    this.onJingle = null;
    this.xmpp = client({ service: websocketUrl(config.websocket), domain: config.domain });
    this.xmpp.on("error", (err) => log.warn("XMPP:", err?.message ?? err));
    this.xmpp.on("online", (jid) => this.online(jid));
    this.xmpp.on("disconnect", () => this.disconnected());
    this.xmpp.on("stanza", (s) => this.stanza(s));
    this.xmpp.iqCallee.set(NS.jingle, "jingle", (ctx) => {
      if (bare(ctx.stanza.attrs.from) !== this.roomJid || !this.onJingle) {
        return xml("error", { type: "cancel" }, xml("item-not-found", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }), xml("unknown-session", { xmlns: NS.errors }));
      }
      return this.onJingle(ctx.element, ctx.stanza.attrs.from);
    });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  get ownJid() {
    return this.xmpp.jid?.toString() ?? null;
  }

  start() {
    return this.xmpp.start();
  }

  online(jid) {
    this.log.info("XMPP online as", String(jid));
    this.emit("connected", {});
    this.joined = false;
    this.sendPresence(true);
  }

  disconnected() {
    if (this.joined || this.wasOnline) this.emit("offline", {});
    this.joined = false;
  }

  presence(join) {
    const p = xml("presence", { to: `${this.roomJid}/${this.nick}` });
    if (join) p.append(xml("x", { xmlns: NS_MUC }));
    p.append(xml("media", { xmlns: NS_MEDIA, ...this.media }));
    return p;
  }

  sendPresence(join = false) {
    return this.xmpp.send(this.presence(join)).catch((e) => this.log.warn("presence:", e.message));
  }

  /** Update what this participant sends (mute, camera, screen) in its presence. */
  setMedia(media) {
    Object.assign(this.media, media);
    if (this.joined) this.sendPresence();
  }

  say(body) {
    return this.xmpp.send(xml("message", { to: this.roomJid, type: "groupchat" }, xml("body", {}, body)));
  }

  async leave() {
    try {
      if (this.joined) await this.xmpp.send(xml("presence", { to: `${this.roomJid}/${this.nick}`, type: "unavailable" }));
    } catch {
      // The connection is going anyway.
    }
    this.joined = false;
    this.xmpp.reconnect?.stop?.();
    await this.xmpp.stop().catch(() => {});
  }

  stanza(s) {
    const from = String(s.attrs.from ?? "");
    if (bare(from) !== this.roomJid) return;
    const nick = from.slice(this.roomJid.length + 1);
    if (s.is("presence")) this.roomPresence(s, nick);
    else if (s.is("message")) this.roomMessage(s, nick);
  }

  roomPresence(s, nick) {
    const x = s.getChild("x", NS_MUC_USER);
    const codes = x ? x.getChildren("status").map((c) => c.attrs.code) : [];
    const self = codes.includes("110") || nick === this.nick;
    if (s.attrs.type === "error") {
      const condition = s.getChild("error")?.getChildElements()[0]?.name ?? "error";
      if (condition === "conflict" && !this.joined) {
        // Someone has this name: join as "name (2)".
        const m = /^(.*) \((\d+)\)$/.exec(this.nick);
        this.nick = m ? `${m[1]} (${Number(m[2]) + 1})` : `${this.nick} (2)`;
        this.sendPresence(true);
        return;
      }
      this.emit("error", { message: `The room refused to let you in (${condition}).` });
      return;
    }
    if (s.attrs.type === "unavailable") {
      if (self) this.joined = false;
      this.emit("gone", { nick, kicked: codes.includes("307"), self });
      return;
    }
    const item = x?.getChild("item");
    const m = s.getChild("media", NS_MEDIA);
    const media = m ? { audio: m.attrs.audio ?? "on", video: m.attrs.video ?? "on", screen: m.attrs.screen ?? "off" } : { audio: "on", video: "on", screen: "off" };
    if (self && codes.includes("170")) this.emit("recording", { on: true });
    if (self && !this.joined) {
      this.joined = true;
      this.wasOnline = true;
      this.nick = nick;
      this.emit("occupant", { nick, role: item?.attrs.role ?? "participant", media, self: true });
      this.emit("online", { nick });
      return;
    }
    this.emit("occupant", { nick, role: item?.attrs.role ?? "participant", media, self });
  }

  roomMessage(s, nick) {
    if (s.attrs.type === "error") {
      this.emit("error", { message: "A message could not be delivered." });
      return;
    }
    const subject = s.getChild("subject");
    if (subject && !s.getChild("body")) {
      this.emit("subject", { subject: subject.text() });
      return;
    }
    // Status 170/171 from the room: recording started or stopped.
    const codes = (s.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((c) => c.attrs.code);
    if (!nick && codes.includes("170")) this.emit("recording", { on: true });
    if (!nick && codes.includes("171")) this.emit("recording", { on: false });
    const body = s.getChildText("body");
    if (s.attrs.type === "groupchat" && body) {
      const delay = s.getChild("delay", "urn:xmpp:delay");
      this.emit("chat", { nick, body, stamp: delay ? new Date(delay.attrs.stamp) : new Date(), self: nick === this.nick });
    }
  }
}
