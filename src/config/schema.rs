//! The JSON Schema of `cluster.yaml`, derived from the types the loader
//! deserialises ([`super::raw`]), so that the two cannot drift: unknown keys
//! (`deny_unknown_fields`), required keys and types come from the same
//! definitions. Rules that need more than the shape of the file (duplicate
//! IPs, the election timeout against the heartbeat) are the loader's alone.
//!
//! Booleans and numbers are described in their canonical YAML spelling
//! (`true`, `1`); the loader also reads YAML 1.1 spellings such as `yes` and
//! quoted numbers, which an editor will underline.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::raw::RawConfig;

/// The file name `init` writes the schema to, next to the config, and that
/// the config's `yaml-language-server` line refers to.
pub const FILE_NAME: &str = "cluster.schema.json";

pub use super::choices::CONFIG_VERSIONS;

/// The schema as a JSON value (draft-07, which editors support widely).
pub fn schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<RawConfig>().to_value();
    unwrap_descriptions(&mut schema);
    scalars_as_text(&mut schema);
    schema
}

/// YAML reads `token: 12345` or `name: true` as a number or a boolean, but
/// the loader takes any scalar as the text it is written as: so does the
/// schema, wherever it expects free text (not where it lists the values).
fn scalars_as_text(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if !map.contains_key("enum") {
                let text = json!(["string", "number", "boolean"]);
                let nullable_text = json!(["string", "number", "boolean", "null"]);
                match map.get("type") {
                    Some(t) if *t == json!("string") => {
                        map.insert("type".into(), text);
                    }
                    Some(t) if *t == json!(["string", "null"]) => {
                        map.insert("type".into(), nullable_text);
                    }
                    _ => {}
                }
            }
            map.values_mut().for_each(scalars_as_text);
        }
        Value::Array(items) => items.iter_mut().for_each(scalars_as_text),
        _ => {}
    }
}

/// Doc comments are wrapped at 80 columns; editors wrap descriptions
/// themselves, so a line break inside a paragraph becomes a space.
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    other => unwrap_descriptions(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The schema as `etcdpack schema` prints it and `init` writes it.
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).expect("a JSON value serialises");
    text.push('\n');
    text
}
