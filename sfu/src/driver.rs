//! The thin async driver: media worker threads, their sockets, and the
//! handle the rest of Confab uses.
//!
//! Each worker is an OS thread with its own single-threaded tokio runtime,
//! one UDP socket and one [`Core`]. Packets never leave the thread that
//! received them: a room lives on exactly one worker, so forwarding takes no
//! lock and no cross-thread hop. Commands from signaling (create an
//! endpoint, apply an answer, ...) reach a worker over a channel; they are
//! per session, not per packet.
//!
//! Nothing queues without bound on the way through a worker: when the
//! worker is short of CPU and its socket's receive queue stands (see
//! [`crate::shed`]), stale media is dropped unread, and a datagram the
//! socket cannot take (send buffer full) is dropped rather than waited for;
//! both are counted (`confab_sfu_input_shed_total`,
//! `confab_sfu_send_dropped_total`).
//!
//! The socket itself, and reading it with the kernel's receive time, is
//! [`crate::socket`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::SfuConfig;
use crate::core::tap::TapEvent;
use crate::core::{Core, CoreEvent};
use crate::error::SfuError;
use crate::event::{EndpointEvent, EndpointStats, PublishedTrack, RoomEvent};
use crate::ids::{EndpointId, RoomId};
use crate::metrics::names;
use crate::shed::Shedder;
use crate::socket::{bind_media_socket, recv_stamped, Received, CONTROL_LEN, MAX_DATAGRAM};

/// Datagrams a worker reads in one go before it looks at its commands and
/// timers again.
const RECV_BATCH: usize = 64;

/// A request to a worker, with the channel its answer goes back on.
enum Command {
    Create {
        id: EndpointId,
        room: RoomId,
        label: String,
        offer: Box<SdpOffer>,
        events: mpsc::UnboundedSender<EndpointEvent>,
        reply: oneshot::Sender<Result<SdpAnswer, SfuError>>,
    },
    Answer {
        id: EndpointId,
        answer: Box<SdpAnswer>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Offer {
        id: EndpointId,
        offer: Box<SdpOffer>,
        reply: oneshot::Sender<Result<SdpAnswer, SfuError>>,
    },
    Close {
        id: EndpointId,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Stats {
        id: EndpointId,
        reply: oneshot::Sender<Option<EndpointStats>>,
    },
    RoomTracks {
        room: RoomId,
        reply: oneshot::Sender<Vec<PublishedTrack>>,
    },
    /// Taps (see [`crate::core::tap`]); handled in [`WorkerState::tap_command`].
    Tap(TapCommand),
}

struct Worker {
    commands: mpsc::UnboundedSender<Command>,
    addr: SocketAddr,
    load: Arc<AtomicUsize>,
}

/// Which worker holds a room, and how many endpoints are (or are being
/// created) in it. The count lets the entry go when the room empties
/// without racing a join that is on its way to the worker.
#[derive(Debug, Clone, Copy)]
struct Placement {
    worker: usize,
    endpoints: usize,
}

struct Shared {
    workers: Vec<Worker>,
    rooms: Arc<DashMap<RoomId, Placement>>,
    endpoints: Arc<DashMap<EndpointId, usize>>,
    next_id: AtomicU64,
}

/// The media plane as the rest of Confab sees it: cheap to clone, usable
/// from any task. Workers stop when the last handle is dropped.
#[derive(Clone)]
pub struct SfuHandle {
    shared: Arc<Shared>,
}

impl SfuHandle {
    /// Bind every worker's socket and start the workers. Returns the handle
    /// and the stream of [`RoomEvent`]s.
    pub fn start(config: SfuConfig) -> io::Result<(SfuHandle, mpsc::UnboundedReceiver<RoomEvent>)> {
        let provider = str0m::crypto::from_feature_flags();
        let (room_tx, room_rx) = mpsc::unbounded_channel();
        let rooms: Arc<DashMap<RoomId, Placement>> = Arc::new(DashMap::new());
        let endpoints: Arc<DashMap<EndpointId, usize>> = Arc::new(DashMap::new());
        let mut workers = Vec::new();
        for index in 0..config.worker_count() {
            let socket = bind_media_socket(config.bind_addr(index))?;
            let local = socket.local_addr()?;
            let advertised_ip = config.advertised_ip.unwrap_or(local.ip());
            if advertised_ip.is_unspecified() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "binding to an unspecified address needs an advertised address",
                ));
            }
            let candidate = SocketAddr::new(advertised_ip, local.port());
            let cert = provider
                .dtls_provider
                .generate_certificate()
                .ok_or_else(|| io::Error::other("could not generate a DTLS certificate"))?;
            let core = Core::new(config.endpoint.clone(), candidate, cert);
            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
            let load = Arc::new(AtomicUsize::new(0));
            let state = WorkerState {
                index,
                core,
                commands: cmd_rx,
                endpoint_events: HashMap::new(),
                taps: HashMap::new(),
                room_events: room_tx.clone(),
                rooms: rooms.clone(),
                endpoints: endpoints.clone(),
                load: load.clone(),
                latency: metrics::histogram!(names::FORWARD_LATENCY, "worker" => candidate.to_string()),
                send_dropped: metrics::counter!(names::SEND_DROPPED, "worker" => candidate.to_string()),
                input_shed: metrics::counter!(names::INPUT_SHED, "worker" => candidate.to_string()),
                shedder: Shedder::new(),
            };
            std::thread::Builder::new()
                .name(format!("confab-media-{index}"))
                .spawn(move || run_worker(socket, state))?;
            tracing::info!(worker = index, bind = %local, advertised = %candidate, "media worker started");
            workers.push(Worker {
                commands: cmd_tx,
                addr: candidate,
                load,
            });
        }
        let shared = Arc::new(Shared {
            workers,
            rooms,
            endpoints,
            next_id: AtomicU64::new(1),
        });
        Ok((SfuHandle { shared }, room_rx))
    }

    /// The address (as advertised in candidates) of every worker.
    pub fn worker_addrs(&self) -> Vec<SocketAddr> {
        self.shared.workers.iter().map(|w| w.addr).collect()
    }

    /// The worker a room is on, if it has endpoints.
    pub fn room_worker(&self, room: &RoomId) -> Option<usize> {
        self.shared.rooms.get(room).map(|p| p.worker)
    }

    /// Rooms that currently have endpoints.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.shared.rooms.iter().map(|e| e.key().clone()).collect()
    }

    /// Create an endpoint in `room` from the peer's SDP offer. Returns its
    /// id, the SDP answer, and the stream of its [`EndpointEvent`]s. The
    /// room is created on the least loaded worker if it is new.
    pub async fn create_endpoint(
        &self,
        room: RoomId,
        label: String,
        offer: SdpOffer,
    ) -> Result<
        (
            EndpointId,
            SdpAnswer,
            mpsc::UnboundedReceiver<EndpointEvent>,
        ),
        SfuError,
    > {
        let id = EndpointId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let worker = {
            let least = self.least_loaded();
            let mut entry = self.shared.rooms.entry(room.clone()).or_insert(Placement {
                worker: least,
                endpoints: 0,
            });
            entry.endpoints += 1;
            entry.worker
        };
        self.shared.endpoints.insert(id, worker);
        self.shared.workers[worker]
            .load
            .fetch_add(1, Ordering::Relaxed);
        let (events, events_rx) = mpsc::unbounded_channel();
        let (reply, rx) = oneshot::channel();
        let sent = self.shared.workers[worker].commands.send(Command::Create {
            id,
            room: room.clone(),
            label,
            offer: Box::new(offer),
            events,
            reply,
        });
        let result = match sent {
            Ok(()) => rx.await.unwrap_or(Err(SfuError::WorkerGone)),
            Err(_) => Err(SfuError::WorkerGone),
        };
        match result {
            Ok(answer) => Ok((id, answer, events_rx)),
            Err(e) => {
                // The worker never took the endpoint: undo the bookkeeping.
                forget_endpoint(&self.shared.rooms, &self.shared.endpoints, &room, id);
                self.shared.workers[worker]
                    .load
                    .fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Apply the peer's answer to the endpoint's outstanding offer.
    pub async fn accept_answer(&self, id: EndpointId, answer: SdpAnswer) -> Result<(), SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            id,
            Command::Answer {
                id,
                answer: Box::new(answer),
                reply,
            },
        )?;
        rx.await.unwrap_or(Err(SfuError::WorkerGone))
    }

    /// Apply a later offer from the participant (it starts or stops
    /// publishing a track) and return the answer.
    pub async fn accept_offer(
        &self,
        id: EndpointId,
        offer: SdpOffer,
    ) -> Result<SdpAnswer, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            id,
            Command::Offer {
                id,
                offer: Box::new(offer),
                reply,
            },
        )?;
        rx.await.unwrap_or(Err(SfuError::WorkerGone))
    }

    /// Close an endpoint (the participant left or hung up).
    pub async fn close_endpoint(&self, id: EndpointId) -> Result<(), SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(id, Command::Close { id, reply })?;
        rx.await.unwrap_or(Err(SfuError::WorkerGone))
    }

    /// A snapshot of an endpoint's statistics.
    pub async fn stats(&self, id: EndpointId) -> Result<EndpointStats, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.send(id, Command::Stats { id, reply })?;
        rx.await
            .map_err(|_| SfuError::WorkerGone)?
            .ok_or(SfuError::UnknownEndpoint(id))
    }

    /// The tracks published in a room.
    pub async fn room_tracks(&self, room: &RoomId) -> Result<Vec<PublishedTrack>, SfuError> {
        let worker = self
            .room_worker(room)
            .ok_or_else(|| SfuError::UnknownRoom(room.clone()))?;
        let (reply, rx) = oneshot::channel();
        self.shared.workers[worker]
            .commands
            .send(Command::RoomTracks {
                room: room.clone(),
                reply,
            })
            .map_err(|_| SfuError::WorkerGone)?;
        rx.await.map_err(|_| SfuError::WorkerGone)
    }

    fn send(&self, id: EndpointId, cmd: Command) -> Result<(), SfuError> {
        let worker = *self
            .shared
            .endpoints
            .get(&id)
            .ok_or(SfuError::UnknownEndpoint(id))?;
        self.shared.workers[worker]
            .commands
            .send(cmd)
            .map_err(|_| SfuError::WorkerGone)
    }

    fn least_loaded(&self) -> usize {
        self.shared
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.load.load(Ordering::Relaxed))
            .map(|(i, _)| i)
            .unwrap_or(0)
    }
}

fn forget_endpoint(
    rooms: &DashMap<RoomId, Placement>,
    endpoints: &DashMap<EndpointId, usize>,
    room: &RoomId,
    id: EndpointId,
) {
    endpoints.remove(&id);
    if let Entry::Occupied(mut e) = rooms.entry(room.clone()) {
        let p = e.get_mut();
        p.endpoints = p.endpoints.saturating_sub(1);
        if p.endpoints == 0 {
            e.remove();
        }
    }
}

/// Everything a worker thread owns.
struct WorkerState {
    index: usize,
    core: Core,
    commands: mpsc::UnboundedReceiver<Command>,
    endpoint_events: HashMap<EndpointId, mpsc::UnboundedSender<EndpointEvent>>,
    /// The taps of each tapped room (see [`crate::core::tap`]).
    taps: HashMap<RoomId, Vec<mpsc::Sender<TapEvent>>>,
    room_events: mpsc::UnboundedSender<RoomEvent>,
    rooms: Arc<DashMap<RoomId, Placement>>,
    endpoints: Arc<DashMap<EndpointId, usize>>,
    load: Arc<AtomicUsize>,
    latency: metrics::Histogram,
    /// Datagrams dropped because the socket's send buffer was full.
    send_dropped: metrics::Counter,
    /// Media datagrams dropped because they waited too long to be read.
    input_shed: metrics::Counter,
    shedder: Shedder,
}

fn run_worker(socket: std::net::UdpSocket, state: WorkerState) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "media worker could not start its runtime");
            return;
        }
    };
    runtime.block_on(async move {
        match UdpSocket::from_std(socket) {
            Ok(socket) => worker_loop(socket, state).await,
            Err(e) => tracing::error!(error = %e, "media worker could not use its socket"),
        }
    });
}

async fn worker_loop(socket: UdpSocket, mut st: WorkerState) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut control = [0u8; CONTROL_LEN];
    loop {
        let deadline = st.core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            cmd = st.commands.recv() => {
                let Some(cmd) = cmd else { break };
                st.command(cmd);
                st.flush(&socket, None);
            }
            r = socket.readable() => {
                match r {
                    // Drain what is queued (up to a batch) without going
                    // back to select.
                    Ok(()) => {
                        for _ in 0..RECV_BATCH {
                            match recv_stamped(&socket, &mut buf, &mut control) {
                                Ok(d) => st.input(&socket, d, &buf),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                // ICMP errors (a peer's port closed) surface
                                // here on some systems: they concern one
                                // peer, not the worker.
                                Err(e) => tracing::trace!(error = %e, "recv error"),
                            }
                        }
                    }
                    Err(e) => tracing::trace!(error = %e, "socket not readable"),
                }
                // The select prefers the socket, so a socket that never
                // runs dry would starve the timers (RTCP, NACKs, consent):
                // run the due ones after every batch.
                let now = Instant::now();
                if st.core.poll_timeout().is_some_and(|t| t <= now) {
                    st.core.handle_timeout(now);
                    st.flush(&socket, None);
                }
            }
            _ = sleep => {
                st.core.handle_timeout(Instant::now());
                st.flush(&socket, None);
            }
        }
    }
    tracing::info!(worker = st.index, "media worker stopped");
}

impl WorkerState {
    /// One datagram from the socket. Stale media is dropped (and counted)
    /// unprocessed when the [`Shedder`] says the receive queue stands: a
    /// worker short of CPU then sheds its oldest input instead of queueing
    /// seconds of it. STUN and DTLS are never dropped.
    fn input(&mut self, socket: &UdpSocket, d: Received, buf: &[u8]) {
        let arrived = Instant::now();
        let contents = &buf[..d.len];
        if crate::core::is_media(contents)
            && d.waited.is_some_and(|w| self.shedder.shed(arrived, w))
        {
            self.input_shed.increment(1);
            return;
        }
        let received = d
            .waited
            .and_then(|w| arrived.checked_sub(w))
            .unwrap_or(arrived);
        self.core
            .handle_datagram(arrived, received, d.source, contents);
        self.flush(socket, Some(arrived));
    }

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Create {
                id,
                room,
                label,
                offer,
                events,
                reply,
            } => {
                let result = self.core.create_endpoint(now, id, room, label, *offer);
                if result.is_ok() {
                    self.endpoint_events.insert(id, events);
                }
                let _ = reply.send(result);
            }
            Command::Answer { id, answer, reply } => {
                let _ = reply.send(self.core.accept_answer(now, id, *answer));
            }
            Command::Offer { id, offer, reply } => {
                let _ = reply.send(self.core.accept_offer(now, id, *offer));
            }
            Command::Close { id, reply } => {
                let _ = reply.send(self.core.close_endpoint(now, id));
            }
            Command::Stats { id, reply } => {
                let _ = reply.send(self.core.stats(id));
            }
            Command::RoomTracks { room, reply } => {
                let _ = reply.send(self.core.room_tracks(&room));
            }
            Command::Tap(cmd) => self.tap_command(now, cmd),
        }
    }

    /// Send what the core produced and deliver its events.
    fn flush(&mut self, socket: &UdpSocket, arrived: Option<Instant>) {
        while let Some(t) = self.core.poll_transmit() {
            match socket.try_send_to(&t.contents, t.destination) {
                Ok(_) => {}
                // The kernel's send buffer is full: drop and count, as a
                // congested link would, rather than stall every room of the
                // worker (and queue their input) until it drains. NACKs and
                // keyframe requests repair what subscribers miss.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.send_dropped.increment(1),
                Err(e) => tracing::trace!(error = %e, to = %t.destination, "send failed"),
            }
            if let Some(at) = arrived {
                self.latency.record(at.elapsed().as_secs_f64());
            }
        }
        while let Some(ev) = self.core.poll_event() {
            match ev {
                CoreEvent::Endpoint(id, ev) => {
                    let closed = matches!(ev, EndpointEvent::Closed(_));
                    if let Some(tx) = self.endpoint_events.get(&id) {
                        let _ = tx.send(ev);
                    }
                    if closed {
                        self.endpoint_events.remove(&id);
                    }
                }
                CoreEvent::Room(ev) => {
                    if let RoomEvent::EndpointClosed { room, endpoint, .. } = &ev {
                        forget_endpoint(&self.rooms, &self.endpoints, room, *endpoint);
                        self.load.fetch_sub(1, Ordering::Relaxed);
                    }
                    let _ = self.room_events.send(ev);
                }
            }
        }
        self.flush_taps();
    }
}

// ---------------------------------------------------------------------------
// Taps: the recorder's in-process subscription to a room's media.

/// How many packets a tap may have waiting before the worker drops what
/// follows (a tapper that cannot keep up loses packets, as a subscriber on a
/// congested link would, and asks for a keyframe; forwarding never waits).
const TAP_QUEUE: usize = 4096;

enum TapCommand {
    Add {
        room: RoomId,
        events: mpsc::Sender<TapEvent>,
    },
    Keyframe {
        track: crate::ids::TrackId,
    },
}

impl SfuHandle {
    /// Receive every RTP packet published in `room`, in process (see
    /// [`crate::core::tap`]), until the receiver is dropped. The room must
    /// have endpoints (it lives on the worker of its first endpoint).
    pub fn tap_room(&self, room: &RoomId) -> Result<mpsc::Receiver<TapEvent>, SfuError> {
        let worker = self
            .room_worker(room)
            .ok_or_else(|| SfuError::UnknownRoom(room.clone()))?;
        let (events, rx) = mpsc::channel(TAP_QUEUE);
        self.shared.workers[worker]
            .commands
            .send(Command::Tap(TapCommand::Add {
                room: room.clone(),
                events,
            }))
            .map_err(|_| SfuError::WorkerGone)?;
        Ok(rx)
    }

    /// A tapper needs a keyframe of `track` (starting a file, or after a
    /// loss).
    pub fn tap_keyframe_request(&self, track: &crate::ids::TrackId) -> Result<(), SfuError> {
        let cmd = Command::Tap(TapCommand::Keyframe {
            track: track.clone(),
        });
        self.send(track.publisher, cmd)
    }
}

impl WorkerState {
    fn tap_command(&mut self, now: Instant, cmd: TapCommand) {
        match cmd {
            TapCommand::Add { room, events } => {
                self.core.add_tap(room.clone());
                self.taps.entry(room).or_default().push(events);
            }
            TapCommand::Keyframe { track } => self.core.tap_keyframe_request(now, &track),
        }
    }

    /// Hand what the core queued for taps to their receivers; forget taps
    /// whose receiver is gone.
    fn flush_taps(&mut self) {
        while let Some(ev) = self.core.poll_tap() {
            let room = match &ev {
                TapEvent::Packet(p) => &p.room,
                TapEvent::Withdrawn { room, .. } => room,
            };
            let Some(senders) = self.taps.get_mut(room) else {
                continue;
            };
            let before = senders.len();
            senders.retain(|tx| match tx.try_send(ev.clone()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            let (gone, empty) = (before - senders.len(), senders.is_empty());
            let room = room.clone();
            if empty {
                self.taps.remove(&room);
            }
            for _ in 0..gone {
                self.core.remove_tap(&room);
            }
        }
    }
}
