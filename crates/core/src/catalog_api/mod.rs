//! The catalog as a Kubernetes API group, `catalog.curio.dev/v1alpha1`: what the aggregated
//! API serves, as values (object names, resources, discovery documents, table columns).

pub mod discovery;
pub mod names;
pub mod openapi;

use crate::catalog::AssetKind;

pub const GROUP: &str = "catalog.curio.dev";
pub const VERSION: &str = "v1alpha1";
pub const GROUP_VERSION: &str = "catalog.curio.dev/v1alpha1";
/// `kubectl get catalog` lists all three kinds.
pub const CATEGORY: &str = "catalog";
/// The label holding an asset's original name, when that name is a valid label value.
pub const NAME_LABEL: &str = "catalog.curio.dev/name";
/// The label holding the CatalogSource an asset came from.
pub const SOURCE_LABEL: &str = "catalog.curio.dev/source";

/// How one asset kind appears in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub kind: AssetKind,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
}

pub const RESOURCES: [Resource; 3] = [
    Resource {
        kind: AssetKind::Model,
        plural: "models",
        singular: "model",
        short_names: &["mdl"],
    },
    Resource {
        kind: AssetKind::McpServer,
        plural: "mcpservers",
        singular: "mcpserver",
        short_names: &["mcp"],
    },
    Resource {
        kind: AssetKind::Agent,
        plural: "agents",
        singular: "agent",
        short_names: &["agt"],
    },
];

impl Resource {
    pub fn of(kind: AssetKind) -> Resource {
        // RESOURCES lists every kind, in AssetKind::ALL's order.
        RESOURCES[AssetKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default()]
    }

    pub fn from_plural(plural: &str) -> Option<Resource> {
        RESOURCES.into_iter().find(|r| r.plural == plural)
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind.as_str())
    }
}

/// A table column: `name`, type, format, description, and priority (0 always shown, 1 at
/// `-o wide`), as `meta.k8s.io/v1` `TableColumnDefinition`s have them.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: u8,
}

/// The columns of `kubectl get models` (and the other kinds).
pub const COLUMNS: [Column; 10] = [
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "The object name: the asset's name, version and source (docs/kubectl.md).",
        priority: 0,
    },
    Column {
        name: "Display Name",
        kind: "string",
        format: "",
        description: "The asset's display name.",
        priority: 0,
    },
    Column {
        name: "Version",
        kind: "string",
        format: "",
        description: "The asset's version, as the catalog gives it.",
        priority: 0,
    },
    Column {
        name: "Stage",
        kind: "string",
        format: "",
        description: "The lifecycle stage.",
        priority: 0,
    },
    Column {
        name: "Approved",
        kind: "boolean",
        format: "",
        description: "Whether the asset is approved for use.",
        priority: 0,
    },
    Column {
        name: "Source",
        kind: "string",
        format: "",
        description: "The CatalogSource the asset came from.",
        priority: 0,
    },
    Column {
        name: "Age",
        kind: "date",
        format: "",
        description: "Time since the asset entered the catalog.",
        priority: 0,
    },
    Column {
        name: "Asset",
        kind: "string",
        format: "",
        description: "The asset's original name.",
        priority: 1,
    },
    Column {
        name: "Provider",
        kind: "string",
        format: "",
        description: "Who publishes the asset.",
        priority: 1,
    },
    Column {
        name: "License",
        kind: "string",
        format: "",
        description: "The asset's license.",
        priority: 1,
    },
];

/// An age as kubectl prints one (`k8s.io/apimachinery`'s `HumanDuration`): `45s`, `3m12s`,
/// `25m`, `5h3m`, `20h`, `3d4h`, `40d`, `2y10d`, `9y`.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (minute, hour, day, year) = (60, 3600, 86_400, 365 * 86_400);
    match s {
        s if s < 2 * minute => format!("{s}s"),
        s if s < 10 * minute => match s % minute {
            0 => format!("{}m", s / minute),
            r => format!("{}m{r}s", s / minute),
        },
        s if s < 3 * hour => format!("{}m", s / minute),
        s if s < 8 * hour => match (s % hour) / minute {
            0 => format!("{}h", s / hour),
            m => format!("{}h{m}m", s / hour),
        },
        s if s < 2 * day => format!("{}h", s / hour),
        s if s < 8 * day => match (s % day) / hour {
            0 => format!("{}d", s / day),
            h => format!("{}d{h}h", s / day),
        },
        s if s < 2 * year => format!("{}d", s / day),
        s if s < 8 * year => match (s % year) / day {
            0 => format!("{}y", s / year),
            d => format!("{}y{d}d", s / year),
        },
        s => format!("{}y", s / year),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(192), "3m12s");
        assert_eq!(human_duration(25 * 60), "25m");
        assert_eq!(human_duration(5 * 3600 + 180), "5h3m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(40 * 86_400), "40d");
        assert_eq!(human_duration(-5), "0s");
    }

    #[test]
    fn every_kind_has_one_resource() {
        for kind in AssetKind::ALL {
            assert_eq!(Resource::of(kind).kind, kind);
            assert_eq!(
                Resource::from_plural(kind.plural()),
                Some(Resource::of(kind))
            );
        }
    }
}
