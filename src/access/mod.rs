//! The access seam: who is calling (`authn`, `identity`) and what they may do (`authz`).
//! Shared by the read API, the admission webhook and standalone mode.

pub mod authn;
pub mod authz;
pub mod identity;
pub mod metrics;
pub mod proxy;
