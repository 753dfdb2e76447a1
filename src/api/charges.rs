//! What a request is charged, once per namespace it is authorized to read: a token from the
//! namespace's rate bucket and a place in its concurrency line (held until the answer). Only
//! authorized namespaces are charged, so a caller cannot spend another tenant's bucket, or
//! stand in its line, by naming it in requests that are refused anyway.

use std::{cell::RefCell, collections::HashSet, future::Future};

use super::{ApiState, error::ApiError, flow::FlowPlace, ratelimit::Scope};

#[derive(Default)]
pub struct RequestCharges {
    charged: RefCell<HashSet<String>>,
    places: RefCell<Vec<FlowPlace>>,
}

tokio::task_local! {
    static CHARGES: RequestCharges;
}

/// Runs one request's handling with its own charges (dropped, places freed, when it ends).
pub async fn scope<F: Future>(request: F) -> F::Output {
    CHARGES.scope(RequestCharges::default(), request).await
}

/// Charges `namespace` to the current request, unless it already was. Outside [`scope`]
/// (a handler driven directly) nothing is charged.
pub async fn charge(state: &ApiState, namespace: &str) -> Result<(), ApiError> {
    // Marked first, so concurrent checks of one request charge a namespace once.
    let first = CHARGES
        .try_with(|c| c.charged.borrow_mut().insert(namespace.to_owned()))
        .unwrap_or(false);
    if !first {
        return Ok(());
    }
    if let Err(limited) = state.rate_limits.check_namespace(namespace) {
        // Only a namespace that exists becomes a label.
        let known = state
            .policies
            .as_ref()
            .is_some_and(|p| p.knows_namespace(namespace));
        state
            .metrics
            .rate_limited(limited.scope, known.then_some(namespace));
        return Err(ApiError::TooManyRequests {
            message: format!(
                "too many requests for namespace {namespace:?}; retry after {} ms",
                limited.retry_after.as_millis()
            ),
            retry_after: limited.retry_after,
        });
    }
    let place = state
        .flows
        .enter(&format!("namespace/{namespace}"))
        .await
        .map_err(|crowded| {
            state.metrics.rate_limited(Scope::Concurrency, None);
            ApiError::TooManyRequests {
                message: format!(
                    "too many requests at once for {}; retry after 1 s",
                    crowded.flow
                ),
                retry_after: std::time::Duration::from_secs(1),
            }
        })?;
    if let Some(place) = place {
        let _ = CHARGES.try_with(|c| c.places.borrow_mut().push(place));
    }
    Ok(())
}
