// Jingle <-> SDP for Confab's call protocol (docs/PROTOCOL.md §3-§6).
//
// What it is for: turning the browser's SDP into the Jingle contents the
// bridge expects, and the bridge's Jingle back into SDP the browser applies.
// `BridgeSession` keeps the one thing a browser cannot keep itself: the
// bridge's whole session, so that each content-add or content-remove becomes
// a complete remote SDP offer.
//
// What it is not for: it sends nothing and touches no RTCPeerConnection
// (call.js does), so it runs unchanged under `node --test`.
//
// Written by hand because no maintained npm library maps Jingle with several
// sources per content, rid/simulcast and content-add (stanza.io's Jingle
// keeps one SSRC per content and drops a=rid/a=simulcast). sdp-transform
// parses and writes the SDP text.

import * as sdpTransform from "sdp-transform";
import xml from "@xmpp/xml";
import LIMITS from "./limits.json" with { type: "json" };

export const NS = {
  jingle: "urn:xmpp:jingle:1",
  rtp: "urn:xmpp:jingle:apps:rtp:1",
  rtcpFb: "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
  hdrext: "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
  ssma: "urn:xmpp:jingle:apps:rtp:ssma:0",
  ice: "urn:xmpp:jingle:transports:ice-udp:1",
  dtls: "urn:xmpp:jingle:apps:dtls:0",
  grouping: "urn:xmpp:jingle:apps:grouping:0",
  simulcast: "urn:confab:jingle:simulcast:0",
  owner: "urn:confab:jingle:owner:0",
  errors: "urn:xmpp:jingle:errors:1",
};

/** A Jingle or SDP input that does not map; `condition` is the XEP-0166 error. */
export class JingleError extends Error {
  constructor(message, condition = "bad-request", jingleCondition = null) {
    super(message);
    this.condition = condition;
    this.jingleCondition = jingleCondition;
  }
}

// Bounds on what the bridge may send, so a broken peer cannot make the page
// build an unbounded SDP: the protocol's limits (docs/PROTOCOL.md §8), the
// numbers the bridge enforces, written into limits.json by a Rust test.
const {
  MAX_CONTENTS,
  MAX_PAYLOAD_TYPES,
  MAX_PARAMETERS,
  MAX_RTCP_FB,
  MAX_HDREXTS,
  MAX_SOURCES,
  MAX_SSRC_GROUPS,
  MAX_GROUP_SSRCS,
  MAX_RIDS,
  MAX_CANDIDATES,
  MAX_MID_LEN,
  MAX_RID_LEN,
} = LIMITS;

const SENDERS = ["initiator", "responder", "both", "none"];

// SDP direction written by `author` for a content's `senders`.
function direction(senders, author) {
  if (senders === "both") return "sendrecv";
  if (senders === "none") return "inactive";
  return senders === author ? "sendonly" : "recvonly";
}

// Jingle senders for an SDP direction written by `author`.
function sendersOf(dir, author) {
  const other = author === "initiator" ? "responder" : "initiator";
  switch (dir) {
    case "sendrecv":
      return "both";
    case "sendonly":
      return author;
    case "recvonly":
      return other;
    default:
      return "none";
  }
}

function text(v, what) {
  if (typeof v !== "string" || v.length === 0 || v.length > 1024 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new JingleError(`invalid ${what}`);
  }
  return v;
}

function int(v, what, min, max) {
  const n = Number(v);
  if (v === undefined || v === null || v === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new JingleError(`invalid ${what}`);
  }
  return n;
}

function bounded(list, what, max) {
  if (list.length > max) throw new JingleError(`too many ${what}`);
  return list;
}

// ------------------------------------------------------------ SDP -> model

function parseMsid(value) {
  const [stream, track] = value.trim().split(/\s+/);
  return { stream, track: track ?? null };
}

/**
 * The contents of an SDP written by `author` ("initiator" for the browser's
 * own offers and answers).
 */
export function sdpToContents(sdp, author = "initiator") {
  const session = sdpTransform.parse(sdp);
  const sessionFp = session.fingerprint;
  return session.media.map((m) => {
    const content = {
      name: String(m.mid),
      creator: "initiator",
      senders: m.port === 0 ? "none" : sendersOf(m.direction ?? session.direction ?? "sendrecv", author),
      media: m.type,
      codecs: [],
      rtcpFb: [],
      hdrexts: [],
      extmapAllowMixed: Boolean(m.extmapAllowMixed || session.extmapAllowMixed),
      rtcpMux: Boolean(m.rtcpMux),
      sources: [],
      ssrcGroups: [],
      rids: [],
      simulcast: null,
      transport: {
        ufrag: m.iceUfrag ?? session.iceUfrag ?? null,
        pwd: m.icePwd ?? session.icePwd ?? null,
        fingerprint: null,
        candidates: [],
      },
    };
    const fp = m.fingerprint ?? sessionFp;
    if (fp) {
      content.transport.fingerprint = {
        hash: fp.type.toLowerCase(),
        value: fp.hash,
        setup: m.setup ?? session.setup ?? "actpass",
      };
    }
    const byId = new Map();
    for (const r of m.rtp ?? []) {
      const codec = {
        id: r.payload,
        name: r.codec,
        clockrate: r.rate ?? 90000,
        channels: r.encoding ? Number(r.encoding) : 1,
        params: [],
        rtcpFb: [],
      };
      byId.set(r.payload, codec);
      content.codecs.push(codec);
    }
    for (const f of m.fmtp ?? []) {
      const codec = byId.get(f.payload);
      if (!codec) continue;
      for (const part of String(f.config).split(";")) {
        const p = part.trim();
        if (!p) continue;
        const eq = p.indexOf("=");
        codec.params.push(eq < 0 ? { name: "", value: p } : { name: p.slice(0, eq), value: p.slice(eq + 1) });
      }
    }
    for (const fb of m.rtcpFb ?? []) {
      const entry = { type: fb.type, subtype: fb.subtype ?? null };
      if (fb.payload === "*") content.rtcpFb.push(entry);
      else byId.get(Number(fb.payload))?.rtcpFb.push(entry);
    }
    for (const e of m.ext ?? []) {
      content.hdrexts.push({ id: e.value, uri: e.uri, senders: e.direction ? sendersOf(e.direction, author) : "both" });
    }
    const sources = new Map();
    for (const s of m.ssrcs ?? []) {
      let source = sources.get(s.id);
      if (!source) {
        source = { ssrc: Number(s.id), cname: null, msid: null, owner: null };
        sources.set(s.id, source);
        content.sources.push(source);
      }
      if (s.attribute === "cname") source.cname = s.value;
      if (s.attribute === "msid") source.msid = parseMsid(s.value);
    }
    // Unified Plan: the media-level msid names the track of every source.
    const msid = m.msid?.[0];
    if (msid) {
      for (const source of content.sources) {
        source.msid ??= { stream: msid.id, track: msid.appdata ?? null };
      }
    }
    for (const g of m.ssrcGroups ?? []) {
      content.ssrcGroups.push({ semantics: g.semantics, ssrcs: g.ssrcs.split(/\s+/).map(Number) });
    }
    for (const r of m.rids ?? []) content.rids.push({ id: String(r.id), direction: r.direction });
    if (m.simulcast) {
      const sim = { send: null, recv: null };
      sim[m.simulcast.dir1] = m.simulcast.list1;
      if (m.simulcast.dir2) sim[m.simulcast.dir2] = m.simulcast.list2;
      content.simulcast = sim;
    }
    for (const c of m.candidates ?? []) {
      const candidate = candidateFromSdp(c);
      if (candidate) content.transport.candidates.push(candidate);
    }
    return content;
  });
}

function isIp(address) {
  return /^[0-9.]+$/.test(address) || (address.includes(":") && /^[0-9a-fA-F:.]+$/.test(address));
}

/**
 * A candidate as sdp-transform parses it -> the XEP-0176 fields, or null
 * for what the bridge cannot use: TCP candidates (it is UDP only) and
 * mDNS names (an ICE-lite bridge learns the browser's address from its
 * connectivity checks anyway).
 */
export function candidateFromSdp(c) {
  if (String(c.transport).toLowerCase() !== "udp" || !isIp(String(c.ip))) return null;
  return {
    foundation: String(c.foundation),
    component: Number(c.component),
    protocol: "udp",
    priority: Number(c.priority),
    ip: String(c.ip),
    port: Number(c.port),
    type: c.type,
    relAddr: c.raddr ?? null,
    relPort: c.rport ?? null,
    generation: c.generation ?? 0,
  };
}

/** `RTCIceCandidate.candidate` text -> XEP-0176 fields (or null). */
export function candidateFromLine(line) {
  const parsed = sdpTransform.parse(`a=${line.replace(/^a=/, "")}\r\n`);
  const c = parsed.candidates?.[0];
  return c ? candidateFromSdp(c) : null;
}

// ------------------------------------------------------------ model -> SDP

function candidateToSdp(c) {
  const out = {
    foundation: c.foundation,
    component: c.component,
    transport: c.protocol,
    priority: c.priority,
    ip: c.ip,
    port: c.port,
    type: c.type,
    generation: c.generation,
  };
  if (c.relAddr != null && c.relPort != null) {
    out.raddr = c.relAddr;
    out.rport = c.relPort;
  }
  return out;
}

function mediaToSdp(c, author) {
  const m = {
    type: c.media,
    port: 9,
    protocol: "UDP/TLS/RTP/SAVPF",
    payloads: c.codecs.map((p) => p.id).join(" "),
    connection: { version: 4, ip: "0.0.0.0" },
    rtp: [],
    fmtp: [],
    rtcpFb: [],
    ext: [],
    mid: c.name,
    direction: direction(c.senders, author),
    candidates: c.transport.candidates.map(candidateToSdp),
  };
  const t = c.transport;
  if (t.ufrag) m.iceUfrag = t.ufrag;
  if (t.pwd) m.icePwd = t.pwd;
  if (t.fingerprint) {
    m.fingerprint = { type: t.fingerprint.hash, hash: t.fingerprint.value };
    m.setup = t.fingerprint.setup;
  }
  for (const e of c.hdrexts) {
    const ext = { value: e.id, uri: e.uri };
    if (e.senders !== "both") ext.direction = direction(e.senders, author);
    m.ext.push(ext);
  }
  if (c.extmapAllowMixed) m.extmapAllowMixed = "extmap-allow-mixed";
  const msid = c.sources.find((s) => s.msid)?.msid;
  if (msid) m.msid = [{ id: msid.stream, appdata: msid.track ?? msid.stream }];
  if (c.rtcpMux) m.rtcpMux = "rtcp-mux";
  for (const fb of c.rtcpFb) m.rtcpFb.push({ payload: "*", type: fb.type, subtype: fb.subtype ?? undefined });
  for (const p of c.codecs) {
    const rtp = { payload: p.id, codec: p.name, rate: p.clockrate };
    if (p.channels !== 1) rtp.encoding = p.channels;
    m.rtp.push(rtp);
    for (const fb of p.rtcpFb) m.rtcpFb.push({ payload: p.id, type: fb.type, subtype: fb.subtype ?? undefined });
    if (p.params.length) {
      m.fmtp.push({
        payload: p.id,
        config: p.params.map((q) => (q.name ? `${q.name}=${q.value}` : q.value)).join(";"),
      });
    }
  }
  if (c.rids.length) m.rids = c.rids.map((r) => ({ id: r.id, direction: r.direction }));
  if (c.simulcast) {
    const parts = [];
    if (c.simulcast.send) parts.push(["send", c.simulcast.send]);
    if (c.simulcast.recv) parts.push(["recv", c.simulcast.recv]);
    if (parts.length) {
      m.simulcast = { dir1: parts[0][0], list1: parts[0][1] };
      if (parts[1]) Object.assign(m.simulcast, { dir2: parts[1][0], list2: parts[1][1] });
    }
  }
  if (c.ssrcGroups.length) m.ssrcGroups = c.ssrcGroups.map((g) => ({ semantics: g.semantics, ssrcs: g.ssrcs.join(" ") }));
  if (c.sources.length) {
    m.ssrcs = [];
    for (const s of c.sources) {
      m.ssrcs.push({ id: s.ssrc, attribute: "cname", value: s.cname ?? (s.msid?.stream || "-") });
      if (s.msid) m.ssrcs.push({ id: s.ssrc, attribute: "msid", value: `${s.msid.stream} ${s.msid.track ?? s.msid.stream}` });
    }
  }
  if (!m.rtcpFb.length) delete m.rtcpFb;
  if (!m.fmtp.length) delete m.fmtp;
  if (!m.ext.length) delete m.ext;
  return m;
}

/** SDP text of `contents` written by `author`, BUNDLEd, with `a=ice-lite` when the bridge wrote it. */
export function contentsToSdp(contents, { author, version = 1, iceLite = false }) {
  const session = {
    version: 0,
    origin: { username: "-", sessionId: 1, sessionVersion: version, netType: "IN", ipVer: 4, address: "0.0.0.0" },
    name: "-",
    timing: { start: 0, stop: 0 },
    groups: [{ type: "BUNDLE", mids: contents.map((c) => c.name).join(" ") }],
    msidSemantic: { semantic: "WMS", token: "" },
    media: contents.map((c) => mediaToSdp(c, author)),
  };
  if (iceLite) session.icelite = "ice-lite";
  return sdpTransform.write(session);
}

// ------------------------------------------------------------ model -> XML

function transportXml(t, name) {
  const attrs = { xmlns: NS.ice };
  if (t.ufrag) attrs.ufrag = t.ufrag;
  if (t.pwd) attrs.pwd = t.pwd;
  const children = [];
  if (t.fingerprint) {
    children.push(xml("fingerprint", { xmlns: NS.dtls, hash: t.fingerprint.hash, setup: t.fingerprint.setup }, t.fingerprint.value));
  }
  t.candidates.forEach((c, i) => children.push(candidateXml(c, `${name}-${i}`)));
  return xml("transport", attrs, ...children);
}

/** One XEP-0176 `<candidate/>`. */
export function candidateXml(c, id) {
  const attrs = {
    component: String(c.component),
    foundation: c.foundation,
    generation: String(c.generation ?? 0),
    id,
    ip: c.ip,
    port: String(c.port),
    priority: String(c.priority),
    protocol: c.protocol,
    type: c.type,
  };
  if (c.relAddr != null && c.relPort != null) {
    attrs["rel-addr"] = String(c.relAddr);
    attrs["rel-port"] = String(c.relPort);
  }
  return xml("candidate", attrs);
}

function fbXml(fb) {
  const attrs = { xmlns: NS.rtcpFb, type: fb.type };
  if (fb.subtype) attrs.subtype = fb.subtype;
  return xml("rtcp-fb", attrs);
}

/** One `<content/>` of a Jingle element. */
export function contentXml(c) {
  const desc = xml("description", { xmlns: NS.rtp, media: c.media });
  for (const p of c.codecs) {
    const attrs = { id: String(p.id), name: p.name, clockrate: String(p.clockrate) };
    if (p.channels !== 1) attrs.channels = String(p.channels);
    desc.append(
      xml(
        "payload-type",
        attrs,
        ...p.params.map((q) => xml("parameter", { name: q.name, value: q.value })),
        ...p.rtcpFb.map(fbXml),
      ),
    );
  }
  for (const fb of c.rtcpFb) desc.append(fbXml(fb));
  for (const e of c.hdrexts) {
    const attrs = { xmlns: NS.hdrext, id: String(e.id), uri: e.uri };
    if (e.senders !== "both") attrs.senders = e.senders;
    desc.append(xml("rtp-hdrext", attrs));
  }
  if (c.extmapAllowMixed) desc.append(xml("extmap-allow-mixed", { xmlns: NS.hdrext }));
  if (c.rtcpMux) desc.append(xml("rtcp-mux"));
  for (const s of c.sources) {
    const source = xml("source", { xmlns: NS.ssma, ssrc: String(s.ssrc) });
    if (s.cname) source.append(xml("parameter", { name: "cname", value: s.cname }));
    if (s.msid) source.append(xml("parameter", { name: "msid", value: `${s.msid.stream} ${s.msid.track ?? s.msid.stream}` }));
    desc.append(source);
  }
  for (const g of c.ssrcGroups) {
    desc.append(xml("ssrc-group", { xmlns: NS.ssma, semantics: g.semantics }, ...g.ssrcs.map((ssrc) => xml("source", { ssrc: String(ssrc) }))));
  }
  for (const r of c.rids) desc.append(xml("rid", { xmlns: NS.simulcast, id: r.id, direction: r.direction }));
  if (c.simulcast) {
    const attrs = { xmlns: NS.simulcast };
    if (c.simulcast.send) attrs.send = c.simulcast.send;
    if (c.simulcast.recv) attrs.recv = c.simulcast.recv;
    desc.append(xml("simulcast", attrs));
  }
  return xml("content", { creator: c.creator, name: c.name, senders: c.senders }, desc, transportXml(c.transport, c.name));
}

/** A `<jingle/>` element with `contents` and a BUNDLE group over them. */
export function jingleXml(attrs, contents, { group = true } = {}) {
  const el = xml("jingle", { xmlns: NS.jingle, ...attrs }, ...contents.map(contentXml));
  if (group && contents.length) {
    el.append(xml("group", { xmlns: NS.grouping, semantics: "BUNDLE" }, ...contents.map((c) => xml("content", { name: c.name }))));
  }
  return el;
}

// ------------------------------------------------------------ XML -> model

function children(el, name, ns) {
  return el.getChildren(name).filter((c) => c.getNS() === ns);
}

function child(el, name, ns) {
  return children(el, name, ns)[0] ?? null;
}

function parseFb(el) {
  return { type: text(el.attrs.type, "rtcp-fb type"), subtype: el.attrs.subtype ?? null };
}

function parseCandidate(el) {
  const c = {
    foundation: text(el.attrs.foundation, "candidate foundation"),
    component: int(el.attrs.component, "candidate component", 1, 256),
    protocol: text(el.attrs.protocol, "candidate protocol").toLowerCase(),
    priority: int(el.attrs.priority, "candidate priority", 0, 2 ** 32 - 1),
    ip: text(el.attrs.ip, "candidate ip"),
    port: int(el.attrs.port, "candidate port", 0, 65535),
    type: text(el.attrs.type, "candidate type"),
    relAddr: el.attrs["rel-addr"] ?? null,
    relPort: el.attrs["rel-port"] != null ? int(el.attrs["rel-port"], "candidate rel-port", 0, 65535) : null,
    generation: el.attrs.generation != null ? int(el.attrs.generation, "candidate generation", 0, 255) : 0,
  };
  if (!/^[\w.:-]+$/.test(c.ip) || !/^[\w+/]+$/.test(c.foundation) || !/^(host|srflx|prflx|relay)$/.test(c.type)) {
    throw new JingleError("invalid candidate");
  }
  return c;
}

function parseTransport(el) {
  if (!el) throw new JingleError("content without an ICE-UDP transport");
  const t = { ufrag: el.attrs.ufrag ?? null, pwd: el.attrs.pwd ?? null, fingerprint: null, candidates: [] };
  if (t.ufrag != null) text(t.ufrag, "ufrag");
  if (t.pwd != null) text(t.pwd, "pwd");
  const fp = child(el, "fingerprint", NS.dtls);
  if (fp) {
    const setup = text(fp.attrs.setup, "fingerprint setup");
    if (!["active", "passive", "actpass"].includes(setup)) throw new JingleError("invalid fingerprint setup");
    t.fingerprint = { hash: text(fp.attrs.hash, "fingerprint hash").toLowerCase(), value: text(fp.text().trim(), "fingerprint"), setup };
  }
  t.candidates = bounded(children(el, "candidate", NS.ice), "candidates", MAX_CANDIDATES).map(parseCandidate);
  return t;
}

/** One `<content/>` -> the model. Throws a JingleError for what does not map. */
export function parseContent(el) {
  const senders = el.attrs.senders ?? "both";
  if (!SENDERS.includes(senders)) throw new JingleError("invalid content senders");
  const creator = el.attrs.creator ?? "initiator";
  if (creator !== "initiator" && creator !== "responder") throw new JingleError("invalid content creator");
  const name = text(el.attrs.name, "content name");
  if (!/^[\w.~+-]+$/.test(name) || name.length > MAX_MID_LEN) throw new JingleError("invalid content name");
  const desc = child(el, "description", NS.rtp);
  if (!desc) throw new JingleError("content without an RTP description");
  const media = desc.attrs.media;
  if (media !== "audio" && media !== "video") throw new JingleError("invalid description media");
  const content = {
    name,
    creator,
    senders,
    media,
    codecs: [],
    rtcpFb: bounded(children(desc, "rtcp-fb", NS.rtcpFb), "rtcp-fb", MAX_RTCP_FB).map(parseFb),
    hdrexts: [],
    extmapAllowMixed: Boolean(child(desc, "extmap-allow-mixed", NS.hdrext)),
    rtcpMux: Boolean(child(desc, "rtcp-mux", NS.rtp)),
    sources: [],
    ssrcGroups: [],
    rids: [],
    simulcast: null,
    transport: parseTransport(child(el, "transport", NS.ice)),
  };
  for (const pt of bounded(children(desc, "payload-type", NS.rtp), "payload-types", MAX_PAYLOAD_TYPES)) {
    content.codecs.push({
      id: int(pt.attrs.id, "payload-type id", 0, 127),
      name: text(pt.attrs.name, "payload-type name"),
      clockrate: int(pt.attrs.clockrate, "payload-type clockrate", 1, 2 ** 32 - 1),
      channels: pt.attrs.channels != null ? int(pt.attrs.channels, "payload-type channels", 1, 255) : 1,
      params: bounded(children(pt, "parameter", NS.rtp), "parameters", MAX_PARAMETERS).map((p) => ({
        name: p.attrs.name ?? "",
        value: text(p.attrs.value, "parameter value"),
      })),
      rtcpFb: bounded(children(pt, "rtcp-fb", NS.rtcpFb), "rtcp-fb", MAX_RTCP_FB).map(parseFb),
    });
  }
  for (const e of bounded(children(desc, "rtp-hdrext", NS.hdrext), "rtp-hdrexts", MAX_HDREXTS)) {
    const s = e.attrs.senders ?? "both";
    if (!SENDERS.includes(s)) throw new JingleError("invalid rtp-hdrext senders");
    content.hdrexts.push({ id: int(e.attrs.id, "rtp-hdrext id", 1, 255), uri: text(e.attrs.uri, "rtp-hdrext uri"), senders: s });
  }
  for (const s of bounded(children(desc, "source", NS.ssma), "sources", MAX_SOURCES)) {
    const source = { ssrc: int(s.attrs.ssrc, "ssrc", 0, 2 ** 32 - 1), cname: null, msid: null, owner: null };
    for (const p of bounded(s.getChildren("parameter"), "source parameters", MAX_PARAMETERS)) {
      if (p.attrs.name === "cname") source.cname = text(p.attrs.value, "cname");
      if (p.attrs.name === "msid") {
        source.msid = parseMsid(text(p.attrs.value, "msid"));
        if (!/^[\w.{}-]+$/.test(source.msid.stream) || (source.msid.track && !/^[\w.{}-]+$/.test(source.msid.track))) {
          throw new JingleError("invalid msid");
        }
      }
    }
    const owner = child(s, "owner", NS.owner);
    if (owner) source.owner = text(owner.attrs.jid, "owner jid");
    content.sources.push(source);
  }
  for (const g of bounded(children(desc, "ssrc-group", NS.ssma), "ssrc-groups", MAX_SSRC_GROUPS)) {
    content.ssrcGroups.push({
      semantics: text(g.attrs.semantics, "ssrc-group semantics"),
      ssrcs: bounded(g.getChildren("source"), "group sources", MAX_GROUP_SSRCS).map((s) => int(s.attrs.ssrc, "ssrc", 0, 2 ** 32 - 1)),
    });
  }
  for (const r of bounded(children(desc, "rid", NS.simulcast), "rids", MAX_RIDS)) {
    const id = text(r.attrs.id, "rid id");
    if (!/^[\w-]+$/.test(id) || id.length > MAX_RID_LEN || !["send", "recv"].includes(r.attrs.direction)) throw new JingleError("invalid rid");
    content.rids.push({ id, direction: r.attrs.direction });
  }
  const sim = child(desc, "simulcast", NS.simulcast);
  if (sim) {
    const list = (v) => (v == null ? null : /^[\w~;,-]{1,128}$/.test(v) ? v : (() => { throw new JingleError("invalid simulcast"); })());
    content.simulcast = { send: list(sim.attrs.send), recv: list(sim.attrs.recv) };
  }
  return content;
}

/** The contents of a `<jingle/>` element. */
export function parseContents(jingle) {
  return bounded(children(jingle, "content", NS.jingle), "contents", MAX_CONTENTS).map(parseContent);
}

// ------------------------------------------------------------ the session

function inherit(transport, bundle) {
  if (!transport.ufrag || !transport.pwd) {
    transport.ufrag = bundle.ufrag;
    transport.pwd = bundle.pwd;
  }
  transport.fingerprint ??= bundle.fingerprint ? { ...bundle.fingerprint } : null;
  if (!transport.candidates.length) transport.candidates = bundle.candidates.slice();
}

const clone = (v) => structuredClone(v);

/**
 * The participant's side of one Jingle session with a room (docs/PROTOCOL.md
 * §3-§6): the same rules as Confab's Rust `ParticipantCall`.
 */
export class BridgeSession {
  constructor({ sid, ownJid, roomJid }) {
    this.sid = sid;
    this.ownJid = ownJid;
    this.roomJid = roomJid;
    this.state = "new";
    this.offered = [];
    this.remote = [];
    this.version = 0;
    this.pending = [];
  }

  /** The browser's offer -> the session-initiate `<jingle/>`. */
  initiate(offerSdp) {
    const contents = sdpToContents(offerSdp, "initiator");
    if (!contents.length) throw new JingleError("the offer has no m-line");
    this.offered = contents.map((c) => c.name);
    this.state = "initiated";
    return jingleXml({ action: "session-initiate", initiator: this.ownJid, sid: this.sid }, contents);
  }

  /** Trickled candidates -> a transport-info `<jingle/>`. */
  transportInfo(mid, candidate) {
    const c = this.offered.includes(mid) ? mid : this.offered[0];
    return xml(
      "jingle",
      { xmlns: NS.jingle, action: "transport-info", sid: this.sid },
      xml("content", { creator: "initiator", name: c }, xml("transport", { xmlns: NS.ice }, candidateXml(candidate, `${c}-t${Date.now() % 100000}`))),
    );
  }

  check(jingle, action) {
    if (jingle.attrs.sid !== this.sid) throw new JingleError("unknown session", "item-not-found", "unknown-session");
    if (this.state === "ended") throw new JingleError("the session has ended", "item-not-found", "unknown-session");
    if (jingle.attrs.action !== action) throw new JingleError(`expected ${action}`);
  }

  ready(action) {
    if (this.state !== "active") throw new JingleError(`${action} is out of order`, "unexpected-request", "out-of-order");
  }

  /** The session-accept -> the SDP answer to apply. */
  onSessionAccept(jingle) {
    this.check(jingle, "session-accept");
    if (this.state !== "initiated") throw new JingleError("session-accept is out of order", "unexpected-request", "out-of-order");
    const contents = parseContents(jingle);
    if (contents.map((c) => c.name).join(" ") !== this.offered.join(" ")) {
      throw new JingleError("session-accept does not answer the offered contents");
    }
    const bundle = contents[0].transport;
    if (!bundle.ufrag || !bundle.pwd || !bundle.fingerprint || bundle.fingerprint.setup === "actpass") {
      throw new JingleError("session-accept without ICE credentials or an answering fingerprint");
    }
    for (const c of contents) inherit(c.transport, bundle);
    const sdp = this.remoteSdp(contents, null);
    this.remote = contents;
    this.state = "active";
    return sdp;
  }

  /** A content-add -> { sdp: the bridge's whole session as an offer, names }. */
  onContentAdd(jingle) {
    this.check(jingle, "content-add");
    this.ready("content-add");
    const added = parseContents(jingle);
    if (!added.length) throw new JingleError("content-add without contents");
    const contents = clone(this.remote);
    for (const c of added) {
      if (c.creator !== "responder") throw new JingleError("content-add content not created by the responder");
      if (contents.some((o) => o.name === c.name)) throw new JingleError("content-add reuses a content name");
      inherit(c.transport, this.remote[0].transport);
      contents.push(c);
    }
    const names = added.map((c) => c.name);
    const sdp = this.remoteSdp(contents, "actpass");
    this.remote = contents;
    this.pending = names;
    this.state = "awaiting-answer";
    return { sdp, names };
  }

  /** The browser's answer to the content-add offer -> the content-accept `<jingle/>`. */
  contentAccept(answerSdp) {
    if (this.state !== "awaiting-answer") throw new JingleError("content-accept is out of order");
    const answer = sdpToContents(answerSdp, "initiator");
    const bundle = answer[0].transport;
    const accepted = [];
    for (const c of answer) {
      if (!this.pending.includes(c.name)) continue;
      c.creator = "responder";
      inherit(c.transport, bundle);
      if (!c.transport.fingerprint) throw new JingleError("the answer has no fingerprint");
      c.transport.fingerprint.setup = "active";
      c.transport.candidates = [];
      accepted.push(c);
    }
    this.pending = [];
    this.state = "active";
    return jingleXml({ action: "content-accept", sid: this.sid }, accepted, { group: false });
  }

  /** A content-remove -> { sdp: the session with those m-lines inactive, names }. */
  onContentRemove(jingle) {
    this.check(jingle, "content-remove");
    this.ready("content-remove");
    const names = bounded(children(jingle, "content", NS.jingle), "contents", MAX_CONTENTS).map((c) => text(c.attrs.name, "content name"));
    if (!names.length) throw new JingleError("content-remove without contents");
    const contents = clone(this.remote);
    for (const name of names) {
      const c = contents.find((o) => o.name === name && o.creator === "responder");
      if (!c) throw new JingleError("content-remove names no content of the bridge");
      Object.assign(c, { senders: "none", sources: [], ssrcGroups: [], rids: [], simulcast: null });
    }
    const sdp = this.remoteSdp(contents, "actpass");
    this.remote = contents;
    return { sdp, names };
  }

  /** The session-terminate `<jingle/>` for `reason` (success, gone, ...). */
  terminate(reason = "success") {
    this.state = "ended";
    return xml("jingle", { xmlns: NS.jingle, action: "session-terminate", sid: this.sid }, xml("reason", {}, xml(reason)));
  }

  /** The bridge's session-terminate -> its reason. */
  onSessionTerminate(jingle) {
    this.check(jingle, "session-terminate");
    this.state = "ended";
    return jingle.getChild("reason")?.getChildElements().find((c) => c.name !== "text")?.name ?? null;
  }

  /** The tracks the bridge sends now: { mid, media, owner, msid }. */
  remoteTracks() {
    return this.remote
      .filter((c) => c.creator === "responder" && (c.senders === "responder" || c.senders === "both"))
      .map((c) => ({
        mid: c.name,
        media: c.media,
        owner: c.sources.find((s) => s.owner)?.owner ?? null,
        msid: c.sources.find((s) => s.msid)?.msid ?? null,
      }));
  }

  remoteSdp(contents, setup) {
    const copy = clone(contents);
    if (setup) for (const c of copy) if (c.transport.fingerprint) c.transport.fingerprint.setup = setup;
    this.version += 1;
    return contentsToSdp(copy, { author: "responder", version: this.version, iceLite: true });
  }
}
