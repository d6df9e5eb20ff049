//! JSON Schema → GBNF: llama.cpp accepts the grammars, valid documents pass and invalid ones
//! are rejected token by token, unsupported features are errors naming them, and — the
//! property test — random schemas sampled on the tiny model always give JSON that validates.

mod common;

use common::{small_ctx, tiny_model};
use llama_prebuilt::{
    Error, GenerateOptions, Model, Sampler, StopReason, Token, json_schema_to_gbnf,
};
use llama_prebuilt_test_support::rng::SplitMix64;
use serde_json::{Value, json};

/// Feeds `text` token by token to a fresh JSON-schema sampler: `Ok(true)` if every token is
/// accepted and the grammar may end there (the end-of-generation token is allowed), `Ok(false)`
/// if some token is rejected or the grammar cannot end.
fn grammar_accepts(model: &Model, schema: &Value, text: &str) -> bool {
    let mut sampler = Sampler::chain()
        .json_schema(model, schema)
        .unwrap()
        .greedy();
    for token in model.tokenize(text, false).unwrap() {
        match sampler.accept(token) {
            Ok(()) => {}
            Err(Error::GrammarRejected { .. }) => return false,
            Err(e) => panic!("{e}"),
        }
    }
    let eos = model.token_eos().unwrap();
    sampler.accept(eos).is_ok()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("bad test schema {schema}: {e}"))
}

#[test]
fn documents_are_accepted_exactly_when_they_validate() {
    let model = tiny_model();
    let cases: Vec<(Value, Vec<&str>, Vec<&str>)> = vec![
        (
            json!({"type": "object",
                   "properties": {"name": {"type": "string", "maxLength": 5},
                                  "age": {"type": "integer", "minimum": 0, "maximum": 120},
                                  "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
                   "required": ["name"],
                   "additionalProperties": false}),
            vec![
                r#"{"name": "Bob"}"#,
                r#"{"name":"Bob","age":42}"#,
                r#"{"name": "", "tags": ["a", "b"]}"#,
                r#"{"name": "Al", "age": 120, "tags": []}"#,
                r#"{"name": "Al", "age": 0, "tags": ["b"]}"#,
            ],
            vec![
                r#"{}"#,
                r#"{"name": "Robert"}"#,
                r#"{"name": "Bob", "age": 121}"#,
                r#"{"name": "Bob", "age": -1}"#,
                r#"{"name": "Bob", "age": 1.5}"#,
                r#"{"name": "Bob", "tags": ["a", "b", "a"]}"#,
                r#"{"name": "Bob", "other": 1}"#,
                r#"{"name": 3}"#,
            ],
        ),
        (
            json!({"type": "integer", "exclusiveMinimum": -50, "exclusiveMaximum": 1234}),
            vec!["-49", "0", "7", "99", "100", "999", "1000", "1233"],
            vec!["-50", "1234", "5000", "-0049", "01", "12345"],
        ),
        (
            json!({"type": "number", "minimum": 2, "maximum": 10}),
            vec!["2", "2.5", "9.999", "10", "10.0", "10.000"],
            vec!["1.99", "10.01", "11", "-3"],
        ),
        (
            json!({"anyOf": [{"type": "null"}, {"const": {"k": [1, "x"]}}, {"type": "boolean"}]}),
            vec!["null", r#"{"k":[1,"x"]}"#, "true", "false"],
            vec![r#"{"k": [1, "x"]}"#, "1", r#""null""#],
        ),
        (
            json!({"type": "string", "format": "date"}),
            vec![r#""2024-02-29""#, r#""1999-12-31""#],
            vec![r#""2024-13-01""#, r#""24-01-01""#, r#""2024-00-10""#],
        ),
        (
            json!({"type": "string", "format": "uuid"}),
            vec![r#""123e4567-e89b-12d3-a456-426614174000""#],
            vec![r#""123e4567e89b12d3a456426614174000""#],
        ),
        (
            json!({"type": "string", "format": "date-time"}),
            vec![
                r#""2024-05-06T07:08:09Z""#,
                r#""2024-05-06T23:59:59.123+02:00""#,
            ],
            vec![r#""2024-05-06 07:08:09Z""#, r#""2024-05-06T24:00:00Z""#],
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "integer"}, "ab": {"type": "integer"}},
                   "additionalProperties": {"type": "boolean"}}),
            vec![
                r#"{"a": 1, "ab": 2, "b": true}"#,
                r#"{"abc": false, "x": true}"#,
                r#"{"": true}"#,
                r#"{}"#,
            ],
            vec![r#"{"a": 1, "a": true}"#, r#"{"x": 1}"#, r#"{"ab": true}"#],
        ),
        (
            json!({"$defs": {"node": {"type": "object",
                                      "properties": {"v": {"type": "integer", "minimum": 0, "maximum": 9},
                                                     "next": {"$ref": "#/$defs/node"}},
                                      "required": ["v"], "additionalProperties": false}},
                   "$ref": "#/$defs/node"}),
            vec![
                r#"{"v": 1}"#,
                r#"{"v": 1, "next": {"v": 2}}"#,
                r#"{"v":1,"next":{"v":2,"next":{"v":3}}}"#,
            ],
            // Required properties come first in the grammar's documents.
            vec![
                r#"{"next": {"v": 2}}"#,
                r#"{"v": 10}"#,
                r#"{"next": {"v": 2}, "v": 1}"#,
            ],
        ),
        (
            json!({"type": "array", "prefixItems": [{"type": "string", "maxLength": 2}, {"type": "integer"}],
                   "items": false}),
            vec![r#"[]"#, r#"["ab"]"#, r#"["ab", 3]"#],
            vec![r#"["abc"]"#, r#"[1]"#, r#"["a", 1, 2]"#],
        ),
        (
            json!({"type": ["string", "null"], "minLength": 2, "maxLength": 3}),
            vec![r#""ab""#, r#""abc""#, "null", r#""\n\"""#],
            vec![r#""a""#, r#""abcd""#],
        ),
        (
            json!({"enum": ["ünï", "日本", 1.5, {"a": null}]}),
            vec![r#""ünï""#, r#""日本""#, "1.5", r#"{"a":null}"#],
            vec![r#""uni""#, "1.50", r#"{"a": null}"#],
        ),
    ];
    for (schema, valid, invalid) in cases {
        let validator = validator(&schema);
        for doc in valid {
            let value: Value = serde_json::from_str(doc).unwrap();
            assert!(
                validator.is_valid(&value),
                "test bug: {doc} should validate against {schema}"
            );
            assert!(
                grammar_accepts(model, &schema, doc),
                "grammar rejects valid {doc} for {schema}:\n{}",
                json_schema_to_gbnf(&schema).unwrap()
            );
        }
        for doc in invalid {
            assert!(
                !grammar_accepts(model, &schema, doc),
                "grammar accepts invalid {doc} for {schema}:\n{}",
                json_schema_to_gbnf(&schema).unwrap()
            );
        }
    }
}

#[test]
fn unsupported_features_are_errors_naming_them() {
    let cases = [
        (
            json!({"type": "string", "pattern": "^a+$"}),
            "#",
            "`pattern` is not supported",
        ),
        (
            json!({"not": {"type": "null"}}),
            "#",
            "`not` is not supported",
        ),
        (
            json!({"type": "object", "properties": {"x": {"type": "integer", "multipleOf": 3}}}),
            "#/properties/x",
            "`multipleOf` is not supported",
        ),
        (
            json!({"type": "array", "uniqueItems": true}),
            "#",
            "`uniqueItems: true` is not supported",
        ),
        (
            json!({"type": "string", "format": "email"}),
            "#",
            "string format `email` is not supported",
        ),
        (
            json!({"type": "number", "minimum": -1.5}),
            "#",
            "`minimum` -1.5 on a number",
        ),
        (
            json!({"type": "number", "exclusiveMaximum": 3}),
            "#",
            "`exclusiveMaximum` on a number",
        ),
        (
            json!({"allOf": [{"type": "string"}, {"maxLength": 3}]}),
            "#",
            "`allOf` is only supported with exactly one schema",
        ),
        (
            json!({"$ref": "https://example.com/schema.json"}),
            "#",
            "remote reference",
        ),
        (json!({"$ref": "#/$defs/missing"}), "#", "does not exist"),
        (
            json!({"type": "string", "maxLength": 100000}),
            "#",
            "`maxLength` above 1000",
        ),
        (
            json!({"type": "string", "minLength": 3, "maxLength": 2}),
            "#",
            "no string fits",
        ),
        (
            json!({"type": "integer", "minimum": 5, "maximum": 4}),
            "#",
            "the integer range is empty",
        ),
        (
            json!({"type": "integer", "minimum": 1e30}),
            "#",
            "beyond 18 digits",
        ),
        (json!({"type": "tuple"}), "#", "unknown type `tuple`"),
        (json!(false), "#", "accepts no value"),
        (json!(42), "#", "must be an object or a boolean"),
        (json!({"enum": []}), "#", "`enum` must be a non-empty array"),
        (
            json!({"type": "object", "properties": {}, "required": ["ghost"]}),
            "#",
            "required property `ghost` is not declared",
        ),
        (
            json!({"type": "object", "minProperties": 1}),
            "#",
            "`minProperties` is not supported",
        ),
        (json!({"minimum": 1}), "#", "`minimum` without `type`"),
    ];
    let model = tiny_model();
    for (schema, path, needle) in cases {
        let err = json_schema_to_gbnf(&schema).unwrap_err();
        match &err {
            Error::UnsupportedSchema { path: p, reason } => {
                assert_eq!(p, path, "{schema}: {err}");
                assert!(reason.contains(needle), "{schema}: {reason}");
            }
            other => panic!("{schema}: {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("unsupported JSON schema at {path}: "))
        );
        assert!(matches!(
            Sampler::chain().json_schema(model, &schema),
            Err(Error::UnsupportedSchema { .. })
        ));
    }
    let long = "k".repeat(300);
    let err = json_schema_to_gbnf(&json!({"type": "object",
        "properties": {long: {"type": "null"}}, "additionalProperties": true}))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("next to a property name longer than 256 characters (kkkk"),
        "{err}"
    );
    // A reference cycle that consumes no input converts, but llama.cpp refuses the
    // left-recursive grammar: an error with its message, not an abort.
    let cycle =
        json!({"$defs": {"x": {"$ref": "#"}}, "anyOf": [{"$ref": "#/$defs/x"}, {"type": "null"}]});
    let err = Sampler::chain().json_schema(model, &cycle).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidGrammar { message: Some(m), .. } if m.contains("left recursion")),
        "{err:?}"
    );
    // Nesting deeper than the converter allows is an error, not a stack overflow.
    let mut deep = json!({"type": "integer"});
    for _ in 0..200 {
        deep = json!({"type": "array", "items": deep});
    }
    let err = json_schema_to_gbnf(&deep).unwrap_err();
    assert!(
        err.to_string().contains("nesting deeper than 64 levels"),
        "{err}"
    );
}

// ---- the property test ----------------------------------------------------------------------

struct Gen(SplitMix64);

impl Gen {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.0.below(items.len())]
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.0.below((hi - lo + 1) as usize) as i64
    }

    fn scalar(&mut self) -> Value {
        match self.0.below(5) {
            0 => json!(null),
            1 => json!(self.0.chance(2)),
            2 => json!(self.int(-1000, 1000)),
            3 => json!(self.int(-100, 100) as f64 / 4.0),
            _ => json!(
                self.pick(&["", "a", "x y", "q\"uote", "back\\slash", "line\nbreak"])
                    .to_string()
            ),
        }
    }

    /// A random schema whose every valid document is bounded in size (so a random model
    /// always reaches the end).
    fn schema(&mut self, depth: u32) -> Value {
        let leaf = depth >= 3;
        match self.0.below(if leaf { 7 } else { 11 }) {
            0 => {
                let max = self.int(0, 8);
                let min = self.int(0, max.min(3));
                json!({"type": "string", "minLength": min, "maxLength": max})
            }
            1 => {
                json!({"type": "string", "format": self.pick(&["date", "time", "date-time", "uuid"])})
            }
            2 => {
                let mut s = json!({"type": "integer"});
                let lo = self.int(-5000, 5000);
                match self.0.below(4) {
                    0 => s["minimum"] = json!(lo),
                    1 => s["exclusiveMaximum"] = json!(lo),
                    2 => {
                        s["minimum"] = json!(lo);
                        s["maximum"] = json!(lo + self.int(0, 3000));
                    }
                    _ => {}
                }
                s
            }
            3 => {
                let mut s = json!({"type": "number"});
                if self.0.chance(2) {
                    let lo = self.int(0, 50);
                    s["minimum"] = json!(lo);
                    if self.0.chance(2) {
                        s["maximum"] = json!(lo + self.int(0, 100));
                    }
                }
                s
            }
            4 => json!({"type": self.pick(&["boolean", "null"])}),
            5 => json!({"const": self.scalar()}),
            6 => {
                let n = self.int(1, 4);
                let mut values: Vec<Value> = Vec::new();
                for _ in 0..n {
                    let v = self.scalar();
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
                json!({"enum": values})
            }
            7 | 8 => {
                let names = [
                    "id", "name", "a b", "x", "value", "q\"k", "list", "tab\tbed",
                ];
                let n = self.int(0, 4);
                let mut properties = serde_json::Map::new();
                let mut required = Vec::new();
                for _ in 0..n {
                    let name = self.pick(&names).to_string();
                    properties.insert(name.clone(), self.schema(depth + 1));
                    if self.0.chance(2) && !required.contains(&name) {
                        required.push(name);
                    }
                }
                json!({"type": "object", "properties": properties, "required": required,
                       "additionalProperties": false})
            }
            9 => {
                let min = self.int(0, 2);
                let max = min + self.int(0, 3);
                json!({"type": "array", "items": self.schema(depth + 1), "minItems": min, "maxItems": max})
            }
            _ => {
                // Alternatives of different kinds, so `oneOf` stays exact.
                let a = json!({"type": "integer", "minimum": 0, "maximum": self.int(0, 99)});
                let b = json!({"type": "string", "maxLength": self.int(0, 4)});
                let c = json!({"type": "null"});
                let keyword = self.pick(&["anyOf", "oneOf"]);
                json!({ *keyword: [a, b, c] })
            }
        }
    }
}

/// The grammar constrains code points, as llama.cpp's grammars do; the tiny model's
/// vocabulary is raw bytes, and a lone byte above 0x7F is not UTF-8. Those tokens are banned,
/// as they would be for a model whose every token is valid UTF-8 (what trained models emit
/// in practice), so the strings here are ASCII.
fn ban_non_utf8_tokens(model: &Model) -> Vec<(Token, f32)> {
    (0..model.n_vocab() as i32)
        .map(Token)
        .filter(|&t| {
            model
                .token_piece(t, false)
                .map_or(true, |piece| std::str::from_utf8(&piece).is_err())
        })
        .map(|t| (t, f32::NEG_INFINITY))
        .collect()
}

impl Gen {
    /// A random schema with the unbounded shapes too (any value, free strings and objects,
    /// additional properties, tuples, references), for grammar acceptance only.
    fn wide_schema(&mut self, depth: u32) -> Value {
        if depth >= 3 || self.0.chance(3) {
            return self.schema(3);
        }
        match self.0.below(9) {
            0 => json!({}),
            1 => json!({"type": "string"}),
            2 => json!({"type": "object"}),
            3 => json!({"type": "object",
                        "properties": {"a": self.wide_schema(depth + 1), "b c": self.wide_schema(depth + 1)},
                        "required": ["a"],
                        "additionalProperties": if self.0.chance(2) { json!(true) } else { self.wide_schema(depth + 1) }}),
            4 => {
                json!({"type": "array", "prefixItems": [self.wide_schema(depth + 1), self.wide_schema(depth + 1)],
                        "items": if self.0.chance(2) { json!(false) } else { self.wide_schema(depth + 1) },
                        "minItems": self.int(0, 2)})
            }
            // `#` is the document root: definitions live there.
            5 if depth > 0 => json!({"type": "array", "items": {"$ref": "#"}, "maxItems": 2}),
            5 => json!({"$defs": {"x": self.wide_schema(depth + 1)},
                        "anyOf": [{"$ref": "#/$defs/x"}, {"type": "array", "items": {"$ref": "#/$defs/x"}}]}),
            6 => json!({"type": ["integer", "string", "null"], "minimum": self.int(-99, 0)}),
            7 => json!({"allOf": [self.wide_schema(depth + 1)]}),
            _ => json!({"type": "array", "items": self.wide_schema(depth + 1)}),
        }
    }
}

/// Every schema the generators make converts to a grammar llama.cpp accepts (unbounded shapes
/// included, which the sampling test leaves out because a random model may never end them).
#[test]
fn property_random_schemas_give_grammars_llama_cpp_accepts() {
    let model = tiny_model();
    let mut schemas_gen = Gen(SplitMix64::new(0xacce_97ed));
    for _ in 0..300 {
        let schema = if schemas_gen.0.chance(2) {
            schemas_gen.wide_schema(0)
        } else {
            schemas_gen.schema(0)
        };
        let gbnf = json_schema_to_gbnf(&schema).unwrap_or_else(|e| panic!("{schema}: {e}"));
        let start = std::time::Instant::now();
        if let Err(e) = Sampler::chain().json_schema(model, &schema) {
            panic!("llama.cpp rejects the grammar of {schema}: {e}\n{gbnf}");
        }
        let took = start.elapsed();
        if took.as_millis() > 200 {
            eprintln!("{took:?} {} rules: {schema}", gbnf.lines().count());
        }
    }
}

#[test]
fn property_random_schemas_sampled_on_the_tiny_model_always_validate() {
    let model = tiny_model();
    let banned = ban_non_utf8_tokens(model);
    assert!(!banned.is_empty());
    let mut ctx = model.new_context(&small_ctx().n_ctx(1024)).unwrap();
    let prompt = model.tokenize("JSON:", true).unwrap();
    let mut schemas_gen = Gen(SplitMix64::new(0x5eed_1e55));
    let (mut schemas, mut documents) = (0, 0);
    for case in 0..60 {
        let schema = schemas_gen.schema(0);
        let validator = validator(&schema);
        let gbnf = json_schema_to_gbnf(&schema).unwrap();
        schemas += 1;
        for seed in 0..3u32 {
            let mut sampler = Sampler::chain()
                .logit_bias(model, &banned)
                .unwrap()
                .json_schema(model, &schema)
                .unwrap_or_else(|e| {
                    panic!("llama.cpp rejects the grammar of {schema}: {e}\n{gbnf}")
                })
                .temperature(1.5)
                .dist(case * 10 + seed);
            ctx.clear_memory();
            let mut generator = ctx.generate(
                &prompt,
                &mut sampler,
                GenerateOptions::default().max_tokens(900),
            );
            let text = generator
                .collect_text()
                .unwrap_or_else(|e| panic!("{schema}: {e}"));
            assert!(
                matches!(
                    generator.stop_reason(),
                    Some(StopReason::EndOfGeneration(_))
                ),
                "{schema}: no end after {text:?} ({:?})",
                generator.stop_reason()
            );
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("not JSON for {schema}: {text:?} ({e})\n{gbnf}"));
            if let Err(e) = validator.validate(&value) {
                panic!("{text} does not validate against {schema}: {e}\n{gbnf}");
            }
            if seed == 0 && case % 6 == 0 {
                eprintln!("{schema}\n  -> {text}");
            }
            documents += 1;
        }
    }
    eprintln!("{schemas} random schemas, {documents} sampled documents, all valid");
}
