//! The admin API, JSON:
//!
//! - `GET /api/rooms`: every room with its number of participants and of
//!   those in the call ([`RoomList`]);
//! - `GET /api/rooms/<room>`: one room (`<room>` is the name before
//!   `@conference.<domain>`), its participants by nick, whether each is in
//!   the call, the tracks each publishes (kind, codec, simulcast layers,
//!   bitrate and packets in and out, loss) and what each receives
//!   ([`RoomDetail`]);
//! - `POST /api/rooms/<room>/recording` starts recording the room (201,
//!   [`RecordingStarted`]; 409 if it is recorded already or no one is in
//!   the call), `DELETE` stops it (200, [`RecordingStopped`]; 409 if it is
//!   not recorded); the room's occupants are told either way;
//! - `GET /api/recordings`: the recordings in progress and every file in
//!   the recordings directory ([`RecordingList`]);
//! - `GET /recordings/<file>`: one file, `video/webm` or `video/mp4`,
//!   streamed, with `Range` requests answered (206) so players can seek
//!   (400 for a name no recording has, 404 for one that does not exist).
//!
//! Rooms and occupants come from `signaling` (a snapshot from its router),
//! tracks and counters from `sfu` (each call's endpoint statistics, which
//! the media plane refreshes once a second). Errors are JSON too:
//! `{"error": "..."}` with 400 for a name that cannot be a room and 404 for
//! a room that does not exist.

use std::collections::HashMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::future::join_all;
use serde::Serialize;
use sfu::{EndpointId, EndpointStats, MediaKind, PublishedTrack, RoomId, TrackStats};
use signaling::server::RoomSnapshot;

use crate::WebConfig;

/// `GET /api/rooms`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomList {
    /// Every room, sorted by name.
    pub rooms: Vec<RoomEntry>,
}

/// One room of [`RoomList`].
#[derive(Debug, Clone, Serialize)]
pub struct RoomEntry {
    /// The room's name (its page is `/<name>`).
    pub name: String,
    /// Its JID.
    pub jid: String,
    /// Occupants.
    pub participants: usize,
    /// Occupants in the call.
    pub in_call: usize,
}

/// `GET /api/rooms/<room>`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomDetail {
    /// The room's name.
    pub name: String,
    /// Its JID.
    pub jid: String,
    /// Its subject (empty if none).
    pub subject: String,
    /// Its occupants, in join order.
    pub participants: Vec<Participant>,
}

/// One occupant of [`RoomDetail`].
#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    /// Its nick.
    pub nick: String,
    /// `moderator` or `participant`.
    pub role: String,
    /// It has a call with the bridge (a media-plane endpoint).
    pub in_call: bool,
    /// Its call's ICE and DTLS are up.
    pub connected: bool,
    /// Round-trip time to it, in milliseconds, as last measured.
    pub rtt_ms: Option<f64>,
    /// All bytes the bridge received from it.
    pub bytes_in: u64,
    /// All bytes the bridge sent to it.
    pub bytes_out: u64,
    /// What it publishes.
    pub tracks: Vec<Track>,
    /// What the bridge forwards to it.
    pub receives: Vec<Received>,
}

/// A published track.
#[derive(Debug, Clone, Serialize)]
pub struct Track {
    /// Its m-line (Jingle content name) in the publisher's session.
    pub mid: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// `opus`, `VP8`, `H264`; `null` before the first packet.
    pub codec: Option<String>,
    /// Simulcast layers, lowest first; empty without simulcast.
    pub rids: Vec<String>,
    /// Bits per second received from the publisher (all layers).
    pub bitrate_in_bps: u64,
    /// Bits per second forwarded to all its subscribers together.
    pub bitrate_out_bps: u64,
    /// RTP packets received from the publisher.
    pub packets_in: u64,
    /// RTP packets forwarded to all its subscribers together.
    pub packets_out: u64,
    /// Loss from the publisher (the worst layer), 0.0 to 1.0, as last
    /// reported.
    pub loss: Option<f32>,
    /// Participants it is forwarded to.
    pub subscribers: usize,
    /// Per layer, lowest first (one entry without simulcast).
    pub layers: Vec<Layer>,
}

/// One simulcast layer of a [`Track`] as received.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    /// Its rid; `null` without simulcast.
    pub rid: Option<String>,
    /// Bits per second.
    pub bitrate_bps: u64,
    /// RTP packets.
    pub packets: u64,
    /// Loss, 0.0 to 1.0.
    pub loss: Option<f32>,
}

/// A track the bridge forwards to a participant.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// Its m-line in the receiver's session.
    pub mid: String,
    /// The publisher's nick (`null` if it is not an occupant any more).
    pub from: Option<String>,
    /// The track's m-line in the publisher's session ([`Track::mid`]).
    pub source_mid: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// The codec.
    pub codec: Option<String>,
    /// Bits per second.
    pub bitrate_bps: u64,
    /// RTP packets.
    pub packets: u64,
    /// Loss toward the receiver, 0.0 to 1.0, as it last reported.
    pub loss: Option<f32>,
    /// NACKs the receiver sent.
    pub nacks: u64,
    /// Keyframe requests (PLI and FIR) the receiver sent.
    pub keyframe_requests: u64,
}

/// `POST /api/rooms/<room>/recording`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingStarted {
    /// The room's name.
    pub room: String,
    /// When it started, seconds since the Unix epoch.
    pub started_unix: u64,
}

/// `DELETE /api/rooms/<room>/recording`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingStopped {
    /// The room's name.
    pub room: String,
    /// The recording's files, one per participant.
    pub files: Vec<String>,
}

/// `GET /api/recordings`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingList {
    /// Rooms being recorded now.
    pub recording: Vec<InProgress>,
    /// Every file, newest first.
    pub files: Vec<FileEntry>,
}

/// A room being recorded.
#[derive(Debug, Clone, Serialize)]
pub struct InProgress {
    /// The room's name.
    pub room: String,
    /// When it started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Who started it: a moderator's nick, or `admin`.
    pub by: String,
}

/// A recording file.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// Its name.
    pub name: String,
    /// Where to download it.
    pub url: String,
    /// Bytes.
    pub size: u64,
    /// Last written, seconds since the Unix epoch.
    pub modified_unix: u64,
    /// Still being written.
    pub in_progress: bool,
}

/// An API error: a status and `{"error": message}`.
#[derive(Debug, Clone)]
pub struct ApiError(pub StatusCode, pub String);

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: &self.1 })).into_response()
    }
}

/// The API's routes.
pub fn routes(config: WebConfig) -> Router {
    let unknown = || async { ApiError(StatusCode::NOT_FOUND, "no such API route".into()) };
    // Recordings are for admins only (see `auth`).
    let admin = Router::new()
        .route(
            "/api/rooms/{room}/recording",
            post(start_recording).delete(stop_recording),
        )
        .route("/api/recordings", get(recordings))
        .route("/recordings/{file}", get(download))
        .route_layer(axum::middleware::from_fn_with_state(
            config.admin_token.clone(),
            crate::auth::require_admin,
        ));
    Router::new()
        .route("/api/rooms", get(rooms))
        .route("/api/rooms/{room}", get(room))
        .merge(admin)
        .route("/api", get(unknown))
        .route("/api/{*rest}", get(unknown))
        .with_state(config)
}

async fn rooms(State(config): State<WebConfig>) -> Json<RoomList> {
    let rooms = config
        .signaling
        .rooms()
        .await
        .into_iter()
        .map(|r| RoomEntry {
            name: room_name(&r.jid),
            jid: r.jid.to_string(),
            participants: r.occupants,
            in_call: r.in_call,
        })
        .collect();
    Json(RoomList { rooms })
}

async fn room(
    State(config): State<WebConfig>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<RoomDetail>, ApiError> {
    let Path(name) = name.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let jid = config.signaling.room_jid(&name).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a valid room name"),
        )
    })?;
    let snapshot = config.signaling.room(jid.clone()).await.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no room {:?}", room_name(&jid)),
        )
    })?;
    let tracks = config
        .sfu
        .room_tracks(&RoomId::from(jid.to_string()))
        .await
        .unwrap_or_default();
    let stats: Vec<Option<EndpointStats>> = join_all(snapshot.occupants.iter().map(|o| async {
        match o.endpoint {
            Some(ep) => config.sfu.stats(ep).await.ok(),
            None => None,
        }
    }))
    .await;
    Ok(Json(detail(&snapshot, &tracks, &stats)))
}

/// The room called `name`, which must exist.
async fn existing_room(
    config: &WebConfig,
    name: Result<Path<String>, PathRejection>,
) -> Result<signaling::jid::BareJid, ApiError> {
    let Path(name) = name.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let jid = config.signaling.room_jid(&name).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a valid room name"),
        )
    })?;
    if config.signaling.room(jid.clone()).await.is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no room {:?}", room_name(&jid)),
        ));
    }
    Ok(jid)
}

fn record_error(e: &recorder::RecordError) -> ApiError {
    use recorder::RecordError as E;
    let status = match e {
        E::AlreadyRecording | E::NotRecording | E::Sfu(sfu::SfuError::UnknownRoom(_)) => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(status, e.for_people())
}

async fn start_recording(
    State(config): State<WebConfig>,
    name: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<RecordingStarted>), ApiError> {
    let jid = existing_room(&config, name).await?;
    let active = config
        .recordings
        .start(&RoomId::from(jid.to_string()), "admin")
        .map_err(|e| record_error(&e))?;
    config
        .signaling
        .recording_changed(&jid, "admin", true)
        .await;
    Ok((
        StatusCode::CREATED,
        Json(RecordingStarted {
            room: room_name(&jid),
            started_unix: active.started_unix,
        }),
    ))
}

async fn stop_recording(
    State(config): State<WebConfig>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<RecordingStopped>, ApiError> {
    let jid = existing_room(&config, name).await?;
    let files = config
        .recordings
        .stop(&RoomId::from(jid.to_string()))
        .await
        .map_err(|e| record_error(&e))?;
    config
        .signaling
        .recording_changed(&jid, "admin", false)
        .await;
    Ok(Json(RecordingStopped {
        room: room_name(&jid),
        files: files.into_iter().map(|f| f.name).collect(),
    }))
}

async fn recordings(State(config): State<WebConfig>) -> Result<Json<RecordingList>, ApiError> {
    let r = &config.recordings;
    let recording = r
        .in_progress()
        .into_iter()
        .map(|a| InProgress {
            room: a.room.as_str().split('@').next().unwrap_or("").to_owned(),
            started_unix: a.started_unix,
            by: a.by,
        })
        .collect();
    let files = r
        .files()
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("listing recordings: {e}"),
            )
        })?
        .into_iter()
        .map(|f| FileEntry {
            url: format!("/recordings/{}", f.name),
            name: f.name,
            size: f.size,
            modified_unix: f.modified_unix,
            in_progress: f.in_progress,
        })
        .collect();
    Ok(Json(RecordingList { recording, files }))
}

/// One recording, streamed from disk (never whole in memory) by tower-http's
/// `ServeFile`, which also answers `Range` requests so that players can
/// seek, and `If-Modified-Since`.
async fn download(
    State(config): State<WebConfig>,
    name: Result<Path<String>, PathRejection>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let (true, Some(ctype)) = (
        recorder::registry::valid_name(&name),
        recorder::registry::content_type(&name),
    ) else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a recording's name"),
        ));
    };
    let path = config
        .recordings
        .file_path(&name)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no recording {name:?}")))?;
    let mime = ctype
        .parse::<mime_guess::mime::Mime>()
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let response = tower_http::services::ServeFile::new_with_mime(path, &mime)
        .try_call(request)
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading {name:?}: {e}"),
            )
        })?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no recording {name:?}"),
        ));
    }
    // Names are letters, digits, '-' and '_'; only ASCII ones go in a header.
    let filename: String = if name.is_ascii() {
        name.clone()
    } else {
        "recording".to_owned() + &name[name.rfind('.').unwrap_or(0)..]
    };
    let disposition = format!("attachment; filename=\"{filename}\"");
    let mut response = response.map(axum::body::Body::new);
    if let Ok(value) = axum::http::HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The room's name: the node of its JID.
fn room_name(jid: &signaling::jid::BareJid) -> String {
    jid.node()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

/// Put together a room's snapshot, its published tracks and each
/// occupant's endpoint statistics (`stats[i]` for `snapshot.occupants[i]`).
fn detail(
    snapshot: &RoomSnapshot,
    tracks: &[PublishedTrack],
    stats: &[Option<EndpointStats>],
) -> RoomDetail {
    let nick_of: HashMap<EndpointId, &str> = snapshot
        .occupants
        .iter()
        .filter_map(|o| Some((o.endpoint?, o.nick.as_str())))
        .collect();
    // Every forwarded copy of a track, by the track it carries.
    let mut forwarded: HashMap<(EndpointId, &str), Vec<&TrackStats>> = HashMap::new();
    for s in stats.iter().flatten() {
        for t in &s.egress {
            if let Some(src) = &t.source {
                forwarded
                    .entry((src.publisher, src.mid.as_str()))
                    .or_default()
                    .push(t);
            }
        }
    }
    let participants = snapshot
        .occupants
        .iter()
        .zip(stats)
        .map(|(o, s)| {
            let mut p = Participant {
                nick: o.nick.clone(),
                role: o.role.as_str().to_owned(),
                in_call: s.is_some(),
                connected: false,
                rtt_ms: None,
                bytes_in: 0,
                bytes_out: 0,
                tracks: Vec::new(),
                receives: Vec::new(),
            };
            let Some(s) = s else { return p };
            p.connected = s.connected;
            p.rtt_ms = s.rtt.map(|d| d.as_secs_f64() * 1000.0);
            p.bytes_in = s.bytes_in;
            p.bytes_out = s.bytes_out;
            p.tracks = tracks
                .iter()
                .filter(|t| t.id.publisher == s.id)
                .map(|t| {
                    let mut layers: Vec<&TrackStats> =
                        s.ingress.iter().filter(|i| i.mid == t.id.mid).collect();
                    // Lowest layer first, as the rids are listed.
                    layers.sort_by_key(|l| {
                        l.rid
                            .as_ref()
                            .and_then(|r| t.rids.iter().position(|x| x == r))
                    });
                    let copies = forwarded
                        .get(&(s.id, t.id.mid.as_str()))
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    Track {
                        mid: t.id.mid.clone(),
                        kind: kind_name(t.kind),
                        codec: layers.iter().find_map(|l| l.codec.clone()),
                        rids: t.rids.clone(),
                        bitrate_in_bps: layers.iter().map(|l| l.bitrate_bps).sum(),
                        bitrate_out_bps: copies.iter().map(|c| c.bitrate_bps).sum(),
                        packets_in: layers.iter().map(|l| l.packets).sum(),
                        packets_out: copies.iter().map(|c| c.packets).sum(),
                        loss: layers.iter().filter_map(|l| l.loss).reduce(f32::max),
                        subscribers: copies.len(),
                        layers: layers
                            .iter()
                            .map(|l| Layer {
                                rid: l.rid.clone(),
                                bitrate_bps: l.bitrate_bps,
                                packets: l.packets,
                                loss: l.loss,
                            })
                            .collect(),
                    }
                })
                .collect();
            p.tracks.sort_by(|a, b| a.mid.cmp(&b.mid));
            p.receives = s
                .egress
                .iter()
                .filter_map(|e| {
                    let src = e.source.as_ref()?;
                    // Only tracks still published: a withdrawn one is on its way out.
                    let track = tracks.iter().find(|t| &t.id == src)?;
                    Some(Received {
                        mid: e.mid.clone(),
                        from: nick_of.get(&src.publisher).map(|n| (*n).to_owned()),
                        source_mid: src.mid.clone(),
                        kind: kind_name(track.kind),
                        codec: e.codec.clone(),
                        bitrate_bps: e.bitrate_bps,
                        packets: e.packets,
                        loss: e.loss,
                        nacks: e.nacks,
                        keyframe_requests: e.plis + e.firs,
                    })
                })
                .collect();
            p.receives.sort_by(|a, b| {
                (&a.from, a.kind, &a.source_mid).cmp(&(&b.from, b.kind, &b.source_mid))
            });
            p
        })
        .collect();
    RoomDetail {
        name: room_name(&snapshot.jid),
        jid: snapshot.jid.to_string(),
        subject: snapshot.subject.clone(),
        participants,
    }
}
