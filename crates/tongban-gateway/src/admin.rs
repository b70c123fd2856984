//! The gateway's admin API (admin listener): manage routes, stored in the config centre so
//! they survive restarts and reach every gateway instance, and read live state.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use tongban_core::Code;
use tongban_core::envelope::{ApiError, Ok as Done};
use tongban_core::extract::Json;
use tongban_core::extract::Path;
use tongban_core::routes::Routes;
use tongban_governance::config::{ConfigCentre, ConfigEntry, ConfigError, Expect};

use crate::gateway::{Gateway, ROUTES_NAMESPACE};
use crate::route::RouteSpec;

#[derive(Clone, Debug)]
struct Admin {
    gateway: Gateway,
    config: Arc<dyn ConfigCentre>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: i64,
}

/// Routes:
/// - `GET /api/v1/routes`: stored routes;
/// - `GET|PUT|DELETE /api/v1/routes/{id}`: one route (PUT validates: URL rules, auth level);
/// - `GET /api/v1/routes/{id}/versions`: its history;
/// - `POST /api/v1/routes/{id}/rollbacks` (`{"version": n}`): back to an earlier version;
/// - `GET /api/v1/breakers`: breaker states;
/// - `GET /api/v1/route-stats`: per-route and per-instance counters.
pub fn router<S: Clone + Send + Sync + 'static>(
    gateway: Gateway,
    config: Arc<dyn ConfigCentre>,
) -> Routes<S> {
    Routes::new()
        .route("/api/v1/routes", get(list))
        .route("/api/v1/routes/{id}", get(read).put(write).delete(remove))
        .route("/api/v1/routes/{id}/versions", get(versions))
        .route("/api/v1/routes/{id}/rollbacks", post(rollback))
        .route("/api/v1/breakers", get(breakers))
        .route("/api/v1/route-stats", get(stats))
        .with_state(Admin { gateway, config })
}

async fn list(State(a): State<Admin>) -> Result<Done<Vec<serde_json::Value>>, ApiError> {
    let entries = a.config.list(ROUTES_NAMESPACE).await.map_err(config_err)?;
    Ok(Done(entries.iter().filter_map(as_json).collect()))
}

async fn read(
    State(a): State<Admin>,
    Path(id): Path<String>,
) -> Result<Done<serde_json::Value>, ApiError> {
    let e = a
        .config
        .get(ROUTES_NAMESPACE, &id)
        .await
        .map_err(config_err)?;
    e.as_ref()
        .and_then(as_json)
        .map(Done)
        .ok_or_else(|| ApiError::new(Code::NOT_FOUND).with_msg("路由不存在"))
}

async fn write(
    State(a): State<Admin>,
    Path(id): Path<String>,
    Json(spec): Json<RouteSpec>,
) -> Result<Done<serde_json::Value>, ApiError> {
    if spec.id != id {
        return Err(ApiError::new(Code::BAD_PARAMETER).with_msg("路径中的 id 与请求体不一致"));
    }
    spec.validate()
        .map_err(|e| ApiError::new(Code::BAD_PARAMETER).with_msg(e.to_string()))?;
    let json = serde_json::to_string(&spec).map_err(|_| ApiError::new(Code::BUSY))?;
    let e = a
        .config
        .put(ROUTES_NAMESPACE, &id, &json, Expect::Any)
        .await
        .map_err(config_err)?;
    reload(&a).await?;
    tracing::info!(route = %id, version = e.version, "Route stored.");
    Ok(Done(serde_json::json!({ "id": id, "version": e.version })))
}

async fn remove(
    State(a): State<Admin>,
    Path(id): Path<String>,
) -> Result<Done<serde_json::Value>, ApiError> {
    a.config
        .delete(ROUTES_NAMESPACE, &id)
        .await
        .map_err(config_err)?;
    reload(&a).await?;
    tracing::info!(route = %id, "Route deleted.");
    Ok(Done(serde_json::json!({ "id": id })))
}

async fn versions(
    State(a): State<Admin>,
    Path(id): Path<String>,
) -> Result<Done<Vec<ConfigEntry>>, ApiError> {
    Ok(Done(
        a.config
            .history(ROUTES_NAMESPACE, &id)
            .await
            .map_err(config_err)?,
    ))
}

async fn rollback(
    State(a): State<Admin>,
    Path(id): Path<String>,
    Json(body): Json<RollbackBody>,
) -> Result<Done<serde_json::Value>, ApiError> {
    // The old version must still pass today's validation.
    let old = a
        .config
        .history(ROUTES_NAMESPACE, &id)
        .await
        .map_err(config_err)?
        .into_iter()
        .find(|e| e.version == body.version)
        .and_then(|e| e.value)
        .ok_or_else(|| ApiError::new(Code::NOT_FOUND).with_msg("该版本不存在"))?;
    let spec: RouteSpec = serde_json::from_str(&old)
        .map_err(|_| ApiError::new(Code::BAD_PARAMETER).with_msg("该版本无法解析"))?;
    spec.validate()
        .map_err(|e| ApiError::new(Code::BAD_PARAMETER).with_msg(e.to_string()))?;
    let e = a
        .config
        .rollback(ROUTES_NAMESPACE, &id, body.version)
        .await
        .map_err(config_err)?;
    reload(&a).await?;
    Ok(Done(serde_json::json!({ "id": id, "version": e.version })))
}

async fn breakers(State(a): State<Admin>) -> Done<serde_json::Value> {
    let states: serde_json::Map<String, serde_json::Value> = a
        .gateway
        .breaker_states()
        .into_iter()
        .map(|(r, s)| (r, serde_json::json!(s)))
        .collect();
    Done(serde_json::Value::Object(states))
}

async fn stats(State(a): State<Admin>) -> Done<serde_json::Value> {
    let m = a.gateway.metrics();
    let upstreams: Vec<serde_json::Value> = m
        .upstreams_snapshot()
        .into_iter()
        .map(|(route, instance, s)| serde_json::json!({"route": route, "instance": instance, "attempts": s.attempts, "failures": s.failures}))
        .collect();
    Done(serde_json::json!({ "routes": m.routes_snapshot(), "upstreams": upstreams }))
}

async fn reload(a: &Admin) -> Result<(), ApiError> {
    a.gateway
        .load(a.config.as_ref())
        .await
        .map_err(config_err)?;
    Ok(())
}

fn as_json(e: &ConfigEntry) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(e.value.as_deref()?).ok()?;
    if let Some(o) = v.as_object_mut() {
        o.insert("version".to_owned(), serde_json::json!(e.version));
    }
    Some(v)
}

fn config_err(e: ConfigError) -> ApiError {
    match e {
        ConfigError::NotFound => ApiError::new(Code::NOT_FOUND).with_msg("路由不存在"),
        ConfigError::Conflict => {
            ApiError::new(Code::REFUSED).with_msg("路由已被修改，请刷新后重试")
        }
        ConfigError::Invalid(m) => ApiError::new(Code::BAD_PARAMETER).with_msg(m),
        ConfigError::Backend(error) => {
            tracing::error!(%error, "Config centre failed.");
            ApiError::new(Code::BUSY)
        }
    }
}
