//! Events for the property tests of the state machine and of the hosts' shares: a few apps
//! (some spread over zones, some naming a secret), hosts joining, leaving, draining and being
//! lost, secrets, configs and tokens.

#![allow(dead_code)]

use std::collections::BTreeMap;

use consensus::Event;
use proptest::prelude::*;
use scheduler::{parse_manifest, Manifest};

pub const ZONES: &[&str] = &["us-east-1", "us-west-1", "eu-west-1"];

/// A manifest for `app` at version number `n`: some spread over zones, some not.
pub fn manifest(app: &str, n: u8) -> Manifest {
    let spread = match n % 3 {
        0 => String::new(),
        1 => format!(
            "            spread:\n              - name: east\n                requirements:\n                  zone: {}\n                weight: 80\n              - name: west\n                requirements:\n                  zone: {}\n                weight: 20\n",
            ZONES[0], ZONES[1]
        ),
        _ => format!(
            "            spread:\n              - name: eu\n                requirements:\n                  zone: {}\n",
            ZONES[2]
        ),
    };
    // Odd versions name a stored secret (s0 or s1), so that shares carry some.
    let (policies, secrets) = if n % 2 == 1 {
        (
            "  policies:\n    - name: store\n      type: policy.secret.wasmcloud.dev/v1alpha1\n      properties:\n        backend: flotilla\n".to_string(),
            format!("        secrets:\n          - name: db\n            properties:\n              policy: store\n              key: s{}\n", (n / 2) % 2),
        )
    } else {
        (String::new(), String::new())
    };
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: v{n}\nspec:\n{policies}  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n{secrets}      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {}\n{spread}",
        10 + u32::from(n) * 7
    );
    parse_manifest(yaml.as_bytes())
        .expect("test manifest is valid")
        .manifest
}

pub fn deployed(app: &str, n: u8, at: u64) -> Event {
    Event::AppDeployed {
        app: app.to_string(),
        version: format!("v{n}"),
        manifest: manifest(app, n),
        digests: BTreeMap::new(),
        who: "tester".to_string(),
        at,
    }
}

pub fn joined(host: &str, zone: &str, at: u64) -> Event {
    Event::HostJoined {
        host: host.to_string(),
        labels: BTreeMap::from([("zone".to_string(), zone.to_string())]),
        addresses: BTreeMap::from([(
            "api".to_string(),
            format!("127.0.0.1:{}", 7000 + host.len()),
        )]),
        at,
    }
}

pub fn arb_event() -> impl Strategy<Value = Event> {
    let app = (0u8..3).prop_map(|a| format!("app{a}"));
    let host = (0u8..6).prop_map(|h| format!("h{h}"));
    prop_oneof![
        4 => (app.clone(), 0u8..5, any::<u32>()).prop_map(|(a, n, t)| deployed(&a, n, u64::from(t))),
        // Same version, other manifest: must be ignored, not applied.
        1 => (app.clone(), 0u8..5).prop_map(|(a, n)| {
            let Event::AppDeployed { app, version, digests, who, at, .. } = deployed(&a, n, 1) else { unreachable!() };
            Event::AppDeployed { app, version, manifest: manifest(&a, n + 1), digests, who, at }
        }),
        1 => app.clone().prop_map(|app| Event::AppUndeployed { app, who: "t".into(), at: 2 }),
        1 => app.prop_map(|app| Event::AppDeleted { app, who: "t".into(), at: 3 }),
        4 => (host.clone(), 0..ZONES.len()).prop_map(|(h, z)| joined(&h, ZONES[z], 4)),
        1 => (host.clone(), 0..ZONES.len()).prop_map(|(h, z)| Event::HostLabelsChanged {
            host: h,
            labels: BTreeMap::from([("zone".to_string(), ZONES[z].to_string())]),
            who: "t".into(),
            at: 5,
        }),
        2 => host.clone().prop_map(|host| Event::HostLost { host, at: 6 }),
        2 => host.clone().prop_map(|host| Event::HostReturned { host, at: 7 }),
        1 => host.clone().prop_map(|host| Event::HostDrainStarted { host, who: "t".into(), at: 11 }),
        1 => host.clone().prop_map(|host| Event::HostDrained { host, at: 12 }),
        1 => host.clone().prop_map(|host| Event::HostUndrained { host, who: "t".into(), at: 13 }),
        1 => host.clone().prop_map(|host| Event::HostLeft { host, at: 14 }),
        1 => host.prop_map(|host| Event::HostRemoved { host, who: "t".into(), at: 15 }),
        1 => Just(Event::ApiTokenRotated { who: "t".into(), at: 8 }),
        1 => Just(Event::CertificatesRotated { who: "t".into(), at: 8 }),
        // Versions out of order must be ignored; the next one applies.
        2 => ((0u8..2), (1u64..4)).prop_map(|(n, version)| secret_put(&format!("s{n}"), version)),
        1 => (0u8..2).prop_map(|n| Event::SecretDeleted { name: format!("s{n}"), who: "t".into(), at: 10 }),
        // Named configs: put (replacing) and delete (ignored when absent).
        1 => ((0u8..2), (0u8..3)).prop_map(|(n, v)| Event::ConfigPut {
            name: format!("c{n}"),
            properties: std::collections::BTreeMap::from([("k".to_string(), v.to_string())]),
            who: "t".into(),
            at: 10,
        }),
        1 => (0u8..2).prop_map(|n| Event::ConfigDeleted { name: format!("c{n}"), who: "t".into(), at: 10 }),
        // A token created twice is ignored the second time; revoking one that is gone too.
        1 => ((0u8..2), (0u8..3)).prop_map(|(n, scope)| Event::TokenCreated {
            id: format!("t{n}"),
            record: consensus::tokens::TokenRecord {
                name: format!("token {n}"),
                scope: [consensus::tokens::Scope::Read, consensus::tokens::Scope::Deploy, consensus::tokens::Scope::Admin][scope as usize],
                apps: Default::default(),
                expires_at: Some(100),
                hash: consensus::tokens::hash_secret("s"),
                who: "t".into(),
                at: 16,
            },
        }),
        1 => (0u8..2).prop_map(|n| Event::TokenRevoked { id: format!("t{n}"), who: "t".into(), at: 17 }),
    ]
}

pub fn secret_put(name: &str, version: u64) -> Event {
    Event::SecretPut {
        name: name.to_string(),
        version,
        sealed: consensus::secrets::Sealed {
            nonce: format!("nonce-{version}"),
            ciphertext: format!("ciphertext-of-{name}-{version}"),
        },
        who: "t".into(),
        at: 9,
    }
}
