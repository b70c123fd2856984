//! A local unified-identity platform for development and tests: the login page signs in the
//! user named in the request (or lists the accounts to choose from), tickets and tokens are
//! single-use and short-lived, user info carries the real-name level. It speaks the wire format
//! of the [`super`] module. [`TicketSimulator::serve_dev`] runs it on loopback with the
//! documented test accounts, for `tongban serve` in the test profile.

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
    /// The user who "signs in" on the simulated login page; without one the page lists the
    /// accounts to choose from.
    user: Option<String>,
}

/// The test accounts of [`TicketSimulator::serve_dev`]: id, what the account shows, the
/// platform's real-name level, name and the first 17 digits of an ID number (made-up people;
/// region 110105, the check character is computed).
pub const DEV_ACCOUNTS: [(&str, &str, u32, &str, &str); 3] = [
    (
        "zhang-wei",
        "已注册、未实名：登录后为 anonymous，可在平台做实名核验",
        1,
        "张伟",
        "11010519900307001",
    ),
    (
        "li-na",
        "已实名：登录后为 real_name",
        2,
        "李娜",
        "11010519851114002",
    ),
    (
        "wang-fang",
        "已实名：登录后为 real_name，再做人脸核验即为 face_verified",
        3,
        "王芳",
        "11010519780521003",
    ),
];

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

    /// Runs a simulator on loopback (a port of its own, plain HTTP) with the accounts of
    /// [`DEV_ACCOUNTS`], and the configuration that logs in through it, users coming back to
    /// `redirect_uri`. For the test profile only: the secret is made afresh at each start.
    pub async fn serve_dev(
        clock: Arc<dyn Clock>,
        redirect_uri: &str,
    ) -> std::io::Result<(super::TicketConfig, tokio::task::JoinHandle<()>)> {
        let secret = new_token().map_err(|_| std::io::Error::other("random generator"))?;
        let sim = Self::new(clock, "tongban-dev", &secret);
        for (id, _, level, name, first17) in DEV_ACCOUNTS {
            sim.add_user(
                id,
                SimUser {
                    real_name_level: level,
                    name: Some(name.to_owned()),
                    id_number: tongban_core::idcard::with_check_char(first17),
                    unbound: false,
                },
            );
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = sim.router();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "The login simulator stopped.");
            }
        });
        let cfg = super::TicketConfig {
            login_url: format!("{base}/login"),
            ticket_url: format!("{base}/tickets"),
            userinfo_url: format!("{base}/users/current"),
            app_id: "tongban-dev".to_owned(),
            app_secret: secret,
            redirect_uri: redirect_uri.to_owned(),
            real_name_min_level: 2,
            timeout_secs: 10,
        };
        Ok((cfg, task))
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
    let Some(user) = q.user.clone() else {
        return choose_account(&sim, &q);
    };
    if q.app_id != sim.app_id || !lock(&sim.users).contains_key(&user) {
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
    lock(&sim.tickets).insert(ticket, user);
    Redirect::to(back.as_str()).into_response()
}

/// The simulated login page: one link per account, each this same request naming its user.
fn choose_account(sim: &TicketSimulator, q: &LoginQuery) -> Response {
    let mut users: Vec<String> = lock(&sim.users).keys().cloned().collect();
    users.sort();
    let mut items = String::new();
    for u in &users {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("app_id", &q.app_id)
            .append_pair("redirect_uri", &q.redirect_uri)
            .append_pair("state", &q.state)
            .append_pair("user", u)
            .finish();
        let about = DEV_ACCOUNTS.iter().find(|a| a.0 == u).map_or("", |a| a.1);
        items.push_str(&format!(
            "<li><a href=\"login?{}\">{}</a> {}</li>",
            html_escape(&query),
            html_escape(u),
            html_escape(about)
        ));
    }
    let page = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>模拟统一身份认证平台</title></head>\
         <body><h1>模拟统一身份认证平台（仅测试环境）</h1><p>选择登录的测试账号：</p><ul>{items}</ul></body></html>"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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
