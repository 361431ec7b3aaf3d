//! Calling a component's exported function by name (`flotilla call`, wasmCloud's `wash call`):
//! arguments come as JSON and are typed against the export's signature, results go back as
//! JSON. Plain values only: an export that takes or returns a resource, a stream or a future
//! is refused. The call runs on a fresh instance, under the CPU deadline of a request.
//!
//! JSON ↔ component values: booleans, numbers (range-checked), strings (`char`: one
//! character), lists and tuples as arrays, records as objects by field name, options as `null`
//! or the value, results as `{"ok": …}` or `{"err": …}`, enums as the case's name, variants as
//! the case's name or `{"case": payload}`, flags as an array of names.

use serde_json::{json, Map, Value};
use wasmtime::component::{Type, Val};

use crate::engine::{GuestContext, Prepared, WasmEngine};

/// Why a call could not be made or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The function or an argument is wrong (the caller's mistake).
    Bad(String),
    /// The guest trapped or ran past its deadline.
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Bad(why) | CallError::Failed(why) => f.write_str(why),
        }
    }
}

/// `ns:pkg/iface[@version].func` → (`ns:pkg/iface[@version]`, `func`).
pub fn split_function(name: &str) -> Result<(&str, &str), CallError> {
    match name.rsplit_once('.') {
        Some((interface, function)) if interface.contains('/') && !function.is_empty() => {
            Ok((interface, function))
        }
        _ => Err(CallError::Bad(format!(
            "`{name}` is not INTERFACE.FUNCTION (such as wasmcloud:examples/invoke.call)"
        ))),
    }
}

/// Calls `function` (`ns:pkg/iface.func`, the version optional) of `prepared` with `args`.
pub async fn call(
    engine: &WasmEngine,
    prepared: &Prepared,
    context: GuestContext,
    function: &str,
    args: &[Value],
) -> Result<Vec<Value>, CallError> {
    let (interface, name) = split_function(function)?;
    // The export's full name: as given, or the one of that interface with a version.
    let exports: Vec<String> = prepared
        .instance
        .component()
        .component_type()
        .exports(prepared.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    let export = exports
        .iter()
        .find(|n| *n == interface)
        .or_else(|| {
            exports
                .iter()
                .find(|n| n.starts_with(&format!("{interface}@")))
        })
        .ok_or_else(|| {
            CallError::Bad(format!(
                "the component exports no {interface} (it exports {})",
                exports.join(", ")
            ))
        })?;
    let mut store = engine.store(prepared, context);
    let instance = prepared
        .instance
        .instantiate_async(&mut store)
        .await
        .map_err(|e| CallError::Failed(format!("{e:#}")))?;
    let interface_index = instance
        .get_export_index(&mut store, None, export)
        .ok_or_else(|| CallError::Bad(format!("the component exports no {export}")))?;
    let index = instance
        .get_export_index(&mut store, Some(&interface_index), name)
        .ok_or_else(|| CallError::Bad(format!("{export} has no function {name}")))?;
    let func = instance
        .get_func(&mut store, index)
        .ok_or_else(|| CallError::Bad(format!("{export}.{name} is not a function")))?;
    let ty = func.ty(&store);
    let params: Vec<(String, Type)> = ty.params().map(|(n, t)| (n.to_string(), t)).collect();
    let result_types: Vec<Type> = ty.results().collect();
    if args.len() != params.len() {
        let wanted: Vec<String> = params
            .iter()
            .map(|(n, t)| format!("{n}: {}", describe(t)))
            .collect();
        return Err(CallError::Bad(format!(
            "{export}.{name} takes {} argument(s) ({}), {} given",
            params.len(),
            wanted.join(", "),
            args.len()
        )));
    }
    let mut values = Vec::with_capacity(args.len());
    for ((param, ty), arg) in params.iter().zip(args) {
        values.push(to_val(arg, ty).map_err(|why| {
            CallError::Bad(format!("parameter `{param}` ({}): {why}", describe(ty)))
        })?);
    }
    let mut results = vec![Val::Bool(false); result_types.len()];
    func.call_async(&mut store, &values, &mut results)
        .await
        .map_err(|e| {
            CallError::Failed(match e.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => {
                    "the component exceeded its CPU deadline".to_string()
                }
                Some(trap) => format!("the component trapped: {trap}"),
                None => format!("{e:#}"),
            })
        })?;
    results
        .iter()
        .map(from_val)
        .collect::<Result<_, _>>()
        .map_err(CallError::Bad)
}

/// A type as WIT writes it, for messages.
fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", describe(&l.ty())),
        Type::Record(_) => "record".into(),
        Type::Tuple(_) => "tuple".into(),
        Type::Variant(_) => "variant".into(),
        Type::Enum(_) => "enum".into(),
        Type::Option(o) => format!("option<{}>", describe(&o.ty())),
        Type::Result(_) => "result".into(),
        Type::Flags(_) => "flags".into(),
        _ => "a resource, stream or future".into(),
    }
}

fn number<T: TryFrom<i128>>(value: &Value) -> Result<T, String> {
    let n = value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
        .ok_or_else(|| format!("expected a whole number, got {value}"))?;
    T::try_from(n).map_err(|_| format!("{n} is out of range"))
}

/// A JSON value as a component value of type `ty`.
pub fn to_val(value: &Value, ty: &Type) -> Result<Val, String> {
    let expected = |what: &str| format!("expected {what}, got {value}");
    Ok(match ty {
        Type::Bool => Val::Bool(value.as_bool().ok_or_else(|| expected("true or false"))?),
        Type::S8 => Val::S8(number(value)?),
        Type::U8 => Val::U8(number(value)?),
        Type::S16 => Val::S16(number(value)?),
        Type::U16 => Val::U16(number(value)?),
        Type::S32 => Val::S32(number(value)?),
        Type::U32 => Val::U32(number(value)?),
        Type::S64 => Val::S64(number(value)?),
        Type::U64 => Val::U64(number(value)?),
        Type::Float32 => Val::Float32(value.as_f64().ok_or_else(|| expected("a number"))? as f32),
        Type::Float64 => Val::Float64(value.as_f64().ok_or_else(|| expected("a number"))?),
        Type::Char => {
            let s = value
                .as_str()
                .ok_or_else(|| expected("a one-character string"))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(expected("a one-character string")),
            }
        }
        Type::String => Val::String(
            value
                .as_str()
                .ok_or_else(|| expected("a string"))?
                .to_string(),
        ),
        Type::List(l) => {
            let items = value.as_array().ok_or_else(|| expected("an array"))?;
            let item = l.ty();
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| to_val(v, &item).map_err(|e| format!("item {i}: {e}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Record(r) => {
            let object = value.as_object().ok_or_else(|| expected("an object"))?;
            Val::Record(
                r.fields()
                    .map(|f| {
                        let v = object
                            .get(f.name)
                            .ok_or_else(|| format!("field `{}` is missing", f.name))?;
                        Ok((
                            f.name.to_string(),
                            to_val(v, &f.ty).map_err(|e| format!("field `{}`: {e}", f.name))?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        Type::Tuple(t) => {
            let items = value.as_array().ok_or_else(|| expected("an array"))?;
            let types: Vec<Type> = t.types().collect();
            if items.len() != types.len() {
                return Err(expected(&format!("an array of {}", types.len())));
            }
            Val::Tuple(
                items
                    .iter()
                    .zip(&types)
                    .map(|(v, t)| to_val(v, t))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Enum(e) => {
            let name = value.as_str().ok_or_else(|| expected("a case name"))?;
            if !e.names().any(|n| n == name) {
                return Err(format!(
                    "`{name}` is not one of {}",
                    e.names().collect::<Vec<_>>().join(", ")
                ));
            }
            Val::Enum(name.to_string())
        }
        Type::Variant(v) => {
            let (name, payload) = match value {
                Value::String(s) => (s.clone(), None),
                Value::Object(o) if o.len() == 1 => {
                    let (k, v) = o.iter().next().expect("one entry");
                    (k.clone(), Some(v))
                }
                _ => return Err(expected("a case name or {\"case\": payload}")),
            };
            let case = v
                .cases()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("`{name}` is not a case"))?;
            let payload = match (case.ty, payload) {
                (Some(t), Some(p)) => Some(Box::new(to_val(p, &t)?)),
                (None, None) => None,
                (Some(_), None) => return Err(format!("case `{name}` needs a payload")),
                (None, Some(_)) => return Err(format!("case `{name}` has no payload")),
            };
            Val::Variant(name, payload)
        }
        Type::Option(o) => match value {
            Value::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(to_val(v, &o.ty())?))),
        },
        Type::Result(r) => {
            let object = value
                .as_object()
                .filter(|o| o.len() == 1)
                .ok_or_else(|| expected("{\"ok\": …} or {\"err\": …}"))?;
            let (k, v) = object.iter().next().expect("one entry");
            let inner = |t: Option<Type>| -> Result<Option<Box<Val>>, String> {
                match t {
                    Some(t) => Ok(Some(Box::new(to_val(v, &t)?))),
                    None => Ok(None),
                }
            };
            match k.as_str() {
                "ok" => Val::Result(Ok(inner(r.ok())?)),
                "err" => Val::Result(Err(inner(r.err())?)),
                _ => return Err(expected("{\"ok\": …} or {\"err\": …}")),
            }
        }
        Type::Flags(f) => {
            let names = value
                .as_array()
                .ok_or_else(|| expected("an array of flag names"))?;
            let known: Vec<&str> = f.names().collect();
            Val::Flags(
                names
                    .iter()
                    .map(|n| {
                        let n = n.as_str().ok_or_else(|| expected("flag names"))?;
                        if known.contains(&n) {
                            Ok(n.to_string())
                        } else {
                            Err(format!("`{n}` is not a flag"))
                        }
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        _ => return Err("resources, streams and futures cannot be passed".to_string()),
    })
}

/// A component value as JSON.
pub fn from_val(value: &Val) -> Result<Value, String> {
    Ok(match value {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        Val::Float32(n) => json!(n),
        Val::Float64(n) => json!(n),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(from_val).collect::<Result<_, _>>()?)
        }
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), from_val(v)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        Val::Enum(name) => json!(name),
        Val::Variant(name, None) => json!(name),
        Val::Variant(name, Some(v)) => json!({ name: from_val(v)? }),
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => from_val(v)?,
        Val::Result(Ok(v)) => json!({ "ok": v.as_deref().map(from_val).transpose()? }),
        Val::Result(Err(v)) => json!({ "err": v.as_deref().map(from_val).transpose()? }),
        Val::Flags(names) => json!(names),
        _ => return Err("the function answered a resource, stream or future".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_split_at_the_last_dot() {
        assert_eq!(
            split_function("wasmcloud:examples/invoke.call").unwrap(),
            ("wasmcloud:examples/invoke", "call")
        );
        assert_eq!(
            split_function("example:calc/ops@0.1.0.add").unwrap(),
            ("example:calc/ops@0.1.0", "add")
        );
        assert!(split_function("add").is_err());
    }

    #[test]
    fn plain_values_round_trip() {
        for (value, ty) in [
            (json!(true), Type::Bool),
            (json!(-3), Type::S32),
            (json!(7), Type::U64),
            (json!("héllo"), Type::String),
            (json!("x"), Type::Char),
        ] {
            assert_eq!(from_val(&to_val(&value, &ty).unwrap()).unwrap(), value);
        }
        assert!(to_val(&json!(-1), &Type::U32)
            .unwrap_err()
            .contains("out of range"));
        assert!(to_val(&json!("3"), &Type::U32)
            .unwrap_err()
            .contains("whole number"));
        assert!(to_val(&json!("xy"), &Type::Char).is_err());
    }
}
