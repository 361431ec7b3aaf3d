//! Checks that span the whole manifest: names, uniqueness, links and their targets, secrets
//! and policies. Messages keep wadm's wording where wadm has one, so users recognise them.

use std::collections::{BTreeMap, BTreeSet};

use crate::decode::{Loc, Origins};
use crate::diagnostic::Diagnostics;
use crate::manifest::{ComponentKind, Manifest, APPLICATION_KIND, OAM_API_VERSION};

/// The policy type wadm uses for secret backends.
const SECRET_POLICY_TYPE: &str = "policy.secret.wasmcloud.dev/v1alpha1";

/// Interfaces the wasmCloud host knows, by namespace and package (wadm's table, plus the
/// Postgres package and the key-value watcher Flotilla serves). An unknown interface or package
/// in a known namespace is probably a typo and gets a warning, as in wadm.
const KNOWN_INTERFACES: &[(&str, &str, &[&str])] = &[
    ("wrpc", "blobstore", &["blobstore"]),
    ("wrpc", "keyvalue", &["atomics", "store"]),
    ("wrpc", "http", &["incoming-handler", "outgoing-handler"]),
    ("wasi", "blobstore", &["blobstore"]),
    ("wasi", "config", &["runtime"]),
    (
        "wasi",
        "keyvalue",
        &["atomics", "store", "batch", "watch", "watcher"],
    ),
    ("wasi", "http", &["incoming-handler", "outgoing-handler"]),
    ("wasi", "logging", &["logging"]),
    ("wasmcloud", "messaging", &["consumer", "handler"]),
    ("wasmcloud", "postgres", &["query", "prepared"]),
];

pub(crate) fn validate(m: &Manifest, o: &Origins, d: &mut Diagnostics) {
    let err = |d: &mut Diagnostics, loc: &Loc, msg: String| d.error(loc.path.clone(), loc.pos, msg);

    if m.kind != APPLICATION_KIND {
        err(
            d,
            &o.kind,
            format!("kind must be `{APPLICATION_KIND}`, found `{}`", m.kind),
        );
    }
    if m.api_version != OAM_API_VERSION {
        d.warning(
            o.api_version.path.clone(),
            o.api_version.pos,
            format!("apiVersion `{}` is not `{OAM_API_VERSION}`", m.api_version),
        );
    }
    if !is_valid_name(&m.name) {
        err(
            d,
            &o.name,
            format!(
                "manifest name [{}] is not allowed (should match regex [^[-\\w]+$])",
                m.name
            ),
        );
    }
    if m.version() == Some("latest") {
        let loc = o.annotations.get("version").cloned().unwrap_or_default();
        err(d, &loc, "latest is not allowed in wadm".to_string());
    }
    for (key, loc) in &o.labels {
        if !is_valid_oam_key(key) {
            err(d, loc, format!("Invalid OAM label: {key:?}"));
        }
    }
    for (key, loc) in &o.annotations {
        if !is_valid_oam_key(key) {
            err(d, loc, format!("Invalid OAM annotation: {key:?}"));
        }
    }

    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (c, co) in m.components.iter().zip(&o.components) {
        if !names.insert(c.name.as_str()) {
            err(
                d,
                &co.name,
                format!("Duplicate component name in manifest: {}", c.name),
            );
        }
        if !is_valid_name(&c.name) {
            err(
                d,
                &co.name,
                format!(
                    "component name [{}] is not allowed (should match regex [^[-\\w]+$])",
                    c.name
                ),
            );
        }
        if let (Some(id), Some(loc)) = (&c.id, &co.id) {
            if !ids.insert(id.as_str()) {
                err(
                    d,
                    loc,
                    format!("Duplicate component identifier in manifest: {id}"),
                );
            }
        }
    }

    check_links(m, o, d, &names);
    check_component_link_cycles(m, o, d);
    check_http_routes(m, o, d);
    check_secrets(m, o, d);
}

/// The http-server capabilities' routes: a known `routing_mode`, each path or host link with
/// its key, and no path or host claimed twice on one address.
fn check_http_routes(m: &Manifest, o: &Origins, d: &mut Diagnostics) {
    let (_, problems) = crate::http_routing::http_routes(m);
    for problem in problems {
        let Some((_, co)) = m
            .components
            .iter()
            .zip(&o.components)
            .find(|(c, _)| c.name == problem.capability)
        else {
            continue;
        };
        let loc = match problem.link {
            Some(i) => co.links.get(i).map(|l| &l.link),
            None => co.config.first(),
        }
        .unwrap_or(&co.name);
        d.error(loc.path.clone(), loc.pos, problem.message);
    }
}

/// A link to a capability Flotilla serves in the host must carry config that capability can
/// use (a Redis `URL` that parses, a NATS `bucket`): refused at deploy with the place it came
/// from, rather than failing at the guest's first call.
pub(crate) fn check_link_backends(m: &Manifest, o: &Origins, d: &mut Diagnostics) {
    for (c, co) in m.components.iter().zip(&o.components) {
        for (link, lo) in c.links.iter().zip(&co.links) {
            let problems = if let Some(provider) = m.capability_provider(&link.target) {
                provider.config_problems(&m.link_target_config(link))
            } else if let Some(provider) = m.capability_provider(&c.name) {
                // A link from a capability to a component (a key-value watcher, a messaging
                // handler): its own config names the server, what to watch or subscribe to.
                let own = link
                    .source_config
                    .iter()
                    .chain(&link.target_config)
                    .filter_map(|c| c.properties.as_ref())
                    .flat_map(|p| p.iter())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut found = provider.config_problems(&own);
                if let Some(watch) = link.source_setting(crate::provider::WATCH) {
                    if let Err(why) = crate::provider::parse_watch(watch) {
                        found.push((crate::provider::WATCH.to_string(), why));
                    }
                }
                found
            } else {
                continue;
            };
            for (key, message) in problems {
                // The link's own target config entry that sets the key, else the link.
                let at = link
                    .target_config
                    .iter()
                    .zip(&lo.target_config)
                    .rev()
                    .find(|(cfg, _)| {
                        cfg.properties
                            .as_ref()
                            .is_some_and(|p| p.contains_key(&key))
                    })
                    .map(|(_, loc)| Loc {
                        path: format!("{}.properties.{key}", loc.path),
                        pos: loc.pos,
                    })
                    .unwrap_or_else(|| lo.target.clone());
                d.error(
                    at.path,
                    at.pos,
                    format!(
                        "link '{}' of component '{}' to '{}': {message}",
                        link.name_or_default(),
                        c.name,
                        link.target
                    ),
                );
            }
        }
    }
}

/// A component that calls another through a link runs the callee beside itself, so a cycle of
/// such links (a component that would, through them, call itself) is refused, at the link that
/// closes it.
fn check_component_link_cycles(m: &Manifest, o: &Origins, d: &mut Diagnostics) {
    let is_component = |name: &str| {
        m.component(name)
            .is_some_and(|c| c.kind == ComponentKind::Component)
    };
    let calls: BTreeMap<&str, BTreeSet<&str>> = m
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Component)
        .map(|c| {
            let callees = c
                .links
                .iter()
                .map(|l| l.target.as_str())
                .filter(|t| is_component(t))
                .collect();
            (c.name.as_str(), callees)
        })
        .collect();
    for (c, co) in m.components.iter().zip(&o.components) {
        for (link, lo) in c.links.iter().zip(&co.links) {
            if !calls.contains_key(c.name.as_str()) || !is_component(&link.target) {
                continue;
            }
            if let Some(path) = path_between(&calls, &link.target, &c.name) {
                d.error(
                    lo.link.path.clone(),
                    lo.link.pos,
                    format!(
                        "a cycle of component links: {} → {}: a component cannot call itself \
                         through links",
                        c.name,
                        path.join(" → ")
                    ),
                );
            }
        }
    }
}

/// The components from `from` to `to` along `calls` (both ends included), if `to` can be
/// reached.
fn path_between<'a>(
    calls: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    from: &'a str,
    to: &str,
) -> Option<Vec<&'a str>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(here) = queue.pop_front() {
        if here == to {
            let mut path = vec![here];
            let mut at = here;
            while let Some(previous) = came_from.get(at) {
                path.push(previous);
                at = previous;
            }
            path.reverse();
            return Some(path);
        }
        for next in calls.get(here).into_iter().flatten() {
            if seen.insert(next) {
                came_from.insert(next, here);
                queue.push_back(next);
            }
        }
    }
    None
}

fn check_links(m: &Manifest, o: &Origins, d: &mut Diagnostics, names: &BTreeSet<&str>) {
    let mut config_names = BTreeSet::new();
    for (c, co) in m.components.iter().zip(&o.components) {
        let mut seen = BTreeSet::new();
        for (link, lo) in c.links.iter().zip(&co.links) {
            if !names.contains(link.target.as_str()) {
                d.error(
                    lo.target.path.clone(),
                    lo.target.pos,
                    format!(
                        "The following capability component(s) are missing from the manifest: [{:?}]",
                        link.target
                    ),
                );
            }
            for interface in &link.interfaces {
                let key = (
                    link.name_or_default(),
                    &link.namespace,
                    &link.package,
                    interface,
                );
                if !seen.insert(key) {
                    d.error(
                        lo.link.path.clone(),
                        lo.link.pos,
                        format!(
                            "Duplicate link found inside component '{}': {} ({}:{}/{})",
                            c.name,
                            link.name_or_default(),
                            link.namespace,
                            link.package,
                            interface
                        ),
                    );
                }
                if is_unknown_interface_of_known_package(&link.namespace, &link.package, interface)
                {
                    d.warning(
                        lo.interfaces.path.clone(),
                        lo.interfaces.pos,
                        format!(
                            "unrecognized interface [{}:{}/{interface}]",
                            link.namespace, link.package
                        ),
                    );
                }
            }
            let configs = link
                .target_config
                .iter()
                .zip(&lo.target_config)
                .chain(link.source_config.iter().zip(&lo.source_config));
            for (config, loc) in configs {
                // A config without properties refers to one managed elsewhere: it may repeat.
                if config.properties.is_some() && !config_names.insert(config.name.as_str()) {
                    d.error(
                        loc.path.clone(),
                        loc.pos,
                        format!("Duplicate link config name found: '{}'", config.name),
                    );
                }
            }
        }
    }
}

fn check_secrets(m: &Manifest, o: &Origins, d: &mut Diagnostics) {
    let policies: BTreeMap<&str, _> = m.policies.iter().map(|p| (p.name.as_str(), p)).collect();
    for (c, co) in m.components.iter().zip(&o.components) {
        for (secret, loc) in c.secrets.iter().zip(&co.secrets) {
            let message = match policies.get(secret.policy.as_str()) {
                None => format!("secret '{}' is mapped to unknown policy '{}'", secret.name, secret.policy),
                Some(p) if p.policy_type != SECRET_POLICY_TYPE => format!(
                    "secret '{}' is mapped to policy '{}' which is not a secret policy. Expected type '{SECRET_POLICY_TYPE}'",
                    secret.name, secret.policy
                ),
                Some(p) if !p.properties.contains_key("backend") => format!(
                    "secret '{}' is mapped to policy '{}' which does not include a 'backend' property",
                    secret.name, secret.policy
                ),
                Some(_) => continue,
            };
            d.error(loc.path.clone(), loc.pos, message);
        }
    }
}

fn is_unknown_interface_of_known_package(namespace: &str, package: &str, interface: &str) -> bool {
    let namespace_known = KNOWN_INTERFACES.iter().any(|(ns, _, _)| *ns == namespace);
    if !namespace_known {
        return false;
    }
    !KNOWN_INTERFACES
        .iter()
        .any(|(ns, pkg, ifaces)| *ns == namespace && *pkg == package && ifaces.contains(&interface))
}

/// `^[-\w]+$`: letters, digits, `_` and `-` (Unicode letters and digits count, as in wadm).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// An OAM label or annotation key: `[prefix/]name`, prefix a DNS subdomain.
fn is_valid_oam_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_valid_dns_subdomain(prefix) && is_valid_label_name(name),
        None => is_valid_label_name(key),
    }
}

fn is_valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.starts_with(|c: char| c.is_ascii_alphabetic())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("hello-world_2"));
        assert!(is_valid_name("héllo"));
        assert!(!is_valid_name("hello world"));
        assert!(!is_valid_name("a.b"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn oam_keys() {
        assert!(is_valid_oam_key("version"));
        assert!(is_valid_oam_key("wasmcloud.dev/authors"));
        assert!(is_valid_oam_key("experimental.wasmcloud.dev/shared"));
        assert!(!is_valid_oam_key("-bad"));
        assert!(!is_valid_oam_key("1bad.dev/x"));
    }

    #[test]
    fn interfaces() {
        assert!(is_unknown_interface_of_known_package(
            "wasi", "keyvalue", "atomic"
        ));
        assert!(!is_unknown_interface_of_known_package(
            "wasi", "keyvalue", "atomics"
        ));
        assert!(is_unknown_interface_of_known_package(
            "wasmcloud",
            "task-manager",
            "tasks"
        ));
        assert!(!is_unknown_interface_of_known_package(
            "wasmcloud",
            "postgres",
            "query"
        ));
        assert!(!is_unknown_interface_of_known_package("acme", "thing", "x"));
    }

    /// A manifest of components `names`, each linking to the ones `links` gives it.
    fn linked(names: &[&str], links: &[(&str, &str)]) -> String {
        let mut yaml = String::from(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: calls\nspec:\n  components:\n",
        );
        for name in names {
            yaml.push_str(&format!(
                "    - name: {name}\n      type: component\n      properties:\n        image: file://./{name}.wasm\n      traits:\n"
            ));
            for (from, to) in links.iter().filter(|(from, _)| from == name) {
                yaml.push_str(&format!(
                    "        - type: link\n          properties:\n            target:\n              name: {to}\n            namespace: example\n            package: {from}-{to}\n            interfaces: [calls]\n"
                ));
            }
        }
        yaml
    }

    fn errors(yaml: &str) -> Vec<String> {
        match crate::parse_manifest(yaml.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(rejected) => rejected.errors().map(|d| d.message.clone()).collect(),
        }
    }

    #[test]
    fn component_link_cycles_are_refused_naming_the_cycle() {
        assert!(errors(&linked(&["a", "b", "c"], &[("a", "b"), ("b", "c")])).is_empty());
        let cycle = errors(&linked(
            &["a", "b", "c"],
            &[("a", "b"), ("b", "c"), ("c", "a")],
        ));
        assert_eq!(
            cycle.len(),
            3,
            "each link of the cycle closes it: {cycle:?}"
        );
        assert!(
            cycle.contains(&"a cycle of component links: a → b → c → a: a component cannot call itself through links".to_string()),
            "{cycle:?}"
        );
        let itself = errors(&linked(&["a"], &[("a", "a")]));
        assert_eq!(
            itself,
            ["a cycle of component links: a → a: a component cannot call itself through links"]
        );
    }
}
