//! The closed sets of values the config chooses from, as the schema lists
//! them: each transform restricts one field of [`super::raw`] to the values
//! the loader accepts.

use schemars::Schema;
use serde_json::{Value, json};

use super::{Algorithm, Keys, MetricsListen};
use crate::model::{Arch, Format};

/// The config format versions the loader reads.
pub const CONFIG_VERSIONS: &[u32] = &[1];

pub(super) fn arches(schema: &mut Schema) {
    one_of(schema, Arch::ALL.iter().map(|a| json!(a.as_str())));
}

pub(super) fn algorithms(schema: &mut Schema) {
    one_of(
        schema,
        [Algorithm::Rsa2048, Algorithm::EcdsaP256].map(|a| json!(a.as_str())),
    );
}

pub(super) fn key_layouts(schema: &mut Schema) {
    one_of(schema, Keys::ALL.iter().map(|k| json!(k.as_str())));
}

pub(super) fn metrics_listens(schema: &mut Schema) {
    one_of(schema, MetricsListen::ALL.iter().map(|l| json!(l.as_str())));
}

pub(super) fn config_versions(schema: &mut Schema) {
    one_of(schema, CONFIG_VERSIONS.iter().map(|v| json!(v)));
}

/// `packages.formats`: a list of known formats.
pub(super) fn formats(schema: &mut Schema) {
    if let Some(items) = schema.get_mut("items") {
        let mut items = Schema::try_from(items.take()).expect("items is a schema");
        one_of(&mut items, Format::ALL.iter().map(|f| json!(f.as_str())));
        schema.insert("items".into(), items.to_value());
    }
    schema.insert("minItems".into(), json!(1));
}

/// Restrict `schema` to `values` (and null, where the schema allows it).
fn one_of(schema: &mut Schema, values: impl IntoIterator<Item = Value>) {
    let mut values: Vec<Value> = values.into_iter().collect();
    let nullable = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        Some(t) => t == "null",
        None => false,
    };
    if nullable {
        values.push(Value::Null);
    }
    schema.insert("enum".into(), Value::Array(values));
}
