//! JSON Schema → GBNF: a grammar whose every complete output is JSON that validates against
//! the schema, for [`Sampler::json_schema`](crate::Sampler::json_schema) and tool calls.
//!
//! Written for this crate (llama.cpp's converter lives in its C++ `common/` library, outside
//! the C API). What it covers, and what it rejects with [`Error::UnsupportedSchema`]:
//!
//! | schema | grammar |
//! |---|---|
//! | `true`, `{}` | any JSON value |
//! | `type` (one or a list), `nullable` | that type (or alternatives) |
//! | `enum`, `const` | exactly those JSON values |
//! | `properties`, `required` | the required properties first, then any subset of the optional ones, each group in declaration order (serde_json's, i.e. sorted, unless its `preserve_order` feature is on) |
//! | `additionalProperties` | absent or `false`: no other keys; `true` or a schema: further keys, never one of the declared names |
//! | `items`, `prefixItems`, `minItems`, `maxItems` | arrays of those items and length |
//! | `minLength`, `maxLength` | string length in characters (up to 1000) |
//! | `format`: `date`, `time`, `date-time`, `uuid` | those shapes (dates are not checked against the calendar: `02-31` passes) |
//! | `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` on integers | exact integer ranges (of up to 18 digits) |
//! | `minimum`, `maximum` on numbers | only whole, non-negative bounds |
//! | `anyOf`, `oneOf` | alternatives (`oneOf` alternatives must not overlap: the grammar cannot exclude a value matching two) |
//! | `allOf` with one schema | that schema |
//! | `$ref` to `#`, `#/$defs/…`, `#/definitions/…` | that schema (recursion allowed) |
//!
//! Grammars constrain code points, as all llama.cpp grammars do: a model that emits byte
//! tokens forming invalid UTF-8 (trained models practically never do; a random-weight model
//! with a byte vocabulary does) can break a string's length or validity. Ban such tokens
//! with [`Sampler::logit_bias`](crate::Sampler::logit_bias) when that matters.
//!
//! Rejected: `pattern`, `patternProperties`, `propertyNames`, `minProperties`,
//! `maxProperties`, `dependentRequired`, `dependentSchemas`, `dependencies`, `if`/`then`/`else`,
//! `not`, `allOf` with several schemas, `contains`, `uniqueItems: true`, `multipleOf`, other
//! formats, remote references, and `false` schemas where a value is required. Annotations
//! (`title`, `description`, `default`, `examples`, `$schema`, `$id`, `$comment`, …) are
//! ignored.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use crate::error::{Error, Result};

/// The GBNF grammar (start rule `root`) for JSON that validates against `schema`.
///
/// ```
/// let schema = serde_json::json!({
///     "type": "object",
///     "properties": {"answer": {"enum": ["yes", "no"]}},
///     "required": ["answer"],
/// });
/// let gbnf = llama_prebuilt::json_schema_to_gbnf(&schema)?;
/// assert!(gbnf.starts_with("root ::= "));
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
///
/// # Failure
/// [`Error::UnsupportedSchema`] naming the schema location and the feature the converter
/// cannot express (see the module table above).
pub fn json_schema_to_gbnf(schema: &Value) -> Result<String> {
    let mut converter = Converter::new(schema, "");
    converter.names.insert("root".into(), usize::MAX);
    let top = converter.visit(schema, "top", "#")?;
    Ok(format!("root ::= {top}\n{}", converter.finish()))
}

/// Builds the rules of one grammar; several schemas (e.g. one per tool) can share it.
pub(crate) struct Converter<'s> {
    root: &'s Value,
    /// Rule definitions by name, in the order they were defined.
    rules: Vec<(String, String)>,
    names: HashMap<String, usize>,
    /// `$ref` target → rule name.
    refs: HashMap<String, String>,
    depth: usize,
    /// Prepended to every rule name, so several converters can share one grammar.
    prefix: String,
}

const MAX_DEPTH: usize = 64;
const MAX_REPEAT: u64 = 1000;
/// Longest declared property name the key-exclusion rules of `additionalProperties` take (one
/// rule per character).
const MAX_KEY_CHARS: usize = 256;

const SPACE: &str = r#"space ::= | " " | "\n" [ \t]{0,20}"#;
const PRIMITIVES: &[(&str, &str)] = &[
    ("boolean", r#"boolean ::= ("true" | "false") space"#),
    ("null", r#"null ::= "null" space"#),
    (
        "char",
        r#"char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" unicode-escape)"#,
    ),
    // \uXXXX outside the surrogates, or a high + low surrogate pair (a lone surrogate is not
    // valid JSON for most parsers).
    (
        "unicode-escape",
        r#"unicode-escape ::= ([0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}) | [dD] [89abAB] [0-9a-fA-F]{2} "\\u" [dD] [c-fC-F] [0-9a-fA-F]{2}"#,
    ),
    ("string", r#"string ::= "\"" char* "\"" space"#),
    (
        "integral-part",
        r#"integral-part ::= [0] | [1-9] [0-9]{0,15}"#,
    ),
    ("integer", r#"integer ::= "-"? integral-part space"#),
    (
        "number",
        r#"number ::= "-"? integral-part ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})? space"#,
    ),
    (
        "value",
        r#"value ::= object | array | string | number | boolean | null"#,
    ),
    (
        "object",
        r#"object ::= "{" space (string ":" space value ("," space string ":" space value)*)? "}" space"#,
    ),
    (
        "array",
        r#"array ::= "[" space (value ("," space value)*)? "]" space"#,
    ),
    ("digit", r#"digit ::= [0-9]"#),
    (
        "date",
        r#"date ::= [0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [1-2] [0-9] | "3" [0-1])"#,
    ),
    (
        "time",
        r#"time ::= ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])"#,
    ),
    ("uuid-hex", r#"uuid-hex ::= [0-9a-fA-F]"#),
    ("key-char", r#"key-char ::= [^"\\\x7F\x00-\x1F]"#),
];

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "$defs",
    "definitions",
    "strict",
];

const UNSUPPORTED: &[&str] = &[
    "pattern",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "if",
    "then",
    "else",
    "not",
    "contains",
    "minContains",
    "maxContains",
    "multipleOf",
    "unevaluatedProperties",
    "unevaluatedItems",
    "$dynamicRef",
    "$recursiveRef",
];

fn unsupported(path: &str, reason: impl Into<String>) -> Error {
    Error::UnsupportedSchema {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A GBNF string literal for `text`.
pub(crate) fn gbnf_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The rules every converted grammar may use: `space`, `string`, `number`, `value`, ….
pub(crate) fn primitives() -> String {
    let mut out = String::new();
    for (_, def) in PRIMITIVES {
        out.push_str(def);
        out.push('\n');
    }
    out.push_str(SPACE);
    out.push('\n');
    out
}

/// Whether `c` appears unescaped inside a JSON string.
fn plain_json_char(c: char) -> bool {
    !(c == '"' || c == '\\' || (c as u32) < 0x20 || c as u32 == 0x7f)
}

/// A GBNF character-class member for `c` (llama.cpp's parser knows only the escapes
/// `\x \u \U \t \r \n \\ \" \[ \]`).
fn class_char(c: char) -> String {
    match c {
        '\\' | ']' | '[' | '"' => format!("\\{c}"),
        '^' | '-' => format!("\\x{:02X}", c as u32),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02X}", c as u32),
        c => c.to_string(),
    }
}

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if out.is_empty() {
        out.push('r');
    }
    out
}

/// `x{min,max}` with `max = None` for unbounded.
fn repeat(item: &str, min: u64, max: Option<u64>) -> String {
    match (min, max) {
        (0, None) => format!("{item}*"),
        (1, None) => format!("{item}+"),
        (0, Some(1)) => format!("{item}?"),
        (m, Some(n)) if m == n => {
            if m == 1 {
                item.to_string()
            } else {
                format!("{item}{{{m}}}")
            }
        }
        (m, None) => format!("{item}{{{m},}}"),
        (m, Some(n)) => format!("{item}{{{m},{n}}}"),
    }
}

impl<'s> Converter<'s> {
    /// A converter for `root` (the target of `#` references) whose rules all start with
    /// `prefix`.
    pub(crate) fn new(root: &'s Value, prefix: &str) -> Self {
        Converter {
            root,
            rules: Vec::new(),
            names: HashMap::new(),
            refs: HashMap::new(),
            depth: 0,
            prefix: prefix.to_string(),
        }
    }

    /// A fresh rule name based on `hint`.
    fn fresh(&mut self, hint: &str) -> String {
        let base = format!("{}{}", self.prefix, sanitize(hint));
        let mut name = base.clone();
        let mut n = 1;
        while self.names.contains_key(&name)
            || PRIMITIVES.iter().any(|(p, _)| *p == name)
            || name == "space"
        {
            n += 1;
            name = format!("{base}{n}");
        }
        self.names.insert(name.clone(), usize::MAX);
        name
    }

    /// Defines rule `name` (reserved or new) as `body`.
    pub(crate) fn define(&mut self, name: &str, body: &str) {
        let index = self.rules.len();
        self.rules.push((name.to_string(), body.to_string()));
        self.names.insert(name.to_string(), index);
    }

    /// Defines a new rule for `body` and returns its name.
    fn rule(&mut self, hint: &str, body: String) -> String {
        let name = self.fresh(hint);
        self.define(&name, &body);
        name
    }

    /// The grammar text: the defined rules, then the primitives (unused ones are harmless).
    pub(crate) fn finish(self) -> String {
        let mut out = self.finish_rules();
        out.push_str(&primitives());
        out
    }

    /// The defined rules only (see [`primitives`]).
    pub(crate) fn finish_rules(self) -> String {
        let mut out = String::new();
        for (name, body) in &self.rules {
            let _ = writeln!(out, "{name} ::= {body}");
        }
        out
    }

    /// The GBNF expression (usually a rule name) for `schema`.
    pub(crate) fn visit(&mut self, schema: &Value, hint: &str, path: &str) -> Result<String> {
        self.depth += 1;
        let result = if self.depth > MAX_DEPTH {
            Err(unsupported(
                path,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ))
        } else {
            self.visit_inner(schema, hint, path)
        };
        self.depth -= 1;
        result
    }

    fn visit_inner(&mut self, schema: &Value, hint: &str, path: &str) -> Result<String> {
        let obj = match schema {
            Value::Bool(true) => return Ok("value".into()),
            Value::Bool(false) => {
                return Err(unsupported(path, "the schema `false` accepts no value"));
            }
            Value::Object(obj) => obj,
            _ => return Err(unsupported(path, "a schema must be an object or a boolean")),
        };
        for key in obj.keys() {
            if UNSUPPORTED.contains(&key.as_str()) {
                return Err(unsupported(path, format!("`{key}` is not supported")));
            }
        }
        if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
            return Err(unsupported(path, "`uniqueItems: true` is not supported"));
        }
        if let Some(reference) = obj.get("$ref") {
            let reference = reference
                .as_str()
                .ok_or_else(|| unsupported(path, "`$ref` must be a string"))?;
            return self.visit_ref(reference, path);
        }
        if let Some(value) = obj.get("const") {
            return Ok(format!("{} space", gbnf_literal(&json_text(value))));
        }
        if let Some(values) = obj.get("enum") {
            let values = values
                .as_array()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| unsupported(path, "`enum` must be a non-empty array"))?;
            let alternatives: Vec<String> =
                values.iter().map(|v| gbnf_literal(&json_text(v))).collect();
            return Ok(self.rule(hint, format!("({}) space", alternatives.join(" | "))));
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(alternatives) = obj.get(keyword) {
                let alternatives = alternatives
                    .as_array()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        unsupported(path, format!("`{keyword}` must be a non-empty array"))
                    })?;
                let mut parts = Vec::new();
                for (i, alternative) in alternatives.iter().enumerate() {
                    let merged = merge_siblings(obj, alternative, keyword);
                    parts.push(self.visit(
                        &merged,
                        &format!("{hint}-{i}"),
                        &format!("{path}/{keyword}/{i}"),
                    )?);
                }
                return Ok(self.rule(hint, parts.join(" | ")));
            }
        }
        if let Some(all) = obj.get("allOf") {
            match all.as_array().map(Vec::as_slice) {
                Some([one]) => {
                    let merged = merge_siblings(obj, one, "allOf");
                    return self.visit(&merged, hint, &format!("{path}/allOf/0"));
                }
                _ => {
                    return Err(unsupported(
                        path,
                        "`allOf` is only supported with exactly one schema",
                    ));
                }
            }
        }
        let nullable = obj.get("nullable") == Some(&Value::Bool(true));
        let types: Vec<&str> = match obj.get("type") {
            None => {
                if obj.contains_key("properties") || obj.contains_key("additionalProperties") {
                    vec!["object"]
                } else if obj.contains_key("items") || obj.contains_key("prefixItems") {
                    vec!["array"]
                } else if obj.contains_key("minLength")
                    || obj.contains_key("maxLength")
                    || obj.contains_key("format")
                {
                    vec!["string"]
                } else {
                    for key in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
                        if obj.contains_key(key) {
                            return Err(unsupported(
                                path,
                                format!("`{key}` without `type` (say integer or number)"),
                            ));
                        }
                    }
                    // No type constraint: any value (null included).
                    return Ok("value".into());
                }
            }
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|t| {
                    t.as_str()
                        .ok_or_else(|| unsupported(path, "`type` entries must be strings"))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(unsupported(path, "`type` must be a string or an array")),
        };
        let mut parts = Vec::new();
        for t in &types {
            parts.push(self.visit_type(obj, t, hint, path)?);
        }
        if nullable && !types.contains(&"null") {
            parts.push("null".into());
        }
        match parts.len() {
            0 => Err(unsupported(path, "`type` is an empty list")),
            1 => Ok(parts.remove(0)),
            _ => Ok(self.rule(hint, parts.join(" | "))),
        }
    }

    fn visit_ref(&mut self, reference: &str, path: &str) -> Result<String> {
        if let Some(name) = self.refs.get(reference) {
            return Ok(name.clone());
        }
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| unsupported(path, format!("remote reference `{reference}`")))?;
        let target = self.root.pointer(pointer).ok_or_else(|| {
            unsupported(path, format!("`$ref` target `{reference}` does not exist"))
        })?;
        let hint = pointer
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("root-ref");
        let name = self.fresh(&format!("ref-{hint}"));
        self.refs.insert(reference.to_string(), name.clone());
        let body = self.visit(target, &format!("{name}-body"), reference)?;
        self.define(&name, &body);
        Ok(name)
    }

    fn visit_type(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        t: &str,
        hint: &str,
        path: &str,
    ) -> Result<String> {
        match t {
            "null" => Ok("null".into()),
            "boolean" => Ok("boolean".into()),
            "string" => self.string(obj, hint, path),
            "integer" => self.integer(obj, hint, path),
            "number" => self.number(obj, hint, path),
            "object" => self.object(obj, hint, path),
            "array" => self.array(obj, hint, path),
            other => Err(unsupported(path, format!("unknown type `{other}`"))),
        }
    }

    fn string(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        hint: &str,
        path: &str,
    ) -> Result<String> {
        if let Some(format) = obj.get("format") {
            let format = format.as_str().unwrap_or_default();
            let body = match format {
                "date" => r#""\"" date "\"" space"#.to_string(),
                "time" => r#""\"" time "\"" space"#.to_string(),
                "date-time" => r#""\"" date "T" time "\"" space"#.to_string(),
                "uuid" => r#""\"" uuid-hex{8} "-" uuid-hex{4} "-" uuid-hex{4} "-" uuid-hex{4} "-" uuid-hex{12} "\"" space"#.to_string(),
                other => {
                    return Err(unsupported(path, format!("string format `{other}` is not supported")));
                }
            };
            if obj.contains_key("minLength") || obj.contains_key("maxLength") {
                return Err(unsupported(
                    path,
                    "`minLength`/`maxLength` together with `format`",
                ));
            }
            return Ok(self.rule(hint, body));
        }
        let min = uint(obj, "minLength", path)?.unwrap_or(0);
        let max = uint(obj, "maxLength", path)?;
        if min == 0 && max.is_none() {
            return Ok("string".into());
        }
        if let Some(max) = max {
            if max < min {
                return Err(unsupported(
                    path,
                    "`maxLength` is below `minLength`: no string fits",
                ));
            }
            if max > MAX_REPEAT {
                return Err(unsupported(path, format!("`maxLength` above {MAX_REPEAT}")));
            }
        }
        if min > MAX_REPEAT {
            return Err(unsupported(path, format!("`minLength` above {MAX_REPEAT}")));
        }
        Ok(self.rule(
            hint,
            format!(r#""\"" {} "\"" space"#, repeat("char", min, max)),
        ))
    }

    fn integer(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        hint: &str,
        path: &str,
    ) -> Result<String> {
        let (lo, hi) = int_bounds(obj, path)?;
        if lo.is_none() && hi.is_none() {
            return Ok("integer".into());
        }
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo > hi
        {
            return Err(unsupported(path, "the integer range is empty"));
        }
        let expr = int_range(lo, hi);
        Ok(self.rule(hint, format!("({expr}) space")))
    }

    fn number(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        hint: &str,
        path: &str,
    ) -> Result<String> {
        for key in ["exclusiveMinimum", "exclusiveMaximum"] {
            if obj.contains_key(key) {
                return Err(unsupported(
                    path,
                    format!("`{key}` on a number (only on integers)"),
                ));
            }
        }
        let lo = obj.get("minimum");
        let hi = obj.get("maximum");
        if lo.is_none() && hi.is_none() {
            return Ok("number".into());
        }
        let whole = |v: Option<&Value>, key: &str| -> Result<Option<i64>> {
            match v {
                None => Ok(None),
                Some(v) => {
                    let f = v
                        .as_f64()
                        .ok_or_else(|| unsupported(path, format!("`{key}` must be a number")))?;
                    if f < 0.0 || f.fract() != 0.0 || f > 1e17 {
                        Err(unsupported(
                            path,
                            format!(
                                "`{key}` {v} on a number (only whole, non-negative bounds; use an integer type)"
                            ),
                        ))
                    } else {
                        Ok(Some(f as i64))
                    }
                }
            }
        };
        let lo = whole(lo, "minimum")?.unwrap_or(0);
        let hi = whole(hi, "maximum")?;
        let fraction = r#"("." [0-9]{1,16})?"#;
        let body = match hi {
            None => format!("({}) {fraction} space", int_range(Some(lo), None)),
            Some(hi) if hi < lo => return Err(unsupported(path, "the number range is empty")),
            Some(hi) if hi == lo => format!(r#""{hi}" ("." "0"{{1,16}})? space"#),
            Some(hi) => format!(
                r#"(({}) {fraction} | "{hi}" ("." "0"{{1,16}})?) space"#,
                int_range(Some(lo), Some(hi - 1))
            ),
        };
        Ok(self.rule(hint, body))
    }

    fn object(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        hint: &str,
        path: &str,
    ) -> Result<String> {
        let empty = serde_json::Map::new();
        let properties = match obj.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => return Err(unsupported(path, "`properties` must be an object")),
        };
        let required: Vec<&str> = match obj.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| unsupported(path, "`required` entries must be strings"))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(unsupported(path, "`required` must be an array")),
        };
        for name in &required {
            if !properties.contains_key(*name) {
                let additional = obj.get("additionalProperties");
                if additional.is_none() || additional == Some(&Value::Bool(false)) {
                    return Err(unsupported(
                        path,
                        format!("required property `{name}` is not declared in `properties`"),
                    ));
                }
                return Err(unsupported(
                    path,
                    format!("required property `{name}` without a schema in `properties`"),
                ));
            }
        }
        let additional = match obj.get("additionalProperties") {
            None | Some(Value::Bool(false)) => None,
            Some(schema) => Some(schema),
        };
        if properties.is_empty()
            && additional.is_none()
            && !obj.contains_key("additionalProperties")
        {
            // `{"type": "object"}`: any object.
            return Ok("object".into());
        }
        let mut kvs_required = Vec::new();
        let mut kvs_optional = Vec::new();
        for (name, schema) in properties {
            let value = self.visit(
                schema,
                &format!("{hint}-{name}"),
                &format!("{path}/properties/{name}"),
            )?;
            let kv = self.rule(
                &format!("{hint}-{name}-kv"),
                format!(
                    "{} space \":\" space {value}",
                    gbnf_literal(&json_text(&Value::String(name.clone())))
                ),
            );
            if required.contains(&name.as_str()) {
                kvs_required.push(kv);
            } else {
                kvs_optional.push(kv);
            }
        }
        let additional_kv = match additional {
            None => None,
            Some(schema) => {
                let value = self.visit(
                    schema,
                    &format!("{hint}-additional-value"),
                    &format!("{path}/additionalProperties"),
                )?;
                let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                if let Some(long) = names.iter().find(|n| n.chars().count() > MAX_KEY_CHARS) {
                    return Err(unsupported(
                        path,
                        format!(
                            "`additionalProperties` next to a property name longer than \
                             {MAX_KEY_CHARS} characters ({}…)",
                            long.chars().take(16).collect::<String>()
                        ),
                    ));
                }
                let key = self.key_excluding(&format!("{hint}-additional-key"), &names);
                Some(self.rule(
                    &format!("{hint}-additional-kv"),
                    format!("{key} \":\" space {value}"),
                ))
            }
        };
        // Optional properties: any subset, in order. rest_i ::= kv_i ("," space rest_{i+1})? | rest_{i+1}
        let mut rest: Option<String> = None;
        for (i, kv) in kvs_optional.iter().enumerate().rev() {
            let body = match &rest {
                None => kv.clone(),
                Some(next) => format!("{kv} (\",\" space {next})? | {next}"),
            };
            rest = Some(self.rule(&format!("{hint}-rest-{i}"), body));
        }
        let more = additional_kv
            .as_ref()
            .map(|kv| format!("(\",\" space {kv})*"))
            .unwrap_or_default();
        let inner = if !kvs_required.is_empty() {
            let mut s = kvs_required.join(" \",\" space ");
            if let Some(rest) = &rest {
                let _ = write!(s, " (\",\" space {rest})?");
            }
            if !more.is_empty() {
                let _ = write!(s, " {more}");
            }
            s
        } else {
            let mut alternatives = Vec::new();
            if let Some(rest) = &rest {
                alternatives.push(format!("{rest} {more}"));
            }
            if let Some(kv) = &additional_kv {
                alternatives.push(format!("{kv} {more}"));
            }
            if alternatives.is_empty() {
                String::new()
            } else {
                format!("({})?", alternatives.join(" | "))
            }
        };
        Ok(self.rule(hint, format!("\"{{\" space {inner} \"}}\" space")))
    }

    /// A JSON string (with trailing space) that is none of `names`.
    fn key_excluding(&mut self, hint: &str, names: &[&str]) -> String {
        if names.is_empty() {
            return "string".into();
        }
        // A trie over the characters of the excluded names.
        #[derive(Default)]
        struct Node {
            children: BTreeMap<char, Node>,
            terminal: bool,
        }
        let mut trie = Node::default();
        for name in names {
            let mut node = &mut trie;
            for c in name.chars() {
                node = node.children.entry(c).or_default();
            }
            node.terminal = true;
        }
        // At a trie node: leave the trie with a character that continues no excluded name
        // (then any characters), follow a child, or end the string where no name ends. Keys
        // use no escapes, so no escape sequence can spell an excluded name.
        fn build(conv: &mut Converter<'_>, node: &Node, hint: &str) -> String {
            let plain: Vec<(&char, &Node)> = node
                .children
                .iter()
                .filter(|(c, _)| plain_json_char(**c))
                .collect();
            let excluded: String = plain.iter().map(|(c, _)| class_char(**c)).collect();
            let mut alternatives = vec![format!(
                "[^\"\\\\\\x7F\\x00-\\x1F{excluded}] key-char* \"\\\"\""
            )];
            for (c, child) in plain {
                let sub = build(conv, child, hint);
                alternatives.push(format!("{} {sub}", gbnf_literal(&c.to_string())));
            }
            if !node.terminal {
                alternatives.push("\"\\\"\"".to_string());
            }
            conv.rule(hint, alternatives.join(" | "))
        }
        let body = build(self, &trie, &format!("{hint}-c"));
        self.rule(hint, format!("\"\\\"\" {body} space"))
    }

    fn array(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        hint: &str,
        path: &str,
    ) -> Result<String> {
        let min = uint(obj, "minItems", path)?.unwrap_or(0);
        let max = uint(obj, "maxItems", path)?;
        if let Some(max) = max
            && max < min
        {
            return Err(unsupported(
                path,
                "`maxItems` is below `minItems`: no array fits",
            ));
        }
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(unsupported(
                path,
                format!("`minItems`/`maxItems` above {MAX_REPEAT}"),
            ));
        }
        let (prefix, items): (Vec<&Value>, Option<&Value>) =
            match (obj.get("prefixItems"), obj.get("items")) {
                (Some(Value::Array(prefix)), items) => (prefix.iter().collect(), items),
                (Some(_), _) => return Err(unsupported(path, "`prefixItems` must be an array")),
                (None, Some(Value::Array(tuple))) => {
                    (tuple.iter().collect(), obj.get("additionalItems"))
                }
                (None, items) => (Vec::new(), items),
            };
        if prefix.is_empty() {
            let item = match items {
                None => "value".to_string(),
                Some(schema) => {
                    self.visit(schema, &format!("{hint}-item"), &format!("{path}/items"))?
                }
            };
            let body = match (min, max) {
                (_, Some(0)) => "\"[\" space \"]\" space".to_string(),
                (0, max) => format!(
                    "\"[\" space ({item} {})? \"]\" space",
                    repeat(&format!("(\",\" space {item})"), 0, max.map(|m| m - 1))
                ),
                (min, max) => format!(
                    "\"[\" space {item} {} \"]\" space",
                    repeat(
                        &format!("(\",\" space {item})"),
                        min - 1,
                        max.map(|m| m - 1)
                    )
                ),
            };
            return Ok(self.rule(hint, body));
        }
        // Tuples: the prefix items in order, then (if allowed) more items.
        let mut parts = Vec::new();
        for (i, schema) in prefix.iter().enumerate() {
            parts.push(self.visit(
                schema,
                &format!("{hint}-{i}"),
                &format!("{path}/prefixItems/{i}"),
            )?);
        }
        let n = parts.len() as u64;
        let extra = match items {
            Some(Value::Bool(false)) => None,
            None => Some("value".to_string()),
            Some(schema) => {
                Some(self.visit(schema, &format!("{hint}-extra"), &format!("{path}/items"))?)
            }
        };
        if min > n && extra.is_none() {
            return Err(unsupported(path, "`minItems` exceeds the tuple's length"));
        }
        let required_len = n.max(min);
        // The tuple may stop after any prefix position >= min.
        let mut seq = String::new();
        let mut closing = 0;
        for (i, part) in parts.iter().enumerate() {
            let i = i as u64;
            let comma = if i == 0 { "" } else { "\",\" space " };
            if i < min.min(n) {
                let _ = write!(seq, "{comma}{part} ");
            } else {
                let _ = write!(seq, "({comma}{part} ");
                closing += 1;
            }
        }
        if let Some(extra) = &extra {
            let max_extra = max.map(|m| m.saturating_sub(n));
            let min_extra = required_len - n;
            if max_extra != Some(0) {
                let _ = write!(
                    seq,
                    "{} ",
                    repeat(&format!("(\",\" space {extra})"), min_extra, max_extra)
                );
            }
        }
        for _ in 0..closing {
            seq.push_str(")? ");
        }
        if let Some(max) = max
            && max < n
        {
            return Err(unsupported(path, "`maxItems` below the tuple's length"));
        }
        Ok(self.rule(hint, format!("\"[\" space {seq}\"]\" space")))
    }
}

/// The JSON text of a value (compact, as a model would write it).
fn json_text(value: &Value) -> String {
    value.to_string()
}

/// The schema of an `anyOf`/`oneOf`/`allOf` alternative with the sibling keywords of its
/// parent (e.g. a `type` next to `anyOf`) merged in.
fn merge_siblings(
    parent: &serde_json::Map<String, Value>,
    alternative: &Value,
    keyword: &str,
) -> Value {
    let siblings: serde_json::Map<String, Value> = parent
        .iter()
        .filter(|(k, _)| k.as_str() != keyword && !ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if siblings.is_empty() {
        return alternative.clone();
    }
    match alternative {
        Value::Object(alt) => {
            let mut merged = siblings;
            for (k, v) in alt {
                merged.insert(k.clone(), v.clone());
            }
            Value::Object(merged)
        }
        other => other.clone(),
    }
}

fn uint(obj: &serde_json::Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| unsupported(path, format!("`{key}` must be a non-negative integer"))),
    }
}

/// The integer bounds of an integer schema, inclusive.
fn int_bounds(
    obj: &serde_json::Map<String, Value>,
    path: &str,
) -> Result<(Option<i64>, Option<i64>)> {
    const LIMIT: f64 = 999_999_999_999_999_999.0;
    let number = |key: &str| -> Result<Option<f64>> {
        match obj.get(key) {
            None | Some(Value::Bool(_)) => Ok(None),
            Some(v) => {
                let f = v
                    .as_f64()
                    .ok_or_else(|| unsupported(path, format!("`{key}` must be a number")))?;
                if f.abs() > LIMIT {
                    return Err(unsupported(path, format!("`{key}` beyond 18 digits")));
                }
                Ok(Some(f))
            }
        }
    };
    // Draft 4: exclusiveMinimum/Maximum are booleans modifying minimum/maximum.
    let draft4_excl_min = obj.get("exclusiveMinimum") == Some(&Value::Bool(true));
    let draft4_excl_max = obj.get("exclusiveMaximum") == Some(&Value::Bool(true));
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut raise = |candidate: i64| lo = Some(lo.map_or(candidate, |l: i64| l.max(candidate)));
    if let Some(m) = number("minimum")? {
        if draft4_excl_min {
            raise(m.floor() as i64 + 1);
        } else {
            raise(m.ceil() as i64);
        }
    }
    if let Some(m) = number("exclusiveMinimum")? {
        raise(m.floor() as i64 + 1);
    }
    let mut lower = |candidate: i64| hi = Some(hi.map_or(candidate, |h: i64| h.min(candidate)));
    if let Some(m) = number("maximum")? {
        if draft4_excl_max {
            lower(m.ceil() as i64 - 1);
        } else {
            lower(m.floor() as i64);
        }
    }
    if let Some(m) = number("exclusiveMaximum")? {
        lower(m.ceil() as i64 - 1);
    }
    Ok((lo, hi))
}

/// A GBNF expression for the decimal integers in `lo..=hi` (either side open).
pub(crate) fn int_range(lo: Option<i64>, hi: Option<i64>) -> String {
    const MAX: u64 = 999_999_999_999_999_999;
    let mut alternatives = Vec::new();
    // Negative part: -(abs range).
    let neg_hi = hi.map_or(-1, |h| h.min(-1));
    if lo.is_none_or(|l| l <= neg_hi) {
        let abs_lo = neg_hi.unsigned_abs();
        let abs_hi = lo.map_or(MAX, |l| l.unsigned_abs().min(MAX));
        for a in uint_range(abs_lo, abs_hi) {
            alternatives.push(format!("\"-\" {a}"));
        }
    }
    // Non-negative part.
    let pos_lo = lo.map_or(0, |l| l.max(0)) as u64;
    if hi.is_none_or(|h| h >= 0) {
        let pos_hi = hi.map_or(MAX, |h| (h as u64).min(MAX));
        if pos_lo <= pos_hi {
            alternatives.extend(uint_range(pos_lo, pos_hi));
        }
    }
    if alternatives.is_empty() {
        // Cannot happen for a non-empty range; keep the grammar valid anyway.
        alternatives.push("\"0\"".into());
    }
    alternatives.join(" | ")
}

/// Alternatives (GBNF sequences) for the decimal numbers in `lo..=hi`, without leading zeros.
fn uint_range(lo: u64, hi: u64) -> Vec<String> {
    let mut out = Vec::new();
    let (lo_s, hi_s) = (lo.to_string(), hi.to_string());
    if lo_s.len() == hi_s.len() {
        out.push(same_length(lo_s.as_bytes(), hi_s.as_bytes()));
        return out;
    }
    out.push(same_length(
        lo_s.as_bytes(),
        "9".repeat(lo_s.len()).as_bytes(),
    ));
    for len in lo_s.len() + 1..hi_s.len() {
        out.push(format!(
            "[1-9] {}",
            repeat("[0-9]", (len - 1) as u64, Some((len - 1) as u64))
        ));
    }
    let mut first = "1".to_string();
    first.push_str(&"0".repeat(hi_s.len() - 1));
    out.push(same_length(first.as_bytes(), hi_s.as_bytes()));
    out
}

/// A GBNF sequence for the digit strings of one length between `a` and `b` (inclusive).
fn same_length(a: &[u8], b: &[u8]) -> String {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n == 0 {
        return String::new();
    }
    let (a0, b0) = (a[0], b[0]);
    let digit = |lo: u8, hi: u8| {
        if lo == hi {
            format!("\"{}\"", lo as char)
        } else {
            format!("[{}-{}]", lo as char, hi as char)
        }
    };
    if n == 1 {
        return digit(a0, b0);
    }
    let rest_a = &a[1..];
    let rest_b = &b[1..];
    if a0 == b0 {
        return format!("\"{}\" {}", a0 as char, same_length(rest_a, rest_b));
    }
    let all_zero = rest_a.iter().all(|&c| c == b'0');
    let all_nine = rest_b.iter().all(|&c| c == b'9');
    let tail = |k: usize| repeat("[0-9]", k as u64, Some(k as u64));
    if all_zero && all_nine {
        return format!("{} {}", digit(a0, b0), tail(n - 1));
    }
    let mut alternatives = Vec::new();
    let mut mid_lo = a0 + 1;
    let mut mid_hi = b0 - 1;
    if all_zero {
        mid_lo = a0;
    } else {
        let nines = vec![b'9'; n - 1];
        alternatives.push(format!(
            "\"{}\" {}",
            a0 as char,
            same_length(rest_a, &nines)
        ));
    }
    if all_nine {
        mid_hi = b0;
    }
    if mid_lo <= mid_hi {
        alternatives.push(format!("{} {}", digit(mid_lo, mid_hi), tail(n - 1)));
    }
    if !all_nine {
        let zeros = vec![b'0'; n - 1];
        alternatives.push(format!(
            "\"{}\" {}",
            b0 as char,
            same_length(&zeros, rest_b)
        ));
    }
    format!("({})", alternatives.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force check of an integer range expression with a tiny GBNF-subset matcher is
    /// overkill; instead check the expression for a few ranges by hand.
    #[test]
    fn integer_ranges() {
        assert_eq!(int_range(Some(0), Some(9)), "[0-9]");
        assert_eq!(int_range(Some(3), Some(7)), "[3-7]");
        assert_eq!(int_range(Some(10), Some(99)), "[1-9] [0-9]");
        assert_eq!(
            int_range(Some(5), Some(42)),
            "[5-9] | ([1-3] [0-9] | \"4\" [0-2])"
        );
        assert_eq!(int_range(Some(-3), Some(2)), "\"-\" [1-3] | [0-2]");
    }

    #[test]
    fn literals_escape() {
        assert_eq!(gbnf_literal("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(gbnf_literal("\u{1}"), r#""\x01""#);
    }
}
