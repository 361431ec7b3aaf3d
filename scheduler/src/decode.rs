//! Reads the node tree into the manifest model, reporting every structural problem (wrong
//! type, missing or unknown field, bad number) with its field path and position, and folding
//! wadm's aliases and deprecated forms into one model.

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostics, Position};
use crate::document::{Node, Value};
use crate::image::ImageRef;
use crate::manifest::{
    Component, ComponentKind, ConfigProperty, Link, Manifest, Policy, Scaler, ScalerKind,
    SecretProperty, SharedApplication, Spread, DEFAULT_SPREAD_WEIGHT, MAX_REPLICAS,
};

/// A field path and the position of the node it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loc {
    pub path: String,
    pub pos: Option<Position>,
}

impl Loc {
    fn index(&self, i: usize, node: &Node) -> Loc {
        Loc {
            path: format!("{}[{i}]", self.path),
            pos: node.pos,
        }
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Where the parts of a manifest that validation talks about came from.
/// What a mapping's field outside the allowed ones is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Error,
    /// wadm ignores it: a warning, and the field is dropped.
    Ignore,
}

/// What a map's key without a value (`key:`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    Error,
    /// wadm reads it as an empty string: so it is, with a warning.
    IsEmptyString,
}

#[derive(Debug, Default)]
pub(crate) struct Origins {
    pub name: Loc,
    pub kind: Loc,
    pub api_version: Loc,
    pub annotations: BTreeMap<String, Loc>,
    pub labels: BTreeMap<String, Loc>,
    pub components: Vec<ComponentOrigin>,
}

#[derive(Debug, Default)]
pub(crate) struct ComponentOrigin {
    pub name: Loc,
    pub id: Option<Loc>,
    /// One location per `config` entry, in model order.
    pub config: Vec<Loc>,
    pub secrets: Vec<Loc>,
    pub links: Vec<LinkOrigin>,
}

#[derive(Debug, Default)]
pub(crate) struct LinkOrigin {
    pub link: Loc,
    pub target: Loc,
    pub interfaces: Loc,
    /// One location per config of `target_config` then `source_config`, in model order.
    pub target_config: Vec<Loc>,
    pub source_config: Vec<Loc>,
    /// One location per secret of `target.secrets`.
    pub target_secrets: Vec<Loc>,
}

/// The fields of a mapping, checked against the names it may have.
struct Fields<'n> {
    loc: Loc,
    entries: BTreeMap<&'n str, (&'n Node, Loc)>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<(&'n Node, &Loc)> {
        self.entries
            .get(name)
            .map(|(n, l)| (*n, l))
            .filter(|(n, _)| n.value != Value::Null)
    }

    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

pub(crate) struct Decoder<'d> {
    pub diags: &'d mut Diagnostics,
}

impl Decoder<'_> {
    fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.diags.error(loc.path.clone(), loc.pos, message);
    }

    fn warning(&mut self, loc: &Loc, message: impl Into<String>) {
        self.diags.warning(loc.path.clone(), loc.pos, message);
    }

    /// Checks that `node` is a mapping whose keys are unique scalars from `allowed`.
    fn fields<'n>(&mut self, loc: &Loc, node: &'n Node, allowed: &[&str]) -> Option<Fields<'n>> {
        self.fields_with(loc, node, allowed, Unknown::Error)
    }

    /// [`Decoder::fields`], with a field outside `allowed` an error or (where wadm ignores it)
    /// a warning.
    fn fields_with<'n>(
        &mut self,
        loc: &Loc,
        node: &'n Node,
        allowed: &[&str],
        unknown: Unknown,
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                loc,
                format!("expected a mapping, found {}", node.value.kind_name()),
            );
            return None;
        };
        let mut fields = Fields {
            loc: loc.clone(),
            entries: BTreeMap::new(),
        };
        for (text, field_loc, value) in self.keyed_entries(loc, entries, "field") {
            if !allowed.contains(&text) {
                let expected = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                match unknown {
                    Unknown::Error => self.error(
                        &field_loc,
                        format!("unknown field `{text}`, expected one of {expected}"),
                    ),
                    Unknown::Ignore => self.warning(
                        &field_loc,
                        format!("unknown field `{text}` is ignored (as wadm does); expected one of {expected}"),
                    ),
                }
                continue;
            }
            let value_loc = Loc {
                path: field_loc.path,
                pos: value.pos.or(field_loc.pos),
            };
            fields.entries.insert(text, (value, value_loc));
        }
        Some(fields)
    }

    /// A mapping's entries as `(key, location of the key, value)`. Keys that are not strings
    /// and keys given twice are reported and left out.
    fn keyed_entries<'n>(
        &mut self,
        loc: &Loc,
        entries: &'n [(Node, Node)],
        what: &str,
    ) -> Vec<(&'n str, Loc, &'n Node)> {
        let mut out: Vec<(&'n str, Loc, &'n Node)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Value::Scalar { text, .. } = &key.value else {
                let at = Loc {
                    path: loc.path.clone(),
                    pos: key.pos,
                };
                self.error(&at, "mapping keys must be strings");
                continue;
            };
            let key_loc = Loc {
                path: join(&loc.path, text),
                pos: key.pos,
            };
            if out.iter().any(|(seen, _, _)| *seen == text.as_str()) {
                self.error(&key_loc, format!("duplicate {what} `{text}`"));
                continue;
            }
            out.push((text.as_str(), key_loc, value));
        }
        out
    }

    fn missing(&mut self, fields: &Fields<'_>, name: &str) {
        let loc = fields.loc.clone();
        self.error(&loc, format!("missing field `{name}`"));
    }

    fn string(&mut self, loc: &Loc, node: &Node) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } => Some(text.clone()),
            other => {
                self.error(
                    loc,
                    format!("expected a string, found {}", other.kind_name()),
                );
                None
            }
        }
    }

    fn required_string(&mut self, fields: &Fields<'_>, name: &str) -> Option<String> {
        match fields.get(name) {
            Some((node, loc)) => {
                let loc = loc.clone();
                self.string(&loc, node)
            }
            None => {
                self.missing(fields, name);
                None
            }
        }
    }

    fn optional_string(&mut self, fields: &Fields<'_>, name: &str) -> Option<String> {
        let (node, loc) = fields.get(name)?;
        let loc = loc.clone();
        self.string(&loc, node)
    }

    /// A non-negative integer no larger than `max`, written without quotes.
    fn integer(&mut self, loc: &Loc, node: &Node, max: u32, what: &str) -> Option<u32> {
        let text = match &node.value {
            Value::Scalar {
                text,
                quoted: false,
            } => text.trim(),
            Value::Scalar { text, quoted: true } => {
                self.error(
                    loc,
                    format!("{what} must be a number, found the string \"{text}\""),
                );
                return None;
            }
            other => {
                self.error(
                    loc,
                    format!("{what} must be a number, found {}", other.kind_name()),
                );
                return None;
            }
        };
        let digits = text.strip_prefix('+').unwrap_or(text);
        let (negative, digits) = match digits.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, digits),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            self.error(
                loc,
                format!("{what} must be a whole number, found `{text}`"),
            );
            return None;
        }
        if negative && digits.bytes().any(|b| b != b'0') {
            self.error(loc, format!("{what} must not be negative, found {text}"));
            return None;
        }
        match digits.parse::<u64>() {
            Ok(n) if n <= u64::from(max) => Some(n as u32),
            Ok(n) => {
                self.error(loc, format!("{what} {n} is above the limit of {max}"));
                None
            }
            Err(_) => {
                self.error(
                    loc,
                    format!("{what} {text} is out of range (the limit is {max})"),
                );
                None
            }
        }
    }

    fn sequence<'n>(&mut self, loc: &Loc, node: &'n Node) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            other => {
                self.error(
                    loc,
                    format!("expected a sequence, found {}", other.kind_name()),
                );
                &[]
            }
        }
    }

    fn string_map(
        &mut self,
        loc: &Loc,
        node: &Node,
    ) -> (BTreeMap<String, String>, BTreeMap<String, Loc>) {
        self.string_map_with(loc, node, Empty::Error)
    }

    /// [`Decoder::string_map`], with a key left without a value (`key:`) an error or (where wadm
    /// reads it so) an empty string, with a warning.
    fn string_map_with(
        &mut self,
        loc: &Loc,
        node: &Node,
        empty: Empty,
    ) -> (BTreeMap<String, String>, BTreeMap<String, Loc>) {
        let mut map = BTreeMap::new();
        let mut locs = BTreeMap::new();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.error(
                    loc,
                    format!(
                        "expected a mapping of strings, found {}",
                        node.value.kind_name()
                    ),
                );
            }
            return (map, locs);
        };
        for (k, entry_loc, value) in self.keyed_entries(loc, entries, "key") {
            let v = match &value.value {
                Value::Scalar { text, .. } => text.clone(),
                Value::Null if empty == Empty::IsEmptyString => {
                    self.warning(
                        &entry_loc,
                        format!("`{k}` has no value: it is read as an empty string (as wadm does)"),
                    );
                    String::new()
                }
                other => {
                    self.error(
                        &Loc {
                            path: entry_loc.path.clone(),
                            pos: value.pos,
                        },
                        format!("expected a string, found {}", other.kind_name()),
                    );
                    continue;
                }
            };
            map.insert(k.to_string(), v);
            locs.insert(k.to_string(), entry_loc);
        }
        (map, locs)
    }

    pub fn manifest(&mut self, root: &Node, origins: &mut Origins) -> Option<Manifest> {
        let top = Loc {
            path: String::new(),
            pos: root.pos,
        };
        let fields = self.fields(&top, root, &["apiVersion", "kind", "metadata", "spec"])?;
        origins.api_version = fields
            .get("apiVersion")
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        origins.kind = fields
            .get("kind")
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let api_version = self.required_string(&fields, "apiVersion");
        let kind = self.required_string(&fields, "kind");

        let mut name = None;
        let mut annotations = BTreeMap::new();
        let mut labels = BTreeMap::new();
        match fields.get("metadata") {
            None => self.missing(&fields, "metadata"),
            Some((node, loc)) => {
                let loc = loc.clone();
                if let Some(meta) = self.fields(&loc, node, &["name", "annotations", "labels"]) {
                    origins.name = meta
                        .get("name")
                        .map(|(_, l)| l.clone())
                        .unwrap_or(loc.clone());
                    name = self.required_string(&meta, "name");
                    if let Some((n, l)) = meta.get("annotations") {
                        let l = l.clone();
                        (annotations, origins.annotations) =
                            self.string_map_with(&l, n, Empty::IsEmptyString);
                    }
                    if let Some((n, l)) = meta.get("labels") {
                        let l = l.clone();
                        (labels, origins.labels) = self.string_map(&l, n);
                    }
                }
            }
        }

        let mut components = Vec::new();
        let mut policies = Vec::new();
        match fields.get("spec") {
            None => self.missing(&fields, "spec"),
            Some((node, loc)) => {
                let loc = loc.clone();
                if let Some(spec) = self.fields(&loc, node, &["components", "policies"]) {
                    match spec.get("components") {
                        None => self.missing(&spec, "components"),
                        Some((n, l)) => {
                            let l = l.clone();
                            for (i, item) in self.sequence(&l, n).iter().enumerate() {
                                let mut origin = ComponentOrigin::default();
                                if let Some(c) =
                                    self.component(&l.index(i, item), item, &mut origin)
                                {
                                    components.push(c);
                                    origins.components.push(origin);
                                }
                            }
                        }
                    }
                    if let Some((n, l)) = spec.get("policies") {
                        let l = l.clone();
                        for (i, item) in self.sequence(&l, n).iter().enumerate() {
                            policies.extend(self.policy(&l.index(i, item), item));
                        }
                    }
                }
            }
        }
        Some(Manifest {
            api_version: api_version?,
            kind: kind?,
            name: name?,
            annotations,
            labels,
            policies,
            components,
        })
    }

    fn policy(&mut self, loc: &Loc, node: &Node) -> Option<Policy> {
        let f = self.fields(loc, node, &["name", "type", "properties"])?;
        let name = self.required_string(&f, "name");
        let policy_type = self.required_string(&f, "type");
        let properties = match f.get("properties") {
            Some((n, l)) => {
                let l = l.clone();
                self.string_map(&l, n).0
            }
            None => BTreeMap::new(),
        };
        Some(Policy {
            name: name?,
            policy_type: policy_type?,
            properties,
        })
    }

    fn component(
        &mut self,
        loc: &Loc,
        node: &Node,
        origin: &mut ComponentOrigin,
    ) -> Option<Component> {
        let f = self.fields(loc, node, &["name", "type", "properties", "traits"])?;
        origin.name = f.get("name").map(|(_, l)| l.clone()).unwrap_or(loc.clone());
        let name = self.required_string(&f, "name");
        let kind = match f.get("type") {
            None => {
                self.missing(&f, "type");
                None
            }
            Some((n, l)) => {
                let l = l.clone();
                match self.string(&l, n).as_deref() {
                    Some("component" | "actor") => Some(ComponentKind::Component),
                    Some("capability") => Some(ComponentKind::Capability),
                    Some(other) => {
                        self.error(
                            &l,
                            format!("unknown component type `{other}`, expected one of `component`, `actor`, `capability`"),
                        );
                        None
                    }
                    None => None,
                }
            }
        };

        let mut component = Component {
            name: name.clone().unwrap_or_default(),
            kind: kind.unwrap_or(ComponentKind::Component),
            image: None,
            application: None,
            id: None,
            config: Vec::new(),
            secrets: Vec::new(),
            scaler: None,
            links: Vec::new(),
        };
        match f.get("properties") {
            None => self.missing(&f, "properties"),
            Some((n, l)) => {
                let l = l.clone();
                self.component_properties(&l, n, &mut component, origin);
            }
        }
        if let Some((n, l)) = f.get("traits") {
            let l = l.clone();
            let mut scaler_at: Option<String> = None;
            for (i, item) in self.sequence(&l, n).iter().enumerate() {
                self.component_trait(
                    &l.index(i, item),
                    item,
                    &mut component,
                    origin,
                    &mut scaler_at,
                );
            }
        }
        name?;
        kind?;
        Some(component)
    }

    fn component_properties(
        &mut self,
        loc: &Loc,
        node: &Node,
        c: &mut Component,
        origin: &mut ComponentOrigin,
    ) {
        let Some(f) = self.fields(
            loc,
            node,
            &["image", "application", "id", "config", "secrets"],
        ) else {
            return;
        };
        if let Some((n, l)) = f.get("image") {
            let l = l.clone();
            if let Some(text) = self.string(&l, n) {
                match ImageRef::parse(&text) {
                    Ok(image) => c.image = Some(image),
                    Err(e) => self.error(&l, e),
                }
            }
        }
        if let Some((n, l)) = f.get("application") {
            let l = l.clone();
            if let Some(app) = self.fields(&l, n, &["name", "component"]) {
                let name = self.required_string(&app, "name");
                let component = self.required_string(&app, "component");
                if let (Some(name), Some(component)) = (name, component) {
                    c.application = Some(SharedApplication { name, component });
                }
            }
        }
        match (f.has("image"), f.has("application")) {
            (true, true) => self.error(
                loc,
                "Component cannot have both 'image' and 'application' properties",
            ),
            (false, false) => self.error(
                loc,
                "Component must have either 'image' or 'application' property",
            ),
            _ => {}
        }
        if let Some((n, l)) = f.get("id") {
            origin.id = Some(l.clone());
            let l = l.clone();
            c.id = self.string(&l, n);
        }
        if let Some((n, l)) = f.get("config") {
            let l = l.clone();
            let (configs, locs): (Vec<_>, Vec<_>) = self.configs(&l, n).into_iter().unzip();
            c.config = configs;
            origin.config = locs;
        }
        if let Some((n, l)) = f.get("secrets") {
            let l = l.clone();
            for (i, item) in self.sequence(&l, n).iter().enumerate() {
                let item_loc = l.index(i, item);
                if let Some(s) = self.secret(&item_loc, item) {
                    c.secrets.push(s);
                    origin.secrets.push(item_loc);
                }
            }
        }
    }

    fn configs(&mut self, loc: &Loc, node: &Node) -> Vec<(ConfigProperty, Loc)> {
        self.configs_with(loc, node, Unknown::Error)
    }

    /// A link's source or target config: wadm ignores fields it does not know there.
    fn link_configs(&mut self, loc: &Loc, node: &Node) -> Vec<(ConfigProperty, Loc)> {
        self.configs_with(loc, node, Unknown::Ignore)
    }

    fn configs_with(
        &mut self,
        loc: &Loc,
        node: &Node,
        unknown: Unknown,
    ) -> Vec<(ConfigProperty, Loc)> {
        let mut out = Vec::new();
        for (i, item) in self.sequence(loc, node).iter().enumerate() {
            let item_loc = loc.index(i, item);
            let Some(f) = self.fields_with(&item_loc, item, &["name", "properties"], unknown)
            else {
                continue;
            };
            let name = self.required_string(&f, "name");
            let properties = f.get("properties").map(|(n, l)| {
                let l = l.clone();
                self.string_map(&l, n).0
            });
            if let Some(name) = name {
                out.push((ConfigProperty { name, properties }, item_loc));
            }
        }
        out
    }

    fn secret(&mut self, loc: &Loc, node: &Node) -> Option<SecretProperty> {
        let f = self.fields(loc, node, &["name", "properties"])?;
        let name = self.required_string(&f, "name");
        let Some((n, l)) = f.get("properties") else {
            self.missing(&f, "properties");
            return None;
        };
        let l = l.clone();
        let p = self.fields(&l, n, &["policy", "key", "field", "version"])?;
        let policy = self.required_string(&p, "policy");
        let key = self.required_string(&p, "key");
        let field = self.optional_string(&p, "field");
        let version = self.optional_string(&p, "version");
        Some(SecretProperty {
            name: name?,
            policy: policy?,
            key: key?,
            field,
            version,
        })
    }

    fn component_trait(
        &mut self,
        loc: &Loc,
        node: &Node,
        c: &mut Component,
        origin: &mut ComponentOrigin,
        scaler_at: &mut Option<String>,
    ) {
        let Some(f) = self.fields(loc, node, &["type", "properties"]) else {
            return;
        };
        let Some(trait_type) = self.required_string(&f, "type") else {
            return;
        };
        let type_loc = f.get("type").map(|(_, l)| l.clone()).unwrap_or(loc.clone());
        let Some((props, props_loc)) = f.get("properties") else {
            self.missing(&f, "properties");
            return;
        };
        let props_loc = props_loc.clone();
        match trait_type.as_str() {
            "spreadscaler" | "daemonscaler" => {
                let kind = if trait_type == "spreadscaler" { ScalerKind::Spread } else { ScalerKind::Daemon };
                if let Some(first) = scaler_at {
                    self.error(
                        &type_loc,
                        format!("a component has at most one scaler trait; the first is at {first}"),
                    );
                    return;
                }
                *scaler_at = Some(loc.path.clone());
                c.scaler = self.scaler(&props_loc, props, kind);
            }
            "link" | "linkdef" => {
                if trait_type == "linkdef" {
                    self.warning(&type_loc, "trait type `linkdef` is deprecated, please use `link` rather");
                }
                let mut link_origin = LinkOrigin { link: loc.clone(), ..LinkOrigin::default() };
                if let Some(link) = self.link(&props_loc, props, &mut link_origin) {
                    c.links.push(link);
                    origin.links.push(link_origin);
                }
            }
            other => self.error(
                &type_loc,
                format!("unknown trait type `{other}`, expected one of `spreadscaler`, `daemonscaler`, `link`"),
            ),
        }
    }

    fn scaler(&mut self, loc: &Loc, node: &Node, kind: ScalerKind) -> Option<Scaler> {
        let f = self.fields(loc, node, &["instances", "replicas", "spread"])?;
        let replicas = match (f.get("instances"), f.get("replicas")) {
            (Some(_), Some((_, l))) => {
                let l = l.clone();
                self.error(
                    &l,
                    "`instances` and `replicas` are the same field: give only one",
                );
                None
            }
            (Some((n, l)), None) | (None, Some((n, l))) => {
                let l = l.clone();
                self.integer(&l, n, MAX_REPLICAS, "replicas")
            }
            (None, None) => {
                self.missing(&f, "replicas");
                None
            }
        };
        let mut spread = Vec::new();
        let mut weight_locs = Vec::new();
        let mut all_weights_known = true;
        if let Some((n, l)) = f.get("spread") {
            let l = l.clone();
            for (i, item) in self.sequence(&l, n).iter().enumerate() {
                let item_loc = l.index(i, item);
                let Some(sf) = self.fields(&item_loc, item, &["name", "requirements", "weight"])
                else {
                    all_weights_known = false;
                    continue;
                };
                let name = self.required_string(&sf, "name");
                let requirements = match sf.get("requirements") {
                    Some((rn, rl)) => {
                        let rl = rl.clone();
                        self.string_map(&rl, rn).0
                    }
                    None => BTreeMap::new(),
                };
                let weight = match sf.get("weight") {
                    Some((wn, wl)) => {
                        let wl = wl.clone();
                        weight_locs.push(wl.clone());
                        self.integer(&wl, wn, u32::MAX, "weight")
                    }
                    None => Some(DEFAULT_SPREAD_WEIGHT),
                };
                match (name, weight) {
                    (Some(name), Some(weight)) => spread.push(Spread {
                        name,
                        requirements,
                        weight,
                    }),
                    _ => all_weights_known = false,
                }
            }
        }
        if kind == ScalerKind::Spread
            && all_weights_known
            && !spread.is_empty()
            && spread.iter().all(|s| s.weight == 0)
        {
            let at = Loc {
                path: join(&loc.path, "spread"),
                pos: f.get("spread").and_then(|(n, _)| n.pos),
            };
            self.error(
                &at,
                "spread weights are all zero: at least one spread needs a positive weight",
            );
        }
        Some(Scaler {
            kind,
            replicas: replicas?,
            spread,
        })
    }

    fn link(&mut self, loc: &Loc, node: &Node, origin: &mut LinkOrigin) -> Option<Link> {
        let f = self.fields(
            loc,
            node,
            &[
                "name",
                "namespace",
                "package",
                "interfaces",
                "target",
                "source",
                "source_config",
                "target_config",
            ],
        )?;
        let name = self.optional_string(&f, "name");
        let namespace = self.required_string(&f, "namespace");
        let package = self.required_string(&f, "package");
        let mut interfaces = Vec::new();
        match f.get("interfaces") {
            None => self.missing(&f, "interfaces"),
            Some((n, l)) => {
                let l = l.clone();
                origin.interfaces = l.clone();
                for (i, item) in self.sequence(&l, n).iter().enumerate() {
                    interfaces.extend(self.string(&l.index(i, item), item));
                }
                if interfaces.is_empty() {
                    self.error(&l, "interfaces must list at least one interface");
                }
            }
        }

        let mut target = None;
        let mut target_config = Vec::new();
        let mut target_secrets = Vec::new();
        match f.get("target") {
            None => self.missing(&f, "target"),
            Some((n, l)) => {
                let l = l.clone();
                origin.target = l.clone();
                if let Value::Map(_) = n.value {
                    // wadm ignores unknown keys under a link's target (and source): so do
                    // we, with a warning.
                    if let Some(t) =
                        self.fields_with(&l, n, &["name", "config", "secrets"], Unknown::Ignore)
                    {
                        if let Some((_, nl)) = t.get("name") {
                            origin.target = nl.clone();
                        }
                        target = self.required_string(&t, "name");
                        if let Some((cn, cl)) = t.get("config") {
                            let cl = cl.clone();
                            target_config = self.link_configs(&cl, cn);
                        }
                        if let Some((sn, sl)) = t.get("secrets") {
                            let sl = sl.clone();
                            for (i, item) in self.sequence(&sl, sn).iter().enumerate() {
                                let item_loc = sl.index(i, item);
                                if let Some(secret) = self.secret(&item_loc, item) {
                                    target_secrets.push(secret);
                                    origin.target_secrets.push(item_loc);
                                }
                            }
                        }
                    }
                } else {
                    target = self.string(&l, n);
                }
            }
        }
        let mut source_config = Vec::new();
        if let Some((n, l)) = f.get("source") {
            let l = l.clone();
            if let Some(s) = self.fields_with(&l, n, &["config", "secrets"], Unknown::Ignore) {
                if let Some((cn, cl)) = s.get("config") {
                    let cl = cl.clone();
                    source_config = self.link_configs(&cl, cn);
                }
                if let Some((sn, sl)) = s.get("secrets") {
                    let sl = sl.clone();
                    for (i, item) in self.sequence(&sl, sn).iter().enumerate() {
                        self.secret(&sl.index(i, item), item);
                    }
                }
            }
        }
        for (field, form, into) in [
            ("source_config", "source:config:", &mut source_config),
            ("target_config", "target:config:", &mut target_config),
        ] {
            let Some((n, l)) = f.get(field) else { continue };
            let l = l.clone();
            self.warning(
                &Loc { path: l.path.clone(), pos: f.entries.get(field).and_then(|(_, fl)| fl.pos) },
                format!("one of the components' link trait contains a {field} key, please use {form} rather"),
            );
            if !into.is_empty() {
                self.error(&l, format!("give `{field}` or `{form}`, not both"));
                continue;
            }
            *into = self.link_configs(&l, n);
        }
        origin.target_config = target_config.iter().map(|(_, l)| l.clone()).collect();
        origin.source_config = source_config.iter().map(|(_, l)| l.clone()).collect();
        Some(Link {
            name,
            namespace: namespace?,
            package: package?,
            interfaces,
            target: target?,
            target_config: target_config.into_iter().map(|(c, _)| c).collect(),
            source_config: source_config.into_iter().map(|(c, _)| c).collect(),
            target_secrets,
        })
    }
}
