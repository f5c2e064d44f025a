//! `/xmpp-websocket`: RFC 7395 XMPP over WebSocket. This module only
//! upgrades the request (subprotocol `xmpp` required, messages bounded)
//! and pumps messages; the XMPP stream itself runs in `signaling`.

use std::net::SocketAddr;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use signaling::net::{Signaling, WsConnection, WsOut};

/// WebSocket messages larger than this are refused by the WebSocket layer;
/// smaller ones over the XMPP stanza limit reach the XMPP parser and get
/// its `<policy-violation/>`.
pub const MAX_WS_MESSAGE: usize = 1 << 20;

/// The `/xmpp-websocket` route.
pub fn routes(signaling: Signaling) -> Router {
    Router::new()
        .route("/xmpp-websocket", get(xmpp_websocket))
        .with_state(signaling)
}

async fn xmpp_websocket(
    State(signaling): State<Signaling>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws
        .protocols(["xmpp"])
        .max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE);
    if ws.selected_protocol().is_none() {
        // RFC 7395 §3.1: the subprotocol is how both sides know the
        // messages are XMPP.
        return (
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol 'xmpp' is required\n",
        )
            .into_response();
    }
    // Without TLS in front, only a loopback peer counts as secure (PLAIN
    // is offered to it).
    let secure = peer.ip().is_loopback();
    ws.on_upgrade(move |socket| pump(socket, signaling.websocket(secure)))
}

async fn pump(socket: WebSocket, conn: WsConnection) {
    let (mut sink, mut stream) = socket.split();
    let WsConnection {
        incoming,
        mut outgoing,
    } = conn;
    let writer = async move {
        while let Some(out) = outgoing.recv().await {
            match out {
                WsOut::Text(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                WsOut::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    };
    let reader = async move {
        while let Some(Ok(msg)) = stream.next().await {
            let data = match msg {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            if incoming.send(data).await.is_err() {
                break;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}
