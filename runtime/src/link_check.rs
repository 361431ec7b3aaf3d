//! The deploy-time check of component-to-component links: for each link from component A to
//! component B, every function of the interface A imports must be exported by B with exactly
//! the same signature, and the interface must carry no resources (calls between components
//! pass typed values only). Read from the components' own type information (their embedded
//! WIT, decoded by `wit-parser`), without compiling them.

use std::collections::BTreeMap;

use scheduler::{ComponentKind, Manifest};
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Handle, InterfaceId, Resolve, Type, TypeDefKind, WorldItem};

use crate::capabilities::links::interface_key;
use crate::linked::unversioned;

/// One component's decoded world: the interfaces it imports and exports by unversioned name.
struct World {
    resolve: Resolve,
    imports: BTreeMap<String, InterfaceId>,
    exports: BTreeMap<String, InterfaceId>,
}

impl World {
    fn decode(bytes: &[u8]) -> Result<World, String> {
        let (resolve, world) = match wit_parser::decoding::decode(bytes) {
            Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
            Ok(DecodedWasm::WitPackage(..)) => return Err("it is a WIT package".to_string()),
            Err(e) => return Err(format!("{e:#}")),
        };
        let interfaces = |items: &mut dyn Iterator<Item = &WorldItem>| {
            items
                .filter_map(|item| match item {
                    WorldItem::Interface { id, .. } => {
                        let name = resolve.id_of(*id)?;
                        Some((unversioned(&name).to_string(), *id))
                    }
                    _ => None,
                })
                .collect::<BTreeMap<_, _>>()
        };
        let w = &resolve.worlds[world];
        let imports = interfaces(&mut w.imports.values());
        let exports = interfaces(&mut w.exports.values());
        Ok(World {
            resolve,
            imports,
            exports,
        })
    }
}

/// What is wrong with one component-to-component link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProblem {
    /// The component whose link it is.
    pub caller: String,
    /// The link's index among the caller's links.
    pub link: usize,
    pub message: String,
}

/// The component links of `manifest`: `(caller, index, link)` for every link whose target is
/// a component.
fn component_links(manifest: &Manifest) -> impl Iterator<Item = (&str, usize, &scheduler::Link)> {
    manifest.components.iter().flat_map(move |caller| {
        caller
            .links
            .iter()
            .enumerate()
            .filter(move |(_, l)| {
                manifest
                    .component(&l.target)
                    .is_some_and(|t| t.kind == ComponentKind::Component)
            })
            .map(move |(i, l)| (caller.name.as_str(), i, l))
    })
}

/// The components at either end of a component link of `manifest`: the ones whose code the
/// check needs.
pub fn linked_components(manifest: &Manifest) -> std::collections::BTreeSet<String> {
    component_links(manifest)
        .flat_map(|(caller, _, link)| [caller.to_string(), link.target.clone()])
        .collect()
}

/// Why the component-to-component links of `manifest` cannot work, one message per problem,
/// given the code of its components by name (a link whose ends' code is not given is not
/// checked).
pub fn link_problems(manifest: &Manifest, code: &BTreeMap<String, Vec<u8>>) -> Vec<LinkProblem> {
    let worlds: BTreeMap<&str, Result<World, String>> = linked_components(manifest)
        .into_iter()
        .filter_map(|name| {
            let bytes = code.get(&name)?;
            let name = manifest.component(&name)?.name.as_str();
            Some((name, World::decode(bytes)))
        })
        .collect();
    let mut problems = Vec::new();
    for (caller, index, link) in component_links(manifest) {
        let callee = link.target.as_str();
        let problem = |message: String| LinkProblem {
            caller: caller.to_string(),
            link: index,
            message,
        };
        let (Some(a), Some(b)) = (worlds.get(caller), worlds.get(callee)) else {
            continue;
        };
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                problems.push(problem(format!(
                    "cannot read the types of the link from `{caller}` to `{callee}`: {e}"
                )));
                continue;
            }
        };
        for interface in &link.interfaces {
            let key = interface_key(&link.namespace, &link.package, interface);
            problems.extend(
                check_interface(caller, a, callee, b, &key)
                    .into_iter()
                    .map(problem),
            );
        }
    }
    problems
}

/// What is wrong with `caller`'s import of `interface` from `callee`'s export, if anything.
/// A caller that does not import the interface has nothing to check.
fn check_interface(
    caller: &str,
    a: &World,
    callee: &str,
    b: &World,
    interface: &str,
) -> Vec<String> {
    let carries = |end: &str, world: &World, id: InterfaceId| {
        resource_of(&world.resolve, id).map(|resource| vec![format!(
            "{interface} carries the resource `{resource}` (as `{end}` sees it): calls between components pass typed values only"
        )])
    };
    let Some(&imported) = a.imports.get(interface) else {
        return Vec::new();
    };
    if let Some(refused) = carries(caller, a, imported) {
        return refused;
    }
    let Some(&exported) = b.exports.get(interface) else {
        return vec![format!(
            "component `{callee}` does not export {interface}, which `{caller}` imports through its link to it"
        )];
    };
    if let Some(refused) = carries(callee, b, exported) {
        return refused;
    }
    let mut problems = Vec::new();
    let exports = &b.resolve.interfaces[exported].functions;
    for (name, function) in &a.resolve.interfaces[imported].functions {
        let wanted = signature(&a.resolve, function);
        match exports.get(name) {
            None => problems.push(format!(
                "component `{callee}` does not export {interface}.{name}, which `{caller}` imports"
            )),
            Some(given) => {
                let given = signature(&b.resolve, given);
                if given != wanted {
                    problems.push(format!(
                        "{interface}.{name}: `{caller}` imports `{wanted}` but `{callee}` exports `{given}`"
                    ));
                }
            }
        }
    }
    problems
}

/// The first resource an interface defines or passes, by name.
fn resource_of(resolve: &Resolve, interface: InterfaceId) -> Option<String> {
    let iface = &resolve.interfaces[interface];
    let defined = iface.types.iter().find_map(|(name, id)| {
        let mut found = None;
        type_text(resolve, &Type::Id(*id), &mut found);
        found.map(|r| if r.is_empty() { name.clone() } else { r })
    });
    defined.or_else(|| {
        iface.functions.values().find_map(|f| {
            let mut found = None;
            let types = f.params.iter().map(|p| &p.ty).chain(f.result.as_ref());
            for ty in types {
                type_text(resolve, ty, &mut found);
            }
            found
        })
    })
}

/// A function's signature in WIT's words, structure only (type names and docs aside), so that
/// two components' copies of one interface compare equal exactly when they match.
fn signature(resolve: &Resolve, function: &wit_parser::Function) -> String {
    let mut ignored = None;
    let params: Vec<String> = function
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, type_text(resolve, &p.ty, &mut ignored)))
        .collect();
    let result = function
        .result
        .as_ref()
        .map(|r| format!(" -> {}", type_text(resolve, r, &mut ignored)))
        .unwrap_or_default();
    format!("func({}){result}", params.join(", "))
}

/// `ty` in WIT's words, structurally; a resource (or handle, future, stream) met on the way is
/// named in `resource`.
fn type_text(resolve: &Resolve, ty: &Type, resource: &mut Option<String>) -> String {
    let id = match ty {
        Type::Bool => return "bool".into(),
        Type::U8 => return "u8".into(),
        Type::U16 => return "u16".into(),
        Type::U32 => return "u32".into(),
        Type::U64 => return "u64".into(),
        Type::S8 => return "s8".into(),
        Type::S16 => return "s16".into(),
        Type::S32 => return "s32".into(),
        Type::S64 => return "s64".into(),
        Type::F32 => return "f32".into(),
        Type::F64 => return "f64".into(),
        Type::Char => return "char".into(),
        Type::String => return "string".into(),
        Type::ErrorContext => {
            resource.get_or_insert_with(|| "error-context".into());
            return "error-context".into();
        }
        Type::Id(id) => *id,
    };
    let def = &resolve.types[id];
    let mut text = |ty: &Type| type_text(resolve, ty, resource);
    match &def.kind {
        TypeDefKind::Type(inner) => text(inner),
        TypeDefKind::Record(r) => {
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, text(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        TypeDefKind::Flags(f) => {
            let names: Vec<&str> = f.flags.iter().map(|f| f.name.as_str()).collect();
            format!("flags {{ {} }}", names.join(", "))
        }
        TypeDefKind::Enum(e) => {
            let names: Vec<&str> = e.cases.iter().map(|c| c.name.as_str()).collect();
            format!("enum {{ {} }}", names.join(", "))
        }
        TypeDefKind::Variant(v) => {
            let cases: Vec<String> = v
                .cases
                .iter()
                .map(|c| match &c.ty {
                    Some(ty) => format!("{}({})", c.name, text(ty)),
                    None => c.name.clone(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        TypeDefKind::Tuple(t) => {
            let types: Vec<String> = t.types.iter().map(&mut text).collect();
            format!("tuple<{}>", types.join(", "))
        }
        TypeDefKind::Option(t) => format!("option<{}>", text(t)),
        TypeDefKind::Result(r) => {
            let ok = r.ok.as_ref().map_or("_".to_string(), &mut text);
            let err = r.err.as_ref().map_or("_".to_string(), &mut text);
            format!("result<{ok}, {err}>")
        }
        TypeDefKind::List(t) => format!("list<{}>", text(t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", text(k), text(v)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", text(t)),
        TypeDefKind::Resource => {
            let name = def.name.clone().unwrap_or_default();
            resource.get_or_insert_with(|| name.clone());
            format!("resource {name}")
        }
        TypeDefKind::Handle(Handle::Own(r) | Handle::Borrow(r)) => {
            let name = resolve.types[*r].name.clone().unwrap_or_default();
            resource.get_or_insert_with(|| name.clone());
            format!("handle {name}")
        }
        TypeDefKind::Future(_) | TypeDefKind::Stream(_) | TypeDefKind::Unknown => {
            let name = format!("{:?}", def.kind);
            resource.get_or_insert_with(|| name.clone());
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_components::Guest;

    const LINKED: &str = "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: hello2
spec:
  components:
    - name: http-component
      type: component
      properties:
        image: file://./caller.wasm
      traits:
        - type: link
          properties:
            target:
              name: pong-component
            namespace: example
            package: pong
            interfaces: [pingpong]
    - name: pong-component
      type: component
      properties:
        image: file://./pong.wasm
";

    fn problems(callee: Guest) -> Vec<String> {
        let manifest = scheduler::parse_manifest(LINKED.as_bytes())
            .unwrap()
            .manifest;
        let code = BTreeMap::from([
            (
                "http-component".to_string(),
                Guest::PongCaller.build().unwrap(),
            ),
            ("pong-component".to_string(), callee.build().unwrap()),
        ]);
        link_problems(&manifest, &code)
            .into_iter()
            .map(|p| {
                assert_eq!((p.caller.as_str(), p.link), ("http-component", 0));
                p.message
            })
            .collect()
    }

    #[test]
    fn matching_signatures_pass() {
        assert_eq!(problems(Guest::Pong), Vec::<String>::new());
    }

    #[test]
    fn a_mismatch_names_both_components_the_interface_and_the_function() {
        assert_eq!(
            problems(Guest::PongU32),
            ["example:pong/pingpong.ping: `http-component` imports `func() -> string` but `pong-component` exports `func() -> u32`"]
        );
    }

    #[test]
    fn a_missing_export_is_named() {
        assert_eq!(
            problems(Guest::Calc),
            ["component `pong-component` does not export example:pong/pingpong, which `http-component` imports through its link to it"]
        );
    }

    #[test]
    fn an_interface_with_resources_is_refused() {
        let world = World::decode(&Guest::Counter.build().unwrap()).unwrap();
        let store = world.imports["wasi:keyvalue/store"];
        assert_eq!(
            resource_of(&world.resolve, store).as_deref(),
            Some("bucket")
        );
        let err = check_interface("a", &world, "b", &world, "wasi:keyvalue/store");
        assert!(
            err.iter()
                .any(|e| e.contains("carries the resource `bucket`")),
            "{err:?}"
        );
    }
}
