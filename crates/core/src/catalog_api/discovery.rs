//! Discovery documents of the group: `/apis`, `/apis/catalog.curio.dev` and
//! `/apis/catalog.curio.dev/v1alpha1`, as kube-apiserver shapes them (`APIGroupList`,
//! `APIGroup`, `APIResourceList`). They are the same for every caller: what a caller may do is
//! RBAC's answer, not discovery's.

use serde_json::{Value, json};

use super::{CATEGORY, GROUP, GROUP_VERSION, RESOURCES, VERSION};

fn group() -> Value {
    let version = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({
        "name": GROUP,
        "versions": [version.clone()],
        "preferredVersion": version,
    })
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]})
}

/// `GET /apis/catalog.curio.dev`.
pub fn api_group() -> Value {
    let mut group = group();
    group["kind"] = json!("APIGroup");
    group["apiVersion"] = json!("v1");
    group
}

/// `GET /apis/catalog.curio.dev/v1alpha1`.
pub fn api_resource_list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": true,
                "kind": r.kind.as_str(),
                "verbs": ["get", "list", "watch"],
                "shortNames": r.short_names,
                "categories": [CATEGORY],
            })
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_list_names_every_kind_once_with_read_verbs_only() {
        let list = api_resource_list();
        let resources = list["resources"].as_array().unwrap();
        assert_eq!(resources.len(), 3);
        for r in resources {
            assert_eq!(r["verbs"], json!(["get", "list", "watch"]));
            assert_eq!(r["categories"], json!(["catalog"]));
        }
        assert_eq!(
            api_group()["preferredVersion"]["groupVersion"],
            GROUP_VERSION
        );
    }
}
