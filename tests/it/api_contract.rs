//! The OpenAPI document is the contract: every route's real answers, success and error, must
//! match the schema it declares for that status; and every documented path is exercised.

use std::collections::BTreeSet;

use crate::common::{api::*, postgres_store};
use serde_json::{Value, json};

/// The schema the document declares for `template` + GET + `status`, with refs resolvable.
fn response_schema(doc: &Value, template: &str, status: u16) -> Option<Value> {
    let mut response = doc["paths"][template]["get"]["responses"][status.to_string()].clone();
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        response = doc.pointer(pointer).cloned().unwrap_or(Value::Null);
    }
    if response.is_null() {
        return None;
    }
    let content = response.get("content")?;
    let schema = content
        .get("application/json")
        .or_else(|| content.as_object().and_then(|m| m.values().next()))?
        .get("schema")?
        .clone();
    // Local refs (#/components/...) resolve against a root that carries the components.
    Some(
        json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema], "components": doc["components"] }),
    )
}

#[tokio::test]
async fn every_route_answers_as_the_document_says() {
    let (store, _) = postgres_store().await;
    seed(&store).await;
    let client = Client::new(spawn(static_state(store)).await);
    let (code, doc) = client.get(None, "/openapi.json", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(
        doc,
        curio::api::openapi_document(),
        "/openapi.json serves docs/openapi.yaml"
    );

    // (template, concrete path, token, expected status)
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        (
            "/api/v1/discovery",
            "/api/v1/discovery?namespace=team-a",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/discovery",
            "/api/v1/discovery",
            Some("vera-token"),
            400,
        ),
        (
            "/api/v1/discovery",
            "/api/v1/discovery?namespace=team-b",
            Some("vera-token"),
            403,
        ),
        (
            "/api/v1/discovery",
            "/api/v1/discovery?namespace=team-a",
            Some("bad-token"),
            401,
        ),
        (
            "/api/v1/assets",
            "/api/v1/assets?namespaces=team-a&limit=2",
            Some("alice-token"),
            200,
        ),
        (
            "/api/v1/assets",
            "/api/v1/assets?namespaces=team-a,team-b",
            Some("alice-token"),
            403,
        ),
        (
            "/api/v1/assets",
            "/api/v1/assets?namespaces=team-a&limit=0",
            Some("alice-token"),
            400,
        ),
        (
            "/api/v1/assets",
            "/api/v1/assets?provider=ibm&license=apache-2.0",
            Some("alice-token"),
            200,
        ),
        (
            "/api/v1/namespaces",
            "/api/v1/namespaces",
            Some("vera-token"),
            200,
        ),
        ("/api/v1/namespaces", "/api/v1/namespaces", None, 200),
        (
            "/api/v1/namespaces",
            "/api/v1/namespaces?x=1",
            Some("vera-token"),
            400,
        ),
        (
            "/api/v1/namespaces",
            "/api/v1/namespaces",
            Some("bad-token"),
            401,
        ),
        (
            "/api/v1/assets/facets",
            "/api/v1/assets/facets?field=provider&field=tag",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/assets/facets",
            "/api/v1/assets/facets?namespaces=team-b",
            Some("vera-token"),
            403,
        ),
        (
            "/api/v1/assets/facets",
            "/api/v1/assets/facets?field=secret",
            Some("vera-token"),
            400,
        ),
        (
            "/api/v1/namespaces/{ns}/assets/facets",
            "/api/v1/namespaces/team-a/assets/facets?kind=Model&top=3",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/assets/facets",
            "/api/v1/namespaces/team-a/assets/facets?kind=Agent",
            Some("mo-token"),
            403,
        ),
        (
            "/api/v1/namespaces/{ns}/assets/facets",
            "/api/v1/namespaces/team-a/assets/facets?top=0",
            Some("vera-token"),
            400,
        ),
        (
            "/api/v1/namespaces/{ns}/assets/facets",
            "/api/v1/namespaces/team-a/assets/facets",
            Some("bad-token"),
            401,
        ),
        (
            "/api/v1/namespaces/{ns}/access",
            "/api/v1/namespaces/team-a/access",
            Some("alice-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/access",
            "/api/v1/namespaces/team-b/access",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/access",
            "/api/v1/namespaces/team-a/access?verb=get",
            Some("vera-token"),
            400,
        ),
        (
            "/api/v1/namespaces/{ns}/access",
            "/api/v1/namespaces/team-a/access",
            Some("bad-token"),
            401,
        ),
        (
            "/api/v1/namespaces/{ns}/assets",
            "/api/v1/namespaces/team-a/assets?sort=-updated",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/assets",
            "/api/v1/namespaces/team-b/assets",
            Some("vera-token"),
            403,
        ),
        (
            "/api/v1/namespaces/{ns}/assets",
            "/api/v1/namespaces/team-a/assets?labelSelector=a%20in%20(x",
            Some("vera-token"),
            400,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}",
            "/api/v1/namespaces/team-a/models",
            Some("mo-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}",
            "/api/v1/namespaces/team-a/mcpservers",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}",
            "/api/v1/namespaces/team-a/agents",
            Some("mo-token"),
            403,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}",
            "/api/v1/namespaces/team-a/widgets",
            Some("vera-token"),
            404,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            "/api/v1/namespaces/team-a/models/granite-team-a",
            Some("mo-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            "/api/v1/namespaces/team-a/models/missing",
            Some("mo-token"),
            404,
        ),
        (
            "/api/v1/namespaces/{ns}/{plural}/{name}",
            "/api/v1/namespaces/team-a/agents/triage-team-a",
            None,
            403,
        ),
        (
            "/api/v1/namespaces/{ns}/catalogsources",
            "/api/v1/namespaces/team-a/catalogsources",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/catalogsources",
            "/api/v1/namespaces/team-a/catalogsources",
            Some("mo-token"),
            403,
        ),
        (
            "/api/v1/namespaces/{ns}/catalogsources/{name}",
            "/api/v1/namespaces/team-a/catalogsources/src-inline",
            Some("vera-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/catalogsources/{name}",
            "/api/v1/namespaces/team-a/catalogsources/missing",
            Some("vera-token"),
            404,
        ),
        (
            "/api/v1/namespaces/{ns}/refreshjobs",
            "/api/v1/namespaces/team-b/refreshjobs",
            Some("bob-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/refreshjobs",
            "/api/v1/namespaces/Team-B/refreshjobs",
            Some("bob-token"),
            400,
        ),
        (
            "/api/v1/namespaces/{ns}/refreshjobs/{name}",
            "/api/v1/namespaces/team-b/refreshjobs/job-1",
            Some("bob-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/refreshjobs/{name}",
            "/api/v1/namespaces/team-b/refreshjobs/job-1",
            Some("alice-token"),
            403,
        ),
        (
            "/api/v1/namespaces/{ns}/auditevents",
            "/api/v1/namespaces/team-a/auditevents",
            Some("alice-token"),
            200,
        ),
        (
            "/api/v1/namespaces/{ns}/auditevents",
            "/api/v1/namespaces/team-a/auditevents",
            Some("mo-token"),
            403,
        ),
        (
            "/api/v1/auditevents",
            "/api/v1/auditevents?namespaces=team-a&actor=system:curio-controller&since=2020-01-01T00:00:00Z",
            Some("alice-token"),
            200,
        ),
        (
            "/api/v1/auditevents",
            "/api/v1/auditevents?namespaces=team-a,team-b",
            Some("alice-token"),
            403,
        ),
        (
            "/api/v1/auditevents",
            "/api/v1/auditevents?namespaces=team-a&since=yesterday",
            Some("alice-token"),
            400,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers",
            "/registry/namespaces/team-a/v0.1/servers?version=latest&limit=1",
            Some("vera-token"),
            200,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers",
            "/registry/namespaces/team-a/v0.1/servers?limit=500",
            Some("vera-token"),
            400,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers",
            "/registry/namespaces/team-a/v0.1/servers",
            Some("bad-token"),
            401,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers",
            "/registry/namespaces/team-a/v0.1/servers",
            Some("mo-token"),
            403,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers",
            "/registry/namespaces/team-a/v7/servers",
            Some("vera-token"),
            404,
        ),
        (
            "/registry/namespaces/{ns}/approved/v0.1/servers",
            "/registry/namespaces/team-a/approved/v0.1/servers",
            Some("vera-token"),
            200,
        ),
        (
            "/registry/namespaces/{ns}/approved/v0.1/servers",
            "/registry/namespaces/team-b/approved/v0.1/servers",
            None,
            403,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers/{serverName}/versions",
            "/registry/namespaces/team-a/v0.1/servers/github-team-a/versions",
            Some("vera-token"),
            200,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers/{serverName}/versions",
            "/registry/namespaces/team-a/v0.1/servers/io.example%2Fnone/versions",
            Some("vera-token"),
            404,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers/{serverName}/versions/{version}",
            "/registry/namespaces/team-a/v0.1/servers/github-team-a/versions/latest",
            Some("vera-token"),
            200,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers/{serverName}/versions/{version}",
            "/registry/namespaces/team-a/v0.1/servers/github-team-a/versions/9",
            Some("vera-token"),
            404,
        ),
        (
            "/registry/namespaces/{ns}/v0.1/servers/{serverName}/versions/{version}",
            "/registry/namespaces/team-a/v0.1/servers/github-team-a/versions/latest",
            Some("bob-token"),
            403,
        ),
        ("/apis", "/apis", None, 200),
        (
            "/apis/catalog.curio.dev",
            "/apis/catalog.curio.dev",
            None,
            200,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1",
            "/apis/catalog.curio.dev/v1alpha1",
            None,
            200,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/{plural}",
            "/apis/catalog.curio.dev/v1alpha1/models",
            Some("alice-token"),
            403,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/models?limit=500",
            Some("vera-token"),
            200,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-b/models",
            Some("vera-token"),
            403,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/models?fieldSelector=spec.size%3D1",
            Some("vera-token"),
            400,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/widgets",
            Some("vera-token"),
            404,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/models",
            Some("bad-token"),
            401,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}/{name}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/models/granite-team-a.v1.src-inline",
            Some("vera-token"),
            200,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}/{name}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/models/nope.v1.src-inline",
            Some("vera-token"),
            404,
        ),
        (
            "/apis/catalog.curio.dev/v1alpha1/namespaces/{ns}/{plural}/{name}",
            "/apis/catalog.curio.dev/v1alpha1/namespaces/team-a/agents/triage-team-a.v1.src-inline",
            Some("mo-token"),
            403,
        ),
        ("/openapi/v2", "/openapi/v2", None, 200),
        ("/openapi/v3", "/openapi/v3", None, 200),
        (
            "/openapi/v3/apis/catalog.curio.dev/v1alpha1",
            "/openapi/v3/apis/catalog.curio.dev/v1alpha1",
            None,
            200,
        ),
        ("/healthz", "/healthz", None, 200),
        ("/readyz", "/readyz", None, 200),
        ("/openapi.json", "/openapi.json", None, 200),
    ];
    let mut covered = BTreeSet::new();
    for (template, path, token, expected) in &cases {
        let (code, body) = client.get(*token, path, &[]).await;
        assert_eq!(code, *expected, "GET {path}: {body}");
        let schema = response_schema(&doc, template, code)
            .unwrap_or_else(|| panic!("{template} documents no {code} response"));
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        if let Err(error) = validator.validate(&body) {
            panic!("GET {path} ({code}) does not match the document: {error}\nbody: {body}");
        }
        covered.insert((*template).to_string());
    }
    // 405 is documented for the API routes and answered as a Status.
    let response = client
        .http
        .delete(format!("{}/api/v1/namespaces/team-a/models", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: Value = response.json().await.unwrap();
    let schema = response_schema(&doc, "/api/v1/namespaces/{ns}/{plural}", 405).unwrap();
    assert!(
        jsonschema::validator_for(&schema).unwrap().is_valid(&body),
        "{body}"
    );

    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        covered, documented,
        "every documented path is exercised, and only those"
    );
}
