//! A media plane of one worker on loopback, and webrtc-rs peers joined to
//! it straight through the [`SfuHandle`] API, without XMPP: for the tests
//! of the sfu and the recorder, which need real DTLS-SRTP through the
//! bridge but not signaling. The peer answers the bridge's renegotiation
//! offers the way signaling would.

use std::sync::{Arc, Mutex};

use sfu::{
    CloseReason, EndpointConfig, EndpointEvent, EndpointId, RoomEvent, SdpAnswer, SdpOffer,
    SfuConfig, SfuHandle,
};
use tokio::sync::mpsc;

use crate::{PeerOptions, TestPeer};

/// Starts a media plane with one worker on an ephemeral loopback port.
pub fn start_sfu(endpoint: EndpointConfig) -> (SfuHandle, mpsc::UnboundedReceiver<RoomEvent>) {
    SfuHandle::start(SfuConfig {
        workers: 1,
        first_port: 0,
        endpoint,
        ..Default::default()
    })
    .expect("the media plane starts on loopback")
}

/// Rewrites the bridge's SDP before the peer sees it (to point its
/// candidates at a proxy in between).
pub type SdpFilter = Arc<dyn Fn(String) -> String + Send + Sync>;

/// A webrtc-rs peer in a room of the media plane.
pub struct Joined {
    pub peer: Arc<TestPeer>,
    pub id: EndpointId,
    /// Mids the bridge removed from this peer's session, in order.
    pub removed: Arc<Mutex<Vec<String>>>,
    /// Why the bridge closed this peer's session, once it has.
    pub closed: Arc<Mutex<Option<CloseReason>>>,
}

impl Joined {
    /// The stream id the bridge gives this peer's tracks at the others.
    pub fn stream_id(&self) -> String {
        self.id.to_string()
    }
}

/// A webrtc-rs peer built with `opts` joins `room` as `name`. A task
/// answers the bridge's renegotiation offers until the session closes; an
/// answer the bridge refuses fails that task loudly.
pub async fn join_sfu(
    sfu: &SfuHandle,
    room: &str,
    name: &str,
    opts: PeerOptions,
    filter: Option<SdpFilter>,
) -> Joined {
    let filter = filter.unwrap_or_else(|| Arc::new(|s| s));
    let peer = Arc::new(TestPeer::new(name, opts).await);
    let offer =
        SdpOffer::from_sdp_string(&peer.create_offer().await).expect("webrtc-rs offer parses");
    let (id, answer, mut events) = sfu
        .create_endpoint(room.into(), name.into(), offer)
        .await
        .expect("the bridge accepts the offer");
    peer.apply_answer(filter(answer.to_sdp_string())).await;

    let removed = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(Mutex::new(None));
    let (p, s, r, c) = (peer.clone(), sfu.clone(), removed.clone(), closed.clone());
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                EndpointEvent::Offer { offer, removed, .. } => {
                    let answer = p.apply_remote_offer(filter(offer.to_sdp_string())).await;
                    let answer =
                        SdpAnswer::from_sdp_string(&answer).expect("webrtc-rs answer parses");
                    if let Err(e) = s.accept_answer(id, answer).await {
                        panic!("the bridge refused {}'s answer: {e}", p.name());
                    }
                    r.lock().expect("lock").extend(removed);
                }
                EndpointEvent::Closed(reason) => {
                    *c.lock().expect("lock") = Some(reason);
                    break;
                }
                EndpointEvent::Connected => {}
            }
        }
    });
    Joined {
        peer,
        id,
        removed,
        closed,
    }
}
