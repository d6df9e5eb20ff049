//! The C API of one tag, read from its generated bindings, and the differences between two.
//!
//! Why the bindings and not the headers: they are what the crates compile against, bindgen has
//! already resolved the C (macros, typedef chains, the integer type each enum gets, anonymous
//! unions), and they carry the layout the compiler computed for every struct as assertions
//! (`["Size of X"][size_of::<X>() - 72usize]`, `["Offset of field: X::f"][...]`). Parsing them
//! with `syn` gives field offsets and sizes without a C parser of our own. The price is that
//! only what `wrapper.h` includes and the bindgen allowlists keep is compared (the items a user
//! of the sys crate can reach), and `#define`s that are not integers or strings are invisible.
//!
//! bindgen writes enums as an integer type alias plus one constant per enumerator
//! (`pub type llama_load_mode = c_uint; pub const LLAMA_LOAD_MODE_NONE: llama_load_mode = 0;`),
//! so an alias of a primitive integer that constants are declared with is an enum here.

use std::collections::BTreeMap;

use quote::ToTokens;

/// A function's signature: parameter names and types, return type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FnSig {
    pub params: Vec<(String, String)>,
    pub ret: String,
    pub variadic: bool,
}

impl FnSig {
    /// The parts that matter to callers: parameter types, variadic, return type (names don't).
    fn abi(&self) -> (Vec<&str>, bool, &str) {
        (
            self.params.iter().map(|(_, t)| t.as_str()).collect(),
            self.variadic,
            &self.ret,
        )
    }

    /// `fn(a: i32, b: *mut x) -> bool`.
    pub fn render(&self) -> String {
        let mut params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        if self.variadic {
            params.push("...".into());
        }
        let ret = if self.ret.is_empty() {
            String::new()
        } else {
            format!(" -> {}", self.ret)
        };
        format!("fn({}){ret}", params.join(", "))
    }
}

/// One field of a struct or union, with its offset from the layout assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    pub ty: String,
    pub offset: Option<u64>,
}

impl Field {
    /// `u32 @24`.
    pub fn render(&self) -> String {
        match self.offset {
            Some(o) => format!("{} @{o}", self.ty),
            None => self.ty.clone(),
        }
    }
}

/// A struct or union.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    pub union: bool,
    pub size: Option<u64>,
    pub align: Option<u64>,
    pub fields: Vec<Field>,
}

/// An enum: its integer type and enumerators in declaration order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Enum {
    pub repr: String,
    pub values: Vec<(String, String)>,
}

/// Everything the bindings declare that a caller can depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Api {
    pub functions: BTreeMap<String, FnSig>,
    pub records: BTreeMap<String, Record>,
    pub enums: BTreeMap<String, Enum>,
    /// Type aliases that are not enums (typedefs, callback types), name -> target type.
    pub aliases: BTreeMap<String, String>,
    /// Constants that are not enumerators (`#define`s), name -> `type = value`.
    pub constants: BTreeMap<String, String>,
}

/// Integer types bindgen gives enums.
const INTEGERS: &[&str] = &[
    "c_uint", "c_int", "c_ulong", "c_long", "c_uchar", "c_schar", "c_char", "c_ushort", "c_short",
    "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64",
];

/// Parses bindgen output.
pub(crate) fn parse(text: &str) -> Result<Api, String> {
    let file = syn::parse_file(text).map_err(|e| format!("cannot parse the bindings: {e}"))?;
    let mut api = Api::default();
    let mut consts: Vec<(String, String, String)> = Vec::new();
    let mut layout: Vec<(String, u64)> = Vec::new();
    for item in &file.items {
        match item {
            syn::Item::ForeignMod(m) => {
                for f in &m.items {
                    if let syn::ForeignItem::Fn(f) = f {
                        api.functions
                            .insert(f.sig.ident.to_string(), signature(&f.sig));
                    }
                }
            }
            syn::Item::Struct(s) => {
                let fields = match &s.fields {
                    syn::Fields::Named(n) => n.named.iter().collect(),
                    _ => Vec::new(),
                };
                api.records
                    .insert(s.ident.to_string(), record(false, fields));
            }
            syn::Item::Union(u) => {
                api.records.insert(
                    u.ident.to_string(),
                    record(true, u.fields.named.iter().collect()),
                );
            }
            syn::Item::Type(t) => {
                api.aliases.insert(t.ident.to_string(), tidy(&t.ty));
            }
            syn::Item::Const(c) if c.ident == "_" => layout_assertions(&c.expr, &mut layout),
            syn::Item::Const(c) => consts.push((c.ident.to_string(), tidy(&c.ty), tidy(&c.expr))),
            _ => {}
        }
    }
    for (what, n) in layout {
        if let Some(name) = what.strip_prefix("Size of ") {
            if let Some(r) = api.records.get_mut(name) {
                r.size = Some(n);
            }
        } else if let Some(name) = what.strip_prefix("Alignment of ") {
            if let Some(r) = api.records.get_mut(name) {
                r.align = Some(n);
            }
        } else if let Some(path) = what.strip_prefix("Offset of field: ")
            && let Some((name, field)) = path.split_once("::")
            && let Some(r) = api.records.get_mut(name)
            && let Some(f) = r.fields.iter_mut().find(|f| f.name == field)
        {
            f.offset = Some(n);
        }
    }
    for (name, ty, value) in consts {
        let is_enum = api
            .aliases
            .get(&ty)
            .is_some_and(|target| INTEGERS.contains(&target.as_str()));
        if is_enum {
            let e = api.enums.entry(ty.clone()).or_default();
            e.values.push((name, value));
        } else {
            api.constants.insert(name, format!("{ty} = {value}"));
        }
    }
    for (name, e) in api.enums.iter_mut() {
        e.repr = api.aliases.remove(name).unwrap_or_default();
    }
    Ok(api)
}

fn signature(sig: &syn::Signature) -> FnSig {
    let params = sig
        .inputs
        .iter()
        .map(|arg| match arg {
            syn::FnArg::Typed(p) => (tidy(&p.pat), tidy(&p.ty)),
            syn::FnArg::Receiver(r) => ("self".into(), tidy(r)),
        })
        .collect();
    let ret = match &sig.output {
        syn::ReturnType::Default => String::new(),
        syn::ReturnType::Type(_, t) => tidy(t),
    };
    FnSig {
        params,
        ret,
        variadic: sig.variadic.is_some(),
    }
}

fn record(union: bool, fields: Vec<&syn::Field>) -> Record {
    Record {
        union,
        size: None,
        align: None,
        fields: fields
            .into_iter()
            .filter_map(|f| {
                Some(Field {
                    name: f.ident.as_ref()?.to_string(),
                    ty: tidy(&f.ty),
                    offset: None,
                })
            })
            .collect(),
    }
}

/// `["What"][expr - 72usize];` statements of a `const _: () = { ... };` block.
fn layout_assertions(expr: &syn::Expr, out: &mut Vec<(String, u64)>) {
    let syn::Expr::Block(block) = expr else {
        return;
    };
    for stmt in &block.block.stmts {
        let syn::Stmt::Expr(syn::Expr::Index(ix), _) = stmt else {
            continue;
        };
        let syn::Expr::Array(arr) = &*ix.expr else {
            continue;
        };
        let Some(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(what),
            ..
        })) = arr.elems.first()
        else {
            continue;
        };
        let syn::Expr::Binary(b) = &*ix.index else {
            continue;
        };
        if let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(n),
            ..
        }) = &*b.right
            && let Ok(n) = n.base10_parse::<u64>()
        {
            out.push((what.value(), n));
        }
    }
}

/// Tokens as short, readable Rust: `*mut llama_sampler`, `c_char`, `Option<unsafe extern "C" fn(x: i32)>`.
pub(crate) fn tidy(t: &impl ToTokens) -> String {
    let mut s = t.to_token_stream().to_string();
    for (from, to) in [
        (":: core :: ffi :: ", ""),
        (":: std :: os :: raw :: ", ""),
        (":: std :: option :: ", ""),
        (":: core :: option :: ", ""),
        (" :: ", "::"),
        ("* mut ", "*mut "),
        ("* const ", "*const "),
        (" < ", "<"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("( ", "("),
        (" )", ")"),
        (" :", ":"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        ("fn (", "fn("),
        ("- ", "-"),
        (",)", ")"),
        (",>", ">"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// How one struct or union changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordChange {
    pub name: String,
    pub old: Record,
    pub new: Record,
    /// Per field: `(name, before, after)`, `None` where it does not exist.
    pub fields: Vec<(String, Option<Field>, Option<Field>)>,
}

impl RecordChange {
    /// Fields removed or given another type (code naming them may no longer compile or mean
    /// the same).
    pub fn retyped_or_removed(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(_, o, n)| match (o, n) {
                (Some(_), None) => true,
                (Some(o), Some(n)) => o.ty != n.ty,
                _ => false,
            })
            .map(|(name, _, _)| name.as_str())
            .collect()
    }
}

/// How one enum changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EnumChange {
    pub name: String,
    pub old_repr: String,
    pub new_repr: String,
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    /// `(enumerator, old value, new value)`.
    pub moved: Vec<(String, String, String)>,
}

impl EnumChange {
    /// Only enumerators added, same integer type: old code keeps its meaning.
    pub fn is_additive(&self) -> bool {
        self.removed.is_empty() && self.moved.is_empty() && self.old_repr == self.new_repr
    }
}

/// Items added, removed and changed between two [`Api`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub fn_added: Vec<(String, FnSig)>,
    pub fn_removed: Vec<(String, FnSig)>,
    pub fn_changed: Vec<(String, FnSig, FnSig)>,
    pub rec_added: Vec<String>,
    pub rec_removed: Vec<String>,
    pub rec_changed: Vec<RecordChange>,
    pub enum_added: Vec<String>,
    pub enum_removed: Vec<String>,
    pub enum_changed: Vec<EnumChange>,
    pub alias_added: Vec<(String, String)>,
    pub alias_removed: Vec<(String, String)>,
    pub alias_changed: Vec<(String, String, String)>,
    pub const_added: Vec<(String, String)>,
    pub const_removed: Vec<(String, String)>,
    pub const_changed: Vec<(String, String, String)>,
}

/// Splits two maps into added, removed, and changed (by `same`) entries, in name order.
#[allow(clippy::type_complexity)]
fn split<V: Clone>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    same: impl Fn(&V, &V) -> bool,
) -> (Vec<(String, V)>, Vec<(String, V)>, Vec<(String, V, V)>) {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for (k, o) in old {
        match new.get(k) {
            None => removed.push((k.clone(), o.clone())),
            Some(n) if !same(o, n) => changed.push((k.clone(), o.clone(), n.clone())),
            Some(_) => {}
        }
    }
    for (k, n) in new {
        if !old.contains_key(k) {
            added.push((k.clone(), n.clone()));
        }
    }
    (added, removed, changed)
}

/// Compares the API of the old tag with the new one's.
pub(crate) fn diff(old: &Api, new: &Api) -> Diff {
    let (fn_added, fn_removed, fn_changed) =
        split(&old.functions, &new.functions, |a, b| a.abi() == b.abi());
    let (rec_added, rec_removed, rec_changed) = split(&old.records, &new.records, |a, b| a == b);
    let (enum_added, enum_removed, enum_changed) = split(&old.enums, &new.enums, |a, b| {
        let sorted = |e: &Enum| {
            let mut v = e.values.clone();
            v.sort();
            (e.repr.clone(), v)
        };
        sorted(a) == sorted(b)
    });
    let (alias_added, alias_removed, alias_changed) =
        split(&old.aliases, &new.aliases, |a, b| a == b);
    let (const_added, const_removed, const_changed) =
        split(&old.constants, &new.constants, |a, b| a == b);
    let names = |v: Vec<(String, Record)>| v.into_iter().map(|(k, _)| k).collect();
    let enum_names = |v: Vec<(String, Enum)>| v.into_iter().map(|(k, _)| k).collect();
    Diff {
        fn_added,
        fn_removed,
        fn_changed,
        rec_added: names(rec_added),
        rec_removed: names(rec_removed),
        rec_changed: rec_changed
            .into_iter()
            .map(|(name, o, n)| record_change(name, o, n))
            .collect(),
        enum_added: enum_names(enum_added),
        enum_removed: enum_names(enum_removed),
        enum_changed: enum_changed
            .into_iter()
            .map(|(name, o, n)| enum_change(name, &o, &n))
            .collect(),
        alias_added,
        alias_removed,
        alias_changed,
        const_added,
        const_removed,
        const_changed,
    }
}

fn record_change(name: String, old: Record, new: Record) -> RecordChange {
    let mut fields = Vec::new();
    // New order first (it is the layout now), then what disappeared.
    for n in &new.fields {
        let o = old.fields.iter().find(|o| o.name == n.name);
        if o != Some(n) {
            fields.push((n.name.clone(), o.cloned(), Some(n.clone())));
        }
    }
    for o in &old.fields {
        if !new.fields.iter().any(|n| n.name == o.name) {
            fields.push((o.name.clone(), Some(o.clone()), None));
        }
    }
    RecordChange {
        name,
        old,
        new,
        fields,
    }
}

fn enum_change(name: String, old: &Enum, new: &Enum) -> EnumChange {
    let find = |e: &Enum, k: &str| {
        e.values
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let mut added = Vec::new();
    let mut moved = Vec::new();
    for (k, v) in &new.values {
        match find(old, k) {
            None => added.push((k.clone(), v.clone())),
            Some(o) if &o != v => moved.push((k.clone(), o, v.clone())),
            Some(_) => {}
        }
    }
    let removed = old
        .values
        .iter()
        .filter(|(k, _)| find(new, k).is_none())
        .cloned()
        .collect();
    EnumChange {
        name,
        old_repr: old.repr.clone(),
        new_repr: new.repr.clone(),
        added,
        removed,
        moved,
    }
}

/// One item a breaking change touches, and the names to look for in the safe crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Breaking {
    /// `function`, `struct`, `enum`, ...
    pub kind: &'static str,
    pub name: String,
    /// Extra identifiers whose use counts (removed or moved enumerators, removed or retyped
    /// fields as `.field` next to the type's name).
    pub members: Vec<String>,
}

impl Diff {
    /// Every removed or changed item. Additions never break callers; everything else may:
    /// a changed signature or a moved field is undefined behaviour for code compiled against
    /// the old headers, and a removed item does not compile. A struct that only grew at the
    /// end counts too (struct literals stop compiling; by-value ABI may change).
    pub fn breaking(&self) -> Vec<Breaking> {
        let mut out = Vec::new();
        let item = |kind, name: &str, members: Vec<String>| Breaking {
            kind,
            name: name.to_string(),
            members,
        };
        for (n, _) in &self.fn_removed {
            out.push(item("function removed", n, vec![]));
        }
        for (n, _, _) in &self.fn_changed {
            out.push(item("function changed", n, vec![]));
        }
        for n in &self.rec_removed {
            out.push(item("struct removed", n, vec![]));
        }
        for c in &self.rec_changed {
            let members = c
                .retyped_or_removed()
                .iter()
                .map(|f| format!(".{f}"))
                .collect();
            out.push(item("struct layout changed", &c.name, members));
        }
        for n in &self.enum_removed {
            out.push(item("enum removed", n, vec![]));
        }
        for c in self.enum_changed.iter().filter(|c| !c.is_additive()) {
            let members = c
                .removed
                .iter()
                .map(|(k, _)| k.clone())
                .chain(c.moved.iter().map(|(k, _, _)| k.clone()))
                .collect();
            out.push(item("enum values moved", &c.name, members));
        }
        for (n, _) in &self.alias_removed {
            out.push(item("type removed", n, vec![]));
        }
        for (n, _, _) in &self.alias_changed {
            out.push(item("type changed", n, vec![]));
        }
        for (n, _) in &self.const_removed {
            out.push(item("constant removed", n, vec![]));
        }
        for (n, _, _) in &self.const_changed {
            out.push(item("constant changed", n, vec![]));
        }
        out
    }

    /// Nothing at all changed.
    pub fn is_empty(&self) -> bool {
        self == &Diff::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"
pub const GGML_MAX_DIMS: u32 = 4;
pub const GGML_GONE: u32 = 1;
pub const MODE_A: mode = 0;
pub const MODE_B: mode = 1;
pub const MODE_C: mode = 2;
pub type mode = ::core::ffi::c_uint;
pub type cb = ::core::option::Option<unsafe extern "C" fn(x: i32) -> bool>;
#[repr(C)]
pub struct params {
    pub a: u32,
    pub b: i32,
    pub m: mode,
}
const _: () = {
    ["Size of params"][::core::mem::size_of::<params>() - 12usize];
    ["Alignment of params"][::core::mem::align_of::<params>() - 4usize];
    ["Offset of field: params::a"][::core::mem::offset_of!(params, a) - 0usize];
    ["Offset of field: params::b"][::core::mem::offset_of!(params, b) - 4usize];
    ["Offset of field: params::m"][::core::mem::offset_of!(params, m) - 8usize];
};
#[repr(C)]
pub struct opaque { _unused: [u8; 0] }
unsafe extern "C" {
    pub fn f_same(p: *mut params) -> bool;
    pub fn f_changed(a: i32, b: f32) -> *mut opaque;
    pub fn f_gone();
    pub fn f_renamed_params(x: i32);
    pub fn f_log(fmt: *const ::core::ffi::c_char, ...);
}
"#;

    const NEW: &str = r#"
pub const GGML_MAX_DIMS: u32 = 4;
pub const MODE_AUTO: mode = -1;
pub const MODE_A: mode = 0;
pub const MODE_B: mode = 1;
pub const MODE_C: mode = 3;
pub type mode = ::core::ffi::c_int;
pub type cb = ::core::option::Option<unsafe extern "C" fn(x: i32, y: u32) -> bool>;
pub const ONLY_ADD_X: only_add = 0;
pub const ONLY_ADD_Y: only_add = 1;
pub type only_add = ::core::ffi::c_uint;
#[repr(C)]
pub struct params {
    pub a: u32,
    pub extra: u32,
    pub b: i32,
    pub m: mode,
}
const _: () = {
    ["Size of params"][::core::mem::size_of::<params>() - 16usize];
    ["Alignment of params"][::core::mem::align_of::<params>() - 4usize];
    ["Offset of field: params::a"][::core::mem::offset_of!(params, a) - 0usize];
    ["Offset of field: params::extra"][::core::mem::offset_of!(params, extra) - 4usize];
    ["Offset of field: params::b"][::core::mem::offset_of!(params, b) - 8usize];
    ["Offset of field: params::m"][::core::mem::offset_of!(params, m) - 12usize];
};
#[repr(C)]
pub struct opaque { _unused: [u8; 0] }
unsafe extern "C" {
    pub fn f_same(p: *mut params) -> bool;
    pub fn f_changed(n: i32, a: i32, b: f32) -> *mut opaque;
    pub fn f_new() -> *const ::core::ffi::c_char;
    pub fn f_renamed_params(y: i32);
    pub fn f_log(fmt: *const ::core::ffi::c_char, ...);
}
"#;

    #[test]
    fn parses_functions_records_layout_enums_and_constants() {
        let api = parse(OLD).unwrap();
        assert_eq!(
            api.functions["f_changed"].render(),
            "fn(a: i32, b: f32) -> *mut opaque"
        );
        assert_eq!(
            api.functions["f_log"].render(),
            "fn(fmt: *const c_char, ...)"
        );
        let p = &api.records["params"];
        assert_eq!((p.size, p.align), (Some(12), Some(4)));
        assert_eq!(p.fields[2].render(), "mode @8");
        assert_eq!(api.enums["mode"].repr, "c_uint");
        assert_eq!(api.enums["mode"].values.len(), 3);
        assert_eq!(
            api.aliases["cb"],
            "Option<unsafe extern \"C\" fn(x: i32) -> bool>"
        );
        assert!(!api.aliases.contains_key("mode"), "an enum, not an alias");
        assert_eq!(api.constants["GGML_MAX_DIMS"], "u32 = 4");
    }

    #[test]
    fn diff_names_every_kind_of_change_and_what_breaks() {
        let d = diff(&parse(OLD).unwrap(), &parse(NEW).unwrap());
        assert_eq!(
            d.fn_added
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["f_new"]
        );
        assert_eq!(d.fn_removed[0].0, "f_gone");
        assert_eq!(d.fn_changed.len(), 1, "parameter names alone are no change");
        assert_eq!(d.fn_changed[0].0, "f_changed");
        let p = &d.rec_changed[0];
        assert_eq!(p.name, "params");
        let fields: Vec<_> = p
            .fields
            .iter()
            .map(|(n, o, nw)| {
                format!(
                    "{n}: {} -> {}",
                    o.as_ref().map_or("-".into(), Field::render),
                    nw.as_ref().map_or("-".into(), Field::render)
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                "extra: - -> u32 @4",
                "b: i32 @4 -> i32 @8",
                "m: mode @8 -> mode @12"
            ]
        );
        assert!(p.retyped_or_removed().is_empty());
        let e = &d.enum_changed[0];
        assert_eq!(e.name, "mode");
        assert_eq!(
            (e.old_repr.as_str(), e.new_repr.as_str()),
            ("c_uint", "c_int")
        );
        assert_eq!(e.added, [("MODE_AUTO".to_string(), "-1".to_string())]);
        assert_eq!(
            e.moved,
            [("MODE_C".to_string(), "2".to_string(), "3".to_string())]
        );
        assert_eq!(d.enum_added, ["only_add"]);
        assert_eq!(d.alias_changed[0].0, "cb");
        assert_eq!(d.const_removed[0].0, "GGML_GONE");
        let kinds: Vec<String> = d
            .breaking()
            .iter()
            .map(|b| format!("{} {}", b.kind, b.name))
            .collect();
        assert_eq!(
            kinds,
            [
                "function removed f_gone",
                "function changed f_changed",
                "struct layout changed params",
                "enum values moved mode",
                "type changed cb",
                "constant removed GGML_GONE"
            ]
        );
        assert_eq!(d.breaking()[3].members, ["MODE_C"]);
    }

    #[test]
    fn additions_alone_do_not_break() {
        let old = "unsafe extern \"C\" { pub fn a(); }\npub const E_A: e = 0;\npub type e = ::core::ffi::c_uint;";
        let new = "unsafe extern \"C\" { pub fn a(); pub fn b(); }\npub const E_A: e = 0;\npub const E_B: e = 1;\npub type e = ::core::ffi::c_uint;";
        let d = diff(&parse(old).unwrap(), &parse(new).unwrap());
        assert!(!d.is_empty());
        assert!(d.breaking().is_empty(), "{:?}", d.breaking());
        assert!(diff(&parse(old).unwrap(), &parse(old).unwrap()).is_empty());
    }
}
