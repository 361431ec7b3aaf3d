//! Builders for states and manifests used by the placement tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use scheduler::manifest::{Component, ComponentKind, Manifest, Scaler, ScalerKind, Spread};
use scheduler::{App, AppVersion, Host, ImageRef, State};

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn host(pairs: &[(&str, &str)]) -> Host {
    Host {
        labels: labels(pairs),
        live: true,
    }
}

pub fn spread(name: &str, req: &[(&str, &str)], weight: u32) -> Spread {
    Spread {
        name: name.to_string(),
        requirements: labels(req),
        weight,
    }
}

pub fn component(name: &str, kind: ScalerKind, replicas: u32, spreads: Vec<Spread>) -> Component {
    Component {
        name: name.to_string(),
        kind: ComponentKind::Component,
        image: Some(ImageRef::File(format!("./{name}.wasm"))),
        application: None,
        id: None,
        config: Vec::new(),
        secrets: Vec::new(),
        scaler: Some(Scaler {
            kind,
            replicas,
            spread: spreads,
        }),
        links: Vec::new(),
    }
}

pub fn manifest(app: &str, version: &str, components: Vec<Component>) -> Manifest {
    Manifest {
        api_version: "core.oam.dev/v1beta1".to_string(),
        kind: "Application".to_string(),
        name: app.to_string(),
        annotations: labels(&[("version", version)]),
        labels: BTreeMap::new(),
        policies: Vec::new(),
        components,
    }
}

pub fn deployed(app: &str, version: &str, components: Vec<Component>) -> App {
    App {
        desired: AppVersion {
            version: version.to_string(),
            manifest: manifest(app, version, components),
        },
        fallback: None,
        undeployed: false,
    }
}

pub fn state(hosts: &[(&str, Host)], apps: Vec<(&str, App)>) -> State {
    State {
        hosts: hosts
            .iter()
            .map(|(id, h)| (id.to_string(), h.clone()))
            .collect(),
        apps: apps.into_iter().map(|(n, a)| (n.to_string(), a)).collect(),
    }
}

/// A state with `hosts` and one app `app` (version `v1`) of one component `c`.
pub fn one_component(
    hosts: &[(&str, Host)],
    kind: ScalerKind,
    replicas: u32,
    spreads: Vec<Spread>,
) -> State {
    state(
        hosts,
        vec![(
            "app",
            deployed("app", "v1", vec![component("c", kind, replicas, spreads)]),
        )],
    )
}
