// One call to a room: an RTCPeerConnection driven by the room's Jingle
// (docs/PROTOCOL.md §3-§6), through the pure mapping in jingle.js.
//
// What it is for: publishing the local microphone and camera (VP8 or H.264,
// simulcast with three rids), applying the bridge's content-add and
// content-remove, and telling the page which remote track belongs to whom.
// What it is not for: the room (MUC) and the page; room.js does those.

import xml from "@xmpp/xml";
import { BridgeSession, JingleError, NS, candidateFromLine } from "./jingle.js";

/** Simulcast layers, lowest first (docs/PROTOCOL.md §3). */
export const SIMULCAST = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];

const VIDEO_CODECS = { vp8: "video/VP8", h264: "video/H264" };

/** Codec preferences: the chosen codec first, the other one kept for receiving. */
function videoPreferences(codec) {
  const caps = RTCRtpReceiver.getCapabilities?.("video")?.codecs ?? [];
  const first = VIDEO_CODECS[codec] ?? VIDEO_CODECS.vp8;
  const rank = (c) => {
    if (c.mimeType === first) {
      // Among H.264 profiles prefer constrained baseline with packetization-mode=1.
      const fmtp = c.sdpFmtpLine ?? "";
      return fmtp.includes("packetization-mode=1") && fmtp.includes("42e01f") ? 0 : fmtp.includes("packetization-mode=1") ? 1 : 2;
    }
    if (Object.values(VIDEO_CODECS).includes(c.mimeType)) return 3;
    if (c.mimeType === "video/rtx") return 4;
    return null;
  };
  return caps
    .map((c) => [rank(c), c])
    .filter(([r]) => r !== null)
    .sort((a, b) => a[0] - b[0])
    .map(([, c]) => c);
}

function errorReply(err) {
  const condition = err instanceof JingleError ? err.condition : "bad-request";
  const type = condition === "item-not-found" || condition === "feature-not-implemented" ? "cancel" : "modify";
  const error = xml("error", { type }, xml(condition, { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }));
  if (err instanceof JingleError && err.jingleCondition) error.append(xml(err.jingleCondition, { xmlns: NS.errors }));
  return error;
}

/**
 * A call. Events (through `on`): "track" {mid, owner, kind, track},
 * "removed" {mids}, "ended" {reason}, "state" {state}.
 */
export class Call extends EventTarget {
  constructor({ xmpp, roomJid, ownJid, stream, codec = "vp8", simulcast = true, log = console }) {
    super();
    this.xmpp = xmpp;
    this.roomJid = roomJid;
    this.ownJid = ownJid;
    this.stream = stream;
    this.codec = codec;
    this.simulcast = simulcast;
    this.log = log;
    this.session = new BridgeSession({ sid: crypto.randomUUID(), ownJid, roomJid });
    this.queue = Promise.resolve();
    this.pc = null;
    this.audioSender = null;
    this.videoSender = null;
    this.ended = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Publish and call the room: session-initiate. Resolves when the IQ is answered. */
  async start() {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc = pc;
    const audio = this.stream?.getAudioTracks()[0];
    const video = this.stream?.getVideoTracks()[0];
    const streams = this.stream ? [this.stream] : [];
    // A participant that sends nothing still offers one audio content.
    const a = pc.addTransceiver(audio ?? "audio", { direction: audio ? "sendonly" : "inactive", streams });
    this.audioSender = a.sender;
    if (video) {
      const v = pc.addTransceiver(video, {
        direction: "sendonly",
        streams,
        sendEncodings: this.simulcast ? SIMULCAST.map((e) => ({ ...e })) : undefined,
      });
      const prefs = videoPreferences(this.codec);
      if (prefs.length && v.setCodecPreferences) v.setCodecPreferences(prefs);
      this.videoSender = v.sender;
    }
    pc.addEventListener("track", (ev) => {
      const mid = ev.transceiver?.mid;
      const info = this.session.remoteTracks().find((t) => t.mid === mid);
      this.emit("track", { mid, owner: info?.owner ?? null, kind: ev.track.kind, track: ev.track });
    });
    pc.addEventListener("connectionstatechange", () => {
      this.emit("state", { state: pc.connectionState });
      if (pc.connectionState === "failed") this.hangUp("connectivity-error");
    });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // The bridge is ICE-lite and learns our address from our checks: send
    // what is gathered at once, trickle the rest.
    await this.gathered(250);
    const initiate = this.session.initiate(pc.localDescription.sdp);
    // Candidates found after the offer went out are trickled.
    pc.addEventListener("icecandidate", (ev) => {
      if (!ev.candidate?.candidate || this.ended) return;
      const c = candidateFromLine(ev.candidate.candidate);
      if (!c) return;
      this.send(this.session.transportInfo(ev.candidate.sdpMid, c)).catch(() => {});
    });
    await this.send(initiate);
  }

  gathered(limit) {
    const pc = this.pc;
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        pc.removeEventListener("icegatheringstatechange", check);
        clearTimeout(timer);
        resolve();
      };
      const check = () => pc.iceGatheringState === "complete" && done();
      const timer = setTimeout(done, limit);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  send(jingle) {
    return this.xmpp.iqCaller.request(xml("iq", { type: "set", to: this.roomJid }, jingle), 30_000);
  }

  /**
   * A Jingle request from the room. Checks and updates the session at once
   * (the returned value is the IQ reply: `true` for a result, or an
   * `<error/>`), then applies the change to the peer connection in order.
   */
  handle(jingle) {
    if (jingle.attrs.sid !== this.session.sid) {
      return errorReply(new JingleError("unknown session", "item-not-found", "unknown-session"));
    }
    try {
      switch (jingle.attrs.action) {
        case "session-accept": {
          const sdp = this.session.onSessionAccept(jingle);
          this.enqueue(async () => {
            await this.pc.setRemoteDescription({ type: "answer", sdp });
            this.emit("accepted", {});
          });
          return true;
        }
        case "content-add": {
          const { sdp } = this.session.onContentAdd(jingle);
          this.enqueue(async () => {
            await this.pc.setRemoteDescription({ type: "offer", sdp });
            await this.pc.setLocalDescription(await this.pc.createAnswer());
            await this.send(this.session.contentAccept(this.pc.localDescription.sdp));
          });
          return true;
        }
        case "content-remove": {
          const { sdp, names } = this.session.onContentRemove(jingle);
          this.enqueue(async () => {
            await this.pc.setRemoteDescription({ type: "offer", sdp });
            await this.pc.setLocalDescription(await this.pc.createAnswer());
            this.emit("removed", { mids: names });
          });
          return true;
        }
        case "session-terminate": {
          const reason = this.session.onSessionTerminate(jingle);
          this.close(reason);
          return true;
        }
        case "transport-info":
          return true;
        default:
          return errorReply(new JingleError("unsupported action", "feature-not-implemented", "unsupported-info"));
      }
    } catch (err) {
      this.log.warn("refused Jingle from the room:", err.message);
      return errorReply(err);
    }
  }

  enqueue(step) {
    this.queue = this.queue.then(step).catch((err) => {
      this.log.error("applying the room's change failed:", err);
      this.hangUp("failed-application");
    });
  }

  /** Swap what the camera sender sends (screen share, camera switch). */
  async replaceVideo(track) {
    if (this.videoSender) await this.videoSender.replaceTrack(track);
  }

  /** End the call from this side. */
  hangUp(reason = "success") {
    if (this.ended) return;
    const terminate = this.session.terminate(reason);
    this.send(terminate).catch(() => {});
    this.close(reason);
  }

  close(reason) {
    if (this.ended) return;
    this.ended = true;
    this.pc?.close();
    this.emit("ended", { reason });
  }

  /** getStats of the peer connection, or null when it is gone. */
  async stats() {
    if (!this.pc || this.ended) return null;
    return this.pc.getStats();
  }
}
