// What the page reads from getStats: who is speaking and how good the
// connection is. Pure functions of RTCStatsReport-like maps, so they are
// testable without a browser.

/** Audio levels (0..1) per nick: remote from inbound-rtp, own from media-source. */
export class LevelMeter {
  constructor() {
    this.smoothed = new Map();
  }

  /** `mids`: mid -> nick of the remote tracks; `self`: the own nick. */
  update(stats, mids, self) {
    const raw = new Map();
    for (const s of stats.values()) {
      let nick = null;
      if (s.type === "inbound-rtp" && s.kind === "audio") nick = mids.get(s.mid) ?? null;
      else if (s.type === "media-source" && s.kind === "audio") nick = self;
      if (nick && typeof s.audioLevel === "number") raw.set(nick, Math.max(raw.get(nick) ?? 0, s.audioLevel));
    }
    const out = new Map();
    for (const [nick, level] of raw) {
      // Fast attack, slow release: a speaker stays highlighted between words.
      const prev = this.smoothed.get(nick) ?? 0;
      const next = level > prev ? level : prev * 0.7 + level * 0.3;
      out.set(nick, next);
    }
    this.smoothed = out;
    return out;
  }
}

/**
 * Connection quality from the selected candidate pair's round-trip time
 * and the loss seen in both directions since the last update.
 * level: 3 good, 2 fair, 1 poor, 0 not connected.
 */
export class Quality {
  constructor() {
    this.last = new Map();
  }

  update(stats) {
    let rtt = null;
    let connected = false;
    let lost = 0;
    let received = 0;
    let remoteLoss = 0;
    const seen = new Map();
    for (const s of stats.values()) {
      if (s.type === "candidate-pair" && s.state === "succeeded" && (s.nominated || s.selected)) {
        connected = true;
        if (typeof s.currentRoundTripTime === "number") rtt = s.currentRoundTripTime;
      } else if (s.type === "inbound-rtp") {
        const prev = this.last.get(s.id) ?? { lost: 0, received: 0 };
        const now = { lost: s.packetsLost ?? 0, received: s.packetsReceived ?? 0 };
        seen.set(s.id, now);
        lost += Math.max(0, now.lost - prev.lost);
        received += Math.max(0, now.received - prev.received);
      } else if (s.type === "remote-inbound-rtp" && typeof s.fractionLost === "number") {
        remoteLoss = Math.max(remoteLoss, s.fractionLost);
      }
    }
    this.last = seen;
    const loss = Math.max(received + lost > 0 ? lost / (received + lost) : 0, remoteLoss);
    let level = 0;
    if (connected) {
      level = 3;
      if (loss > 0.02 || (rtt ?? 0) > 0.3) level = 2;
      if (loss > 0.1 || (rtt ?? 0) > 0.8) level = 1;
    }
    const label = ["Not connected", "Poor", "Fair", "Good"][level];
    const parts = [label];
    if (rtt !== null) parts.push(`round trip ${Math.round(rtt * 1000)} ms`);
    if (connected) parts.push(`loss ${(loss * 100).toFixed(1)}%`);
    return { level, rtt, loss, summary: parts.join(" · ") };
  }
}
