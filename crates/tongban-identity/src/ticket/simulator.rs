//! A local unified-identity platform for development and tests: the login page signs in the
//! user named in the request, tickets and tokens are single-use and short-lived, user info
//! carries the real-name level. It speaks the wire format of the [`super`] module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{PLATFORM_TICKET_INVALID, PLATFORM_TOKEN_EXPIRED};
use crate::token::new_token;
use tongban_core::clock::Clock;

/// A platform user.
#[derive(Clone, Debug)]
pub struct SimUser {
    pub real_name_level: u32,
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub unbound: bool,
}

/// The platform's state.
#[derive(Debug)]
pub struct TicketSimulator {
    clock: Arc<dyn Clock>,
    app_id: String,
    app_secret: String,
    /// How long a token lives, milliseconds (0: expired at once, to provoke 10007).
    pub token_ttl_ms: Mutex<i64>,
    users: Mutex<HashMap<String, SimUser>>,
    tickets: Mutex<HashMap<String, String>>,
    tokens: Mutex<HashMap<String, (String, i64)>>,
}

#[derive(Deserialize)]
struct LoginQuery {
    app_id: String,
    redirect_uri: String,
    state: String,
    /// The user who "signs in" on the simulated login page.
    user: String,
}

#[derive(Deserialize)]
struct TicketBody {
    app_id: String,
    app_secret: String,
    ticket: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// === impl TicketSimulator ===

impl TicketSimulator {
    pub fn new(clock: Arc<dyn Clock>, app_id: &str, app_secret: &str) -> Arc<Self> {
        Arc::new(Self {
            clock,
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
            token_ttl_ms: Mutex::new(2 * 3_600_000),
            users: Mutex::default(),
            tickets: Mutex::default(),
            tokens: Mutex::default(),
        })
    }

    pub fn add_user(&self, user_id: &str, user: SimUser) {
        lock(&self.users).insert(user_id.to_owned(), user);
    }

    pub fn set_token_ttl_ms(&self, ms: i64) {
        *lock(&self.token_ttl_ms) = ms;
    }

    /// Routes: `GET /login`, `POST /tickets`, `GET /users/current`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/login", get(login))
            .route("/tickets", post(exchange))
            .route("/users/current", get(userinfo))
            .with_state(self.clone())
    }
}

fn envelope(code: i64, data: serde_json::Value) -> Response {
    axum::Json(json!({ "code": code, "data": data })).into_response()
}

async fn login(State(sim): State<Arc<TicketSimulator>>, Query(q): Query<LoginQuery>) -> Response {
    if q.app_id != sim.app_id || !lock(&sim.users).contains_key(&q.user) {
        return (StatusCode::BAD_REQUEST, "unknown app or user").into_response();
    }
    let Ok(ticket) = new_token() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut back) = Url::parse(&q.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    back.query_pairs_mut()
        .append_pair("ticket", &ticket)
        .append_pair("state", &q.state);
    lock(&sim.tickets).insert(ticket, q.user);
    Redirect::to(back.as_str()).into_response()
}

async fn exchange(
    State(sim): State<Arc<TicketSimulator>>,
    axum::Json(b): axum::Json<TicketBody>,
) -> Response {
    if b.app_id != sim.app_id || b.app_secret != sim.app_secret {
        return envelope(1000, json!(null));
    }
    let Some(user) = lock(&sim.tickets).remove(&b.ticket) else {
        return envelope(PLATFORM_TICKET_INVALID, json!(null));
    };
    let Ok(token) = new_token() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let ttl = *lock(&sim.token_ttl_ms);
    let expires = sim.clock.now_ms().saturating_add(ttl);
    lock(&sim.tokens).insert(token.clone(), (user, expires));
    envelope(0, json!({ "token": token, "expires_in": ttl / 1000 }))
}

async fn userinfo(State(sim): State<Arc<TicketSimulator>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let Some((user_id, expires)) = lock(&sim.tokens).get(token).cloned() else {
        return envelope(PLATFORM_TOKEN_EXPIRED, json!(null));
    };
    if sim.clock.now_ms() >= expires {
        return envelope(PLATFORM_TOKEN_EXPIRED, json!(null));
    }
    let Some(u) = lock(&sim.users).get(&user_id).cloned() else {
        return envelope(1000, json!(null));
    };
    envelope(
        0,
        json!({
            "user_id": user_id,
            "real_name_level": u.real_name_level,
            "name": u.name,
            "id_number": u.id_number,
            "unbound": u.unbound,
        }),
    )
}
