//! `/v1/providers`: the presets an integration's `provider` may name (the built-in ones and
//! the service's `--presets`), for a platform's "add an integration" screen: the list with
//! what each needs (`?search=` narrows it), and one preset's document, endpoints and quirks
//! included. The same for every tenant; a tenant key is still required, as on all of `/v1`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::auth::TenantId;
use super::errors::{ApiError, Code};
use crate::presets::PresetView;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/providers", get(list))
        .route("/v1/providers/{id}", get(show))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    search: Option<String>,
}

/// `GET /v1/providers[?search=TEXT]`: `{"providers": [...]}`, by id, each as
/// `connector-host providers --json` lists it.
async fn list(
    State(state): State<AppState>,
    _tenant: TenantId,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(format!(
            "the query takes `search` only: {}",
            rejection.body_text()
        ))
    })?;
    let catalogue = state.runtime().presets();
    let views: Vec<PresetView<'_>> = match &query.search {
        Some(text) => catalogue.search(text).map(PresetView::from).collect(),
        None => catalogue.presets().iter().map(PresetView::from).collect(),
    };
    Ok(Json(serde_json::json!({ "providers": views })))
}

/// `GET /v1/providers/{id}`: the preset document (the format `--presets` reads).
async fn show(
    State(state): State<AppState>,
    _tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(preset) = state.runtime().presets().get(&id) else {
        return Err(ApiError::new(
            Code::NotFound,
            "no such provider (GET /v1/providers lists them)",
        ));
    };
    let document = preset
        .document()
        .map_err(|error| ApiError::internal(&error))?;
    Ok(Json(document))
}
