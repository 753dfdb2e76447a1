//! The Argo CD health checks and the "refresh" action the chart ships, run by a real Lua 5.4
//! interpreter against recorded objects: every kstatus state of a CatalogSource and every phase
//! of a RefreshJob.

use mlua::{Lua, LuaSerdeExt};
use serde_json::{Value, json};

fn script(name: &str) -> String {
    let path = format!(
        "{}/charts/curio/files/argocd/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `name` with `obj` as Argo CD does, and returns what it returns.
fn run(name: &str, obj: &Value) -> Value {
    let lua = Lua::new();
    lua.globals()
        .set("obj", lua.to_value(obj).unwrap())
        .unwrap();
    let result: mlua::Value = lua.load(script(name)).set_name(name).eval().unwrap();
    lua.from_value(result).unwrap()
}

fn health(name: &str, obj: &Value) -> (String, String) {
    let hs = run(name, obj);
    (
        hs["status"].as_str().unwrap().to_owned(),
        hs["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-12-02T10:00:00Z", "observedGeneration": 3})
}

fn source(spec: Value, status: Option<Value>) -> Value {
    let mut obj = json!({
        "apiVersion": "curio.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": {"name": "models", "namespace": "team-a", "generation": 3},
        "spec": spec,
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

fn with_conditions(conditions: Vec<Value>) -> Option<Value> {
    Some(json!({"observedGeneration": 3, "conditions": conditions, "assetCount": 4}))
}

#[test]
fn catalog_source_health_follows_its_conditions() {
    let spec = json!({"source": {"inline": {"assets": []}}});
    let cases = [
        (
            source(
                spec.clone(),
                with_conditions(vec![condition("Ready", "True", "Succeeded", "4 assets")]),
            ),
            "Healthy",
            "4 assets",
        ),
        (source(spec.clone(), None), "Progressing", "first refresh"),
        (
            source(
                spec.clone(),
                Some(
                    json!({"observedGeneration": 2, "conditions": [condition("Ready", "True", "Succeeded", "old")]}),
                ),
            ),
            "Progressing",
            "generation 3",
        ),
        (
            source(
                spec.clone(),
                with_conditions(vec![
                    condition("Ready", "False", "FetchFailed", "connect refused"),
                    condition("Reconciling", "True", "Retrying", "connect refused"),
                ]),
            ),
            "Progressing",
            "connect refused",
        ),
        (
            source(
                spec.clone(),
                with_conditions(vec![
                    condition("Ready", "False", "InvalidCatalog", "assets[2].name: bad"),
                    condition("Stalled", "True", "InvalidCatalog", "assets[2].name: bad"),
                ]),
            ),
            "Degraded",
            "InvalidCatalog: assets[2].name: bad",
        ),
        (
            source(
                spec.clone(),
                with_conditions(vec![condition(
                    "Ready",
                    "False",
                    "QuotaExceeded",
                    "over 100 assets",
                )]),
            ),
            "Degraded",
            "QuotaExceeded",
        ),
        (
            source(
                spec.clone(),
                with_conditions(vec![
                    condition("Ready", "True", "Succeeded", "4 assets"),
                    condition(
                        "Reconciling",
                        "False",
                        "PausedByPolicy",
                        "refreshes are paused by CatalogPolicy \"freeze\"",
                    ),
                ]),
            ),
            "Suspended",
            "freeze",
        ),
        (
            source(
                json!({"source": {"inline": {"assets": []}}, "suspend": true}),
                with_conditions(vec![condition("Ready", "True", "Succeeded", "4 assets")]),
            ),
            "Suspended",
            "spec.suspend",
        ),
        (
            source(
                spec.clone(),
                with_conditions(vec![condition(
                    "Ready",
                    "Unknown",
                    "Progressing",
                    "fetching",
                )]),
            ),
            "Progressing",
            "fetching",
        ),
    ];
    for (obj, status, message) in cases {
        let (got, said) = health("catalogsource-health.lua", &obj);
        assert_eq!(got, status, "{obj}");
        assert!(
            said.contains(message),
            "{said:?} should mention {message:?}: {obj}"
        );
    }
}

#[test]
fn refresh_job_health_follows_its_phase() {
    let job = |status: Option<Value>| {
        let mut obj = json!({"apiVersion": "curio.dev/v1alpha1", "kind": "RefreshJob",
            "metadata": {"name": "nightly", "namespace": "team-a"},
            "spec": {"sourceRef": {"name": "models"}}});
        if let Some(status) = status {
            obj["status"] = status;
        }
        obj
    };
    for (status, expected) in [
        (None, "Progressing"),
        (
            Some(json!({"phase": "Pending", "attempts": 0})),
            "Progressing",
        ),
        (
            Some(json!({"phase": "Running", "attempts": 2})),
            "Progressing",
        ),
        (
            Some(json!({"phase": "Succeeded", "attempts": 1, "message": "added 4"})),
            "Healthy",
        ),
        (
            Some(json!({"phase": "Failed", "attempts": 3, "message": "backoff limit reached"})),
            "Degraded",
        ),
    ] {
        let (got, message) = health("refreshjob-health.lua", &job(status.clone()));
        assert_eq!(got, expected, "{status:?}");
        assert!(!message.is_empty());
    }
    let (_, message) = health(
        "refreshjob-health.lua",
        &job(Some(
            json!({"phase": "Failed", "attempts": 3, "message": "backoff limit reached"}),
        )),
    );
    assert_eq!(message, "backoff limit reached");
}

#[test]
fn the_refresh_action_files_a_refresh_job_for_the_source() {
    let obj = source(json!({"source": {"inline": {"assets": []}}}), None);
    let actions = run("catalogsource-actions-discovery.lua", &obj);
    assert_eq!(actions["refresh"]["disabled"], false);
    let suspended = source(
        json!({"source": {"inline": {"assets": []}}, "suspend": true}),
        None,
    );
    assert_eq!(
        run("catalogsource-actions-discovery.lua", &suspended)["refresh"]["disabled"],
        true
    );

    let impacted = run("catalogsource-action-refresh.lua", &obj);
    let created = &impacted[0];
    assert_eq!(created["operation"], "create");
    let job = &created["resource"];
    assert_eq!(job["kind"], "RefreshJob");
    assert_eq!(job["metadata"]["namespace"], "team-a");
    assert_eq!(job["spec"]["sourceRef"]["name"], "models");
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("models-argocd-") && name.len() <= 253,
        "{name}"
    );
    // The job is a valid RefreshJob by the CRD's own types.
    serde_json::from_value::<curio::crd::RefreshJob>(job.clone()).expect("a RefreshJob");
    assert_eq!(impacted[1]["operation"], "patch");
}
