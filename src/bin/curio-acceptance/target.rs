//! What the scenario drives: `curio standalone` on a folder, or Curio's processes against a
//! cluster. The scenario only writes tenants' files, starts and stops Curio, and asks where
//! its API is; each mode does those its own way.

use crate::{cluster::Cluster, standalone::Standalone};

pub enum Target {
    Standalone(Standalone),
    Cluster(Box<Cluster>),
}

impl Target {
    pub fn base(&self) -> String {
        match self {
            Self::Standalone(s) => s.base(),
            Self::Cluster(c) => c.base(),
        }
    }

    pub fn database_url(&self) -> &str {
        match self {
            Self::Standalone(s) => &s.database_url,
            Self::Cluster(c) => &c.database_url,
        }
    }

    /// Writes one of the scenario's files (a manifest, or a served catalog under `files/`).
    pub async fn put(&self, relative: &str, content: &str) -> anyhow::Result<()> {
        match self {
            Self::Standalone(s) => s.put(relative, content),
            Self::Cluster(c) => c.put(relative, content).await,
        }
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        match self {
            Self::Standalone(s) => s.start().await,
            Self::Cluster(c) => c.start().await,
        }
    }

    pub fn stop(&self) {
        match self {
            Self::Standalone(s) => s.stop(),
            Self::Cluster(c) => c.stop(),
        }
    }

    /// Curio's processes: (what it is, pid).
    pub fn pids(&self) -> Vec<(String, u32)> {
        match self {
            Self::Standalone(s) => s.pids(),
            Self::Cluster(c) => c.pids(),
        }
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Self::Standalone(_) => None,
            Self::Cluster(c) => Some(c),
        }
    }
}
