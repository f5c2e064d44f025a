// The Jingle <-> SDP mapping of the call page, on real Chromium SDPs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse as parseXml } from "ltx";
import xml from "@xmpp/xml";
import { BridgeSession, JingleError, contentsToSdp, jingleXml, parseContents, sdpToContents } from "../src/jingle.js";

const fixture = (name) => readFileSync(new URL(`../../../proto/tests/fixtures/chromium-156-sdp/${name}`, import.meta.url), "utf8");
/** What crosses XMPP: the element serialised and parsed again. */
const wire = (el) => parseXml(el.toString());
const ROOM = "standup@conference.localhost";
const ME = "guest@localhost/web";

/** The bridge's side, as Confab's focus writes it: answer the offered contents. */
function sessionAccept(sid, offered) {
  const contents = offered.map((c) => ({
    ...structuredClone(c),
    senders: c.senders === "none" ? "none" : "initiator",
    codecs: c.codecs.filter((p) => ["opus", "VP8", "H264", "rtx"].includes(p.name)),
    sources: [],
    ssrcGroups: [],
    rids: c.rids.map((r) => ({ id: r.id, direction: "recv" })),
    simulcast: c.simulcast ? { send: null, recv: c.simulcast.send } : null,
    transport: {
      ufrag: "brdg",
      pwd: "bridgepasswordbridgepassword",
      fingerprint: { hash: "sha-256", value: "AA:BB", setup: "passive" },
      candidates: [{ foundation: "1", component: 1, protocol: "udp", priority: 2130706431, ip: "127.0.0.1", port: 10000, type: "host", relAddr: null, relPort: null, generation: 0 }],
    },
  }));
  return wire(jingleXml({ action: "session-accept", sid, initiator: ME, responder: ROOM }, contents));
}

function bridgeTrack(name, media, ssrc, owner) {
  return {
    name,
    creator: "responder",
    senders: "responder",
    media,
    codecs: media === "audio" ? [{ id: 111, name: "opus", clockrate: 48000, channels: 2, params: [{ name: "minptime", value: "10" }], rtcpFb: [] }] : [{ id: 96, name: "VP8", clockrate: 90000, channels: 1, params: [], rtcpFb: [{ type: "nack", subtype: null }] }],
    rtcpFb: [],
    hdrexts: [{ id: 4, uri: "urn:ietf:params:rtp-hdrext:sdes:mid", senders: "both" }],
    extmapAllowMixed: false,
    rtcpMux: true,
    sources: [{ ssrc, cname: "ep7", msid: { stream: "ep7", track: `ep7-${media}` }, owner }],
    ssrcGroups: [],
    rids: [],
    simulcast: null,
    transport: { ufrag: "brdg", pwd: "bridgepasswordbridgepassword", fingerprint: { hash: "sha-256", value: "AA:BB", setup: "actpass" }, candidates: [] },
  };
}

function contentAdd(sid, contents) {
  const el = jingleXml({ action: "content-add", sid }, contents);
  // The owner extension on each source.
  for (const source of el.getChildren("content").flatMap((c) => c.getChild("description").getChildren("source"))) {
    const owner = contents.flatMap((c) => c.sources).find((s) => String(s.ssrc) === source.attrs.ssrc)?.owner;
    if (owner) source.append(xml("owner", { xmlns: "urn:confab:jingle:owner:0", jid: owner }));
  }
  return wire(el);
}

function started() {
  const session = new BridgeSession({ sid: "s1", ownJid: ME, roomJid: ROOM });
  const initiate = wire(session.initiate(fixture("offer_simulcast.sdp")));
  return { session, initiate };
}

test("a simulcast offer becomes a session-initiate with rids, sources and one BUNDLE group", () => {
  const { initiate } = started();
  assert.equal(initiate.attrs.action, "session-initiate");
  assert.equal(initiate.attrs.initiator, ME);
  const contents = parseContents(initiate);
  assert.deepEqual(contents.map((c) => [c.name, c.media, c.senders]), [["0", "audio", "initiator"], ["1", "video", "initiator"]]);
  const video = contents[1];
  assert.deepEqual(video.rids, [{ id: "q", direction: "send" }, { id: "h", direction: "send" }, { id: "f", direction: "send" }]);
  assert.deepEqual(video.simulcast, { send: "q;h;f", recv: null });
  assert.ok(video.codecs.some((p) => p.name === "VP8") && video.codecs.some((p) => p.name === "H264"));
  const red = contents[0].codecs.find((p) => p.name === "red");
  assert.deepEqual(red.params, [{ name: "", value: "111/111" }], "a value-only fmtp is one nameless parameter");
  assert.equal(contents[0].sources[0].ssrc, 1494195318);
  assert.equal(contents[0].transport.fingerprint.setup, "actpass");
  // mDNS names and TCP candidates are left out; UDP host candidates stay.
  assert.ok(contents[0].transport.candidates.length > 0);
  assert.ok(contents[0].transport.candidates.every((c) => c.protocol === "udp"));
  const group = initiate.getChild("group", "urn:xmpp:jingle:apps:grouping:0");
  assert.deepEqual(group.getChildren("content").map((c) => c.attrs.name), ["0", "1"]);
});

test("the session-accept becomes an ICE-lite answer that receives the three layers", () => {
  const { session, initiate } = started();
  const sdp = session.onSessionAccept(sessionAccept("s1", parseContents(initiate)));
  assert.match(sdp, /a=ice-lite/);
  assert.match(sdp, /a=group:BUNDLE 0 1/);
  assert.match(sdp, /a=rid:q recv/);
  assert.match(sdp, /a=simulcast:recv q;h;f/);
  assert.match(sdp, /a=setup:passive/);
  assert.match(sdp, /a=recvonly/);
  assert.match(sdp, /a=candidate:1 1 udp 2130706431 127.0.0.1 10000 typ host/);
});

test("content-add appends the bridge's tracks to the whole session; content-remove makes them inactive", () => {
  const { session, initiate } = started();
  session.onSessionAccept(sessionAccept("s1", parseContents(initiate)));
  const { sdp, names } = session.onContentAdd(contentAdd("s1", [bridgeTrack("2", "audio", 1111, `${ROOM}/bob`), bridgeTrack("3", "video", 2222, `${ROOM}/bob`)]));
  assert.deepEqual(names, ["2", "3"]);
  const mids = [...sdp.matchAll(/a=mid:(\S+)/g)].map((m) => m[1]);
  assert.deepEqual(mids, ["0", "1", "2", "3"]);
  assert.match(sdp, /a=group:BUNDLE 0 1 2 3/);
  assert.match(sdp, /a=msid:ep7 ep7-video/);
  assert.match(sdp, /a=ssrc:2222 msid:ep7 ep7-video/);
  assert.match(sdp, /a=setup:actpass/);
  // Bundled contents without candidates inherit the session's.
  assert.equal((sdp.match(/a=candidate:/g) ?? []).length, 4);
  assert.deepEqual(session.remoteTracks().map((t) => [t.mid, t.media, t.owner]), [["2", "audio", `${ROOM}/bob`], ["3", "video", `${ROOM}/bob`]]);

  // Another change before the content-accept is out of order.
  assert.throws(() => session.onContentAdd(contentAdd("s1", [bridgeTrack("4", "audio", 3333, null)])), (e) => e.jingleCondition === "out-of-order");

  // The browser's answer (as Chromium writes one) -> content-accept with just the new contents.
  const answer = contentsToSdp(
    sdpToContents(sdp, "responder").map((c) => ({ ...c, senders: c.creator === "initiator" && ["2", "3"].includes(c.name) ? "responder" : c.senders, transport: { ...c.transport, ufrag: "mine", pwd: "minepasswordminepassword", fingerprint: { hash: "sha-256", value: "CC:DD", setup: "active" } } })),
    { author: "initiator" },
  );
  const accept = wire(session.contentAccept(answer));
  assert.equal(accept.attrs.action, "content-accept");
  const accepted = parseContents(accept);
  assert.deepEqual(accepted.map((c) => [c.name, c.creator]), [["2", "responder"], ["3", "responder"]]);
  assert.equal(accepted[0].transport.fingerprint.setup, "active");

  const removed = session.onContentRemove(wire(xml("jingle", { xmlns: "urn:xmpp:jingle:1", action: "content-remove", sid: "s1" }, xml("content", { creator: "responder", name: "3" }))));
  assert.deepEqual(removed.names, ["3"]);
  const video = removed.sdp.split("m=video").at(-1);
  assert.match(video, /a=inactive/);
  assert.doesNotMatch(video, /a=ssrc:/);
  assert.deepEqual(session.remoteTracks().map((t) => t.mid), ["2"]);
});

test("bad Jingle from the room is refused with XEP-0166's errors and changes nothing", () => {
  const { session, initiate } = started();
  const other = new BridgeSession({ sid: "other", ownJid: ME, roomJid: ROOM });
  assert.throws(() => other.onSessionAccept(sessionAccept("s1", parseContents(initiate))), (e) => e instanceof JingleError && e.jingleCondition === "unknown-session");
  assert.throws(() => session.onContentAdd(contentAdd("s1", [bridgeTrack("2", "audio", 1, null)])), (e) => e.jingleCondition === "out-of-order");

  const accept = sessionAccept("s1", parseContents(initiate));
  const bad = parseXml(accept.toString().replace('ufrag="brdg"', 'ufrag="a&#10;a=evil"'));
  assert.throws(() => session.onSessionAccept(bad), (e) => e.condition === "bad-request");
  const port = parseXml(accept.toString().replace('port="10000"', 'port="70000"'));
  assert.throws(() => session.onSessionAccept(port), (e) => e.condition === "bad-request");
  // Still waiting for a good one.
  assert.match(session.onSessionAccept(accept), /a=ice-lite/);

  assert.throws(() => session.onContentAdd(contentAdd("s1", [bridgeTrack("0", "audio", 1, null)])), /reuses a content name/);
  const tooMany = Array.from({ length: 65 }, (_, i) => ({ foundation: String(i), component: 1, protocol: "udp", priority: 1, ip: "127.0.0.1", port: 1000 + i, type: "host", relAddr: null, relPort: null, generation: 0 }));
  const flood = bridgeTrack("9", "audio", 5, null);
  flood.transport.candidates = tooMany;
  assert.throws(() => session.onContentAdd(contentAdd("s1", [flood])), /too many candidates/);
  assert.deepEqual(session.remoteTracks(), []);
});
