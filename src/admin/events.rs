//! `GET /api/v1/events`: Server-Sent Events for requests as they change.
//! Each event is named `request.created`, `request.reviewed`,
//! `request.decided` or `request.executed` and carries the request as JSON.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::auth::Authenticated;
use super::error::ApiError;
use super::AdminState;
use crate::store::{Request, Status};

fn event_name(r: &Request) -> &'static str {
    match r.status {
        Status::Pending if r.reviews.is_empty() && r.comments.is_empty() => "request.created",
        Status::Pending => "request.reviewed",
        Status::Executed => "request.executed",
        _ => "request.decided",
    }
}

pub async fn stream(
    State(state): State<AdminState>,
    _who: Authenticated,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let store = state.approvals()?.store.clone();
    let rx = store.subscribe();
    let events = stream::unfold((store, rx), |(store, mut rx)| async move {
        loop {
            match rx.recv().await {
                Ok(id) if id == crate::store::RECHECK => continue,
                Ok(id) => {
                    if let Ok(r) = store.get(&id).await {
                        let data = serde_json::to_string(&r).unwrap_or_default();
                        let ev = Event::default().event(event_name(&r)).id(id).data(data);
                        return Some((Ok(ev), (store, rx)));
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
