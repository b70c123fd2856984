//! The registry's HTTP API, so services in any language can register, beat and deregister;
//! mounted on the admin listener. Every answer is the `{code, msg, data}` envelope.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{delete, get, post};
use tongban_core::Code;
use tongban_core::envelope::{ApiError, Ok as Done};
use tongban_core::extract::Path;
use tongban_core::extract::{Json, Query};
use tongban_core::routes::Routes;

use super::{Instance, Registration, Registry, RegistryError};

/// Routes:
/// - `POST /api/v1/instances` registers (body: [`Registration`]) and answers the instance;
/// - `POST /api/v1/instances/{id}/heartbeats` records a heartbeat (20404: register again);
/// - `DELETE /api/v1/instances/{id}` deregisters;
/// - `GET /api/v1/microservices` lists service names ("microservices", not "services": the
///   catalog's government services own `/api/v1/services`);
/// - `GET /api/v1/microservices/{service}/instances[?healthy=true]` lists instances.
pub fn router<S: Clone + Send + Sync + 'static>(registry: Arc<dyn Registry>) -> Routes<S> {
    Routes::new()
        .route("/api/v1/instances", post(register))
        .route("/api/v1/instances/{id}/heartbeats", post(heartbeat))
        .route("/api/v1/instances/{id}", delete(deregister))
        .route("/api/v1/microservices", get(services))
        .route("/api/v1/microservices/{service}/instances", get(instances))
        .with_state(registry)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    healthy: bool,
}

type Reg = State<Arc<dyn Registry>>;

async fn register(
    State(r): Reg,
    Json(reg): Json<Registration>,
) -> Result<Done<Instance>, ApiError> {
    Ok(Done(r.register(reg).await.map_err(to_api)?))
}

async fn heartbeat(
    State(r): Reg,
    Path(id): Path<String>,
) -> Result<Done<serde_json::Value>, ApiError> {
    r.heartbeat(&id).await.map_err(to_api)?;
    Ok(Done(serde_json::json!({ "id": id })))
}

async fn deregister(
    State(r): Reg,
    Path(id): Path<String>,
) -> Result<Done<serde_json::Value>, ApiError> {
    r.deregister(&id).await.map_err(to_api)?;
    Ok(Done(serde_json::json!({ "id": id })))
}

async fn services(State(r): Reg) -> Result<Done<Vec<String>>, ApiError> {
    Ok(Done(r.services().await.map_err(to_api)?))
}

async fn instances(
    State(r): Reg,
    Path(service): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Done<Vec<Instance>>, ApiError> {
    let list = if q.healthy {
        r.healthy(&service).await
    } else {
        r.instances(&service).await
    };
    Ok(Done(list.map_err(to_api)?))
}

fn to_api(e: RegistryError) -> ApiError {
    match e {
        RegistryError::NotFound => {
            ApiError::new(Code::NOT_FOUND).with_msg("实例不存在，请重新注册")
        }
        RegistryError::Invalid(m) => ApiError::new(Code::BAD_PARAMETER).with_msg(m),
        RegistryError::Backend(error) => {
            tracing::error!(%error, "Registry backend failed.");
            ApiError::new(Code::BUSY)
        }
    }
}
