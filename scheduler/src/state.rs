//! The input of placement: the apps with their deployed versions and the hosts with their
//! labels and liveness. `consensus` derives it from the replicated log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;

/// A host's identity, unique in the cluster.
pub type HostId = String;

/// What placement needs to know about a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub labels: BTreeMap<String, String>,
    /// False once the leader has recorded the host as lost; lost hosts get no replicas.
    pub live: bool,
}

/// One deployed version of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppVersion {
    pub version: String,
    pub manifest: Manifest,
}

/// An application as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// The version most recently deployed.
    pub desired: AppVersion,
    /// The version that served before `desired` and keeps serving while `desired` cannot be
    /// placed. The state machine clears it once `desired` has been placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<AppVersion>,
    /// Undeployed apps keep their history but get no replicas.
    pub undeployed: bool,
}

/// Everything placement depends on. Ordered maps only: iteration order is part of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub hosts: BTreeMap<HostId, Host>,
    pub apps: BTreeMap<String, App>,
}
