//! Rust code for one command: its methods, its options builder and the
//! enums of its required one-of arguments.
//!
//! The rules, applied to the docs' argument tree:
//!
//! - a required argument is a method parameter: a key or string one value
//!   (`impl ToArg`), an integer `i64`, a double `f64`; a repeated one any
//!   [`ToArgs`] (a slice, a `Vec`, tuples for repeated blocks); a one-of an
//!   enum; a block its parts;
//! - `numkeys`, `numfields`, `num-vertices` are counted by the method from
//!   the argument that follows, never given by the caller;
//! - optional arguments are setters of the command's options builder, which
//!   keeps each in its slot so they are written in the documented order;
//!   the alternatives of a one-of share its slots, the last one set wins.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::enums::Enums;
use super::model::{Arg, Command, Kind};
use super::names::{pascal, snake};

/// The code of a command's methods (trait items), its options struct and
/// its enums (module items), and a call of each method for the test.
#[derive(Default)]
pub struct Emitted {
    pub trait_items: String,
    pub module_items: String,
    /// `(method, call expression on `c`, declared reply type or None)`.
    pub test_calls: Vec<(String, String, Option<String>)>,
}

/// Arguments the docs call integers that the server reads as any number.
const FRACTIONAL: &[(&str, &str)] = &[("Zincrby", "increment")];

/// A parameter of a method or setter.
struct Param {
    ident: String,
    ty: String,
    sample: String,
}

struct MethodBuilder {
    prefix: String,
    params: Vec<Param>,
    /// Statements writing the arguments into `cmd`; `None` marks where the
    /// options' slots `[lo, hi)` are written.
    body: Vec<Stmt>,
    setters: Vec<String>,
    setter_names: HashSet<String>,
    next_slot: u16,
    /// The one-of whose alternative is being named.
    parent_hint: Option<String>,
}

enum Stmt {
    Code(String),
    Slots(u16, u16),
}

fn rust_value_type(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Int | Kind::UnixTime => ("i64", "1"),
        // Any argument: a number, or "(1", "+inf" where ranges take them.
        Kind::Double => ("impl ToArg", "0.01"),
        Kind::Pattern => ("impl ToArg", "\"*\""),
        _ => ("impl ToArg", "\"v\""),
    }
}

/// How many slots an optional argument takes.
fn slot_count(arg: &Arg) -> u16 {
    if arg.multiple {
        return 1;
    }
    match arg.kind {
        Kind::OneOf => arg.children.iter().map(slot_count).sum::<u16>().max(1),
        Kind::Block => {
            u16::from(arg.token.is_some()) + arg.children.iter().map(slot_count).sum::<u16>()
        }
        _ => 1,
    }
}

pub(super) fn token_code(token: &str) -> String {
    format!("{:?}", token)
}

impl MethodBuilder {
    fn new(cmd: &Command) -> Self {
        MethodBuilder {
            prefix: pascal(&cmd.name),
            params: Vec::new(),
            body: Vec::new(),
            setters: Vec::new(),
            setter_names: HashSet::new(),
            next_slot: 0,
            parent_hint: None,
        }
    }

    fn param_ident(&self, name: &str) -> String {
        let base = snake(name);
        let mut ident = base.clone();
        let mut n = 2;
        while self.params.iter().any(|p| p.ident == ident) || ident == "options" {
            ident = format!("{base}{n}");
            n += 1;
        }
        ident
    }

    fn add_param(&mut self, name: &str, ty: &str, sample: String) -> String {
        let ident = self.param_ident(name);
        self.params.push(Param {
            ident: ident.clone(),
            ty: ty.to_string(),
            sample,
        });
        ident
    }

    fn code(&mut self, s: String) {
        self.body.push(Stmt::Code(s));
    }

    /// A list of sibling arguments, all required context.
    fn required_list(&mut self, args: &[Arg], enums: &mut Enums) {
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            if arg.is_count()
                && let Some(next) = args.get(i + 1)
                && next.multiple
            {
                let per = per_item(next);
                let sample = repeated_sample(next, enums);
                let ident = self.add_param(&next.name, "impl ToArgs", sample);
                if let Some(t) = &arg.token {
                    self.code(format!("cmd.push_arg({});", token_code(t)));
                }
                self.code(format!("cmd.push_arg(count_args(&{ident}){per});"));
                // A token of the counted argument follows the count (none
                // do today).
                if let Some(t) = &next.token {
                    self.code(format!("cmd.push_arg({});", token_code(t)));
                }
                self.code(format!("cmd.push_arg(&{ident});"));
                i += 2;
                continue;
            }
            if arg.optional {
                let lo = self.next_slot;
                self.optional(arg, None, None, None, enums);
                let hi = self.next_slot;
                match self.body.last_mut() {
                    Some(Stmt::Slots(_, end)) if *end == lo => *end = hi,
                    _ => self.body.push(Stmt::Slots(lo, hi)),
                }
            } else {
                self.required(arg, enums);
            }
            i += 1;
        }
    }

    fn required(&mut self, arg: &Arg, enums: &mut Enums) {
        if arg.multiple {
            let sample = repeated_sample(arg, enums);
            let ident = self.add_param(&arg.name, "impl ToArgs", sample);
            if let Some(t) = &arg.token {
                self.code(format!("cmd.push_arg({});", token_code(t)));
            }
            self.code(format!("cmd.push_arg(&{ident});"));
            return;
        }
        match arg.kind {
            Kind::PureToken => {
                let t = arg.token.as_deref().unwrap_or(&arg.name);
                self.code(format!("cmd.push_arg({});", token_code(t)));
            }
            Kind::OneOf => {
                let (ty, sample) = enums.enum_for(arg, &self.prefix);
                let ident = self.add_param(&arg.name, &ty, sample);
                if let Some(t) = &arg.token {
                    self.code(format!("cmd.push_arg({});", token_code(t)));
                }
                self.code(format!("cmd.push_arg(&{ident});"));
            }
            Kind::Block => {
                if let Some(t) = &arg.token {
                    self.code(format!("cmd.push_arg({});", token_code(t)));
                }
                self.required_list(&arg.children, enums);
            }
            kind => {
                // The docs say integer; the server takes any number.
                let kind = if FRACTIONAL.contains(&(self.prefix.as_str(), arg.name.as_str())) {
                    Kind::Double
                } else {
                    kind
                };
                let (ty, sample) = rust_value_type(kind);
                let sample = sample_for(&arg.name, kind, sample);
                let ident = self.add_param(&arg.name, ty, sample);
                if let Some(t) = &arg.token {
                    self.code(format!("cmd.push_arg({});", token_code(t)));
                }
                self.code(format!("cmd.push_arg({ident});"));
            }
        }
    }

    fn setter_name(&mut self, arg: &Arg, parent: Option<&str>) -> String {
        let generic_block = arg.kind == Kind::Block
            && arg.token.is_none()
            && (arg.name.ends_with("-block") || arg.name == "options");
        let first = arg.children.first();
        let base = match (&arg.token, arg.kind) {
            _ if generic_block && first.is_some() => {
                let f = first.map_or("", |f| f.token.as_deref().unwrap_or(&f.name));
                snake(f).trim_end_matches('_').to_string()
            }
            (Some(t), _)
                if !t.contains(' ')
                    && t.chars().any(|c| c.is_ascii_alphabetic())
                    && !snake(t).ends_with('_') =>
            {
                snake(t)
            }
            _ if arg.name == "type" => "kind".to_string(),
            _ => snake(&arg.name),
        };
        let base = if base == "new" || base == "default" || base == "clone" {
            format!("{base}_")
        } else {
            base
        };
        let mut name = base.clone();
        let parent = parent
            .map(str::to_string)
            .or_else(|| self.parent_hint.clone());
        if self.setter_names.contains(&name)
            && let Some(p) = parent
        {
            name = format!("{}_{base}", snake(&p).trim_end_matches('_'));
        }
        let mut n = 2;
        while self.setter_names.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.setter_names.insert(name.clone());
        name
    }

    /// An optional argument: slots and setters. `group`: the slots of the
    /// one-of this is an alternative of (cleared first); `lead`: a token
    /// to write before it (the one-of's own token).
    fn optional(
        &mut self,
        arg: &Arg,
        group: Option<(u16, u16)>,
        lead: Option<&str>,
        anchor: Option<&(u16, String)>,
        enums: &mut Enums,
    ) {
        // Inside an optional block: written only when the block is.
        let (set_op, needs) = match anchor {
            Some((slot, setter)) => (
                format!("set_in({slot}, "),
                format!("///\n/// Sent only together with [`Self::{setter}`].\n"),
            ),
            None => ("set(".to_string(), String::new()),
        };
        let clear = match group {
            Some((lo, hi)) => format!("self.0.clear({lo}, {hi});"),
            None => String::new(),
        };
        let lead_code = lead.map_or(String::new(), |t| format!("a.push_arg({});", token_code(t)));
        let doc = format!("/// `{}`", {
            let syntax = arg.syntax();
            match syntax.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                Some(inner) => inner.to_string(),
                None => syntax,
            }
        });
        if arg.kind == Kind::OneOf && !arg.multiple {
            let lo = self.next_slot;
            let hi = lo + slot_count(arg);
            let lead = arg.token.as_deref().or(lead);
            for child in &arg.children {
                self.optional_alternative(child, (lo, hi), lead, anchor, &arg.name, enums);
            }
            self.next_slot = hi;
            return;
        }
        let slot = self.next_slot;
        if arg.multiple || arg.kind != Kind::Block {
            self.next_slot += 1;
            let name = self.setter_name(arg, None);
            let (params, write) = self.value_writer(arg, enums);
            let op = if arg.multiple_token {
                "push(".to_string()
            } else {
                set_op.clone()
            };
            let params: Vec<String> = params
                .iter()
                .map(|p| format!("{}: {}", p.ident, p.ty))
                .collect();
            let mut s = String::new();
            writeln!(s, "{doc}").ok();
            if arg.multiple_token {
                writeln!(s, "/// Each call adds one more.").ok();
            }
            s.push_str(&needs.replace("\\n", "\n"));
            writeln!(
                s,
                "pub fn {name}(mut self, {}) -> Self {{ {clear} self.0.{op}{slot}, |a| {{ {lead_code} {write} }}); self }}",
                params.join(", ")
            )
            .ok();
            self.setters.push(s);
            return;
        }
        // A block: one setter for its required parts, each in its own slot,
        // and setters of their own for its optional parts.
        let name = self.setter_name(arg, None);
        let mut params = Vec::new();
        let mut sets = Vec::new();
        // The slot the block's setter always fills: its parts written
        // without it would be misread.
        let own_anchor = if arg.token.is_some() || lead.is_some() {
            Some(self.next_slot)
        } else {
            let mut slot = self.next_slot;
            let mut found = None;
            for child in &arg.children {
                if !child.optional {
                    found = Some(slot);
                    break;
                }
                slot += slot_count(child);
            }
            found
        };
        let inner_anchor = own_anchor.map(|slot| (slot, name.clone()));
        if arg.token.is_some() || lead.is_some() {
            let t = arg
                .token
                .as_deref()
                .map_or(String::new(), |t| format!("a.push_arg({});", token_code(t)));
            sets.push(format!(
                "self.0.{set_op}{}, |a| {{ {lead_code} {t} }});",
                self.next_slot
            ));
            self.next_slot += 1;
        }
        let mut i = 0;
        let children = &arg.children;
        while i < children.len() {
            let child = &children[i];
            if child.optional {
                self.optional(child, None, None, inner_anchor.as_ref().or(anchor), enums);
                i += 1;
                continue;
            }
            let slot = self.next_slot;
            self.next_slot += slot_count(child).max(1);
            if child.is_count()
                && let Some(next) = children.get(i + 1)
                && next.multiple
            {
                let per = per_item(next);
                let ident = snake(&next.name);
                params.push(format!("{ident}: impl ToArgs"));
                let t = child
                    .token
                    .as_deref()
                    .map_or(String::new(), |t| format!("a.push_arg({});", token_code(t)));
                sets.push(format!(
                    "self.0.{set_op}{slot}, |a| {{ {t} a.push_arg(count_args(&{ident}){per}); a.push_arg(&{ident}); }});"
                ));
                self.next_slot += 1;
                i += 2;
                continue;
            }
            let (ps, write) = self.value_writer(child, enums);
            for p in ps {
                params.push(format!("{}: {}", p.ident, p.ty));
            }
            sets.push(format!("self.0.{set_op}{slot}, |a| {{ {write} }});"));
            i += 1;
        }
        let mut s = String::new();
        writeln!(s, "{doc}").ok();
        s.push_str(&needs.replace("\\n", "\n"));
        writeln!(
            s,
            "pub fn {name}(mut self, {}) -> Self {{ {clear} {} self }}",
            params.join(", "),
            sets.join(" ")
        )
        .ok();
        self.setters.push(s);
    }

    /// One alternative of an optional one-of: its setter clears the
    /// others; a name taken already gets the one-of's name in front
    /// (`not_client_type_normal`).
    fn optional_alternative(
        &mut self,
        arg: &Arg,
        group: (u16, u16),
        lead: Option<&str>,
        anchor: Option<&(u16, String)>,
        parent: &str,
        enums: &mut Enums,
    ) {
        self.parent_hint = Some(parent.to_string());
        self.optional(arg, Some(group), lead, anchor, enums);
        self.parent_hint = None;
    }

    /// The parameters and the code writing one optional value into `a`.
    fn value_writer(&mut self, arg: &Arg, enums: &mut Enums) -> (Vec<Param>, String) {
        let token = arg
            .token
            .as_deref()
            .filter(|_| !arg.multiple_token || arg.kind != Kind::PureToken)
            .map_or(String::new(), |t| format!("a.push_arg({});", token_code(t)));
        let ident = snake(&arg.name);
        if arg.multiple && !arg.multiple_token {
            let sample = repeated_sample(arg, enums);
            return (
                vec![Param {
                    ident: ident.clone(),
                    ty: "impl ToArgs".into(),
                    sample,
                }],
                format!("{token} a.push_arg(&{ident});"),
            );
        }
        match arg.kind {
            Kind::PureToken => (Vec::new(), token),
            Kind::OneOf => {
                let (ty, sample) = enums.enum_for(arg, &self.prefix);
                (
                    vec![Param {
                        ident: ident.clone(),
                        ty,
                        sample,
                    }],
                    format!("{token} a.push_arg(&{ident});"),
                )
            }
            Kind::Block => {
                // A repeated optional block: one call adds one item, with
                // every part as a parameter.
                let mut params = Vec::new();
                let mut code = token;
                for child in &arg.children {
                    let (ps, w) = self.value_writer(child, enums);
                    if child.optional && !ps.is_empty() {
                        let p = &ps[0];
                        let ty = owned_param_type(&p.ty);
                        params.push(Param {
                            ident: p.ident.clone(),
                            ty: format!("Option<{ty}>"),
                            sample: "None".into(),
                        });
                        let t = child
                            .token
                            .as_deref()
                            .map_or(String::new(), |t| format!("a.push_arg({});", token_code(t)));
                        code.push_str(&format!(
                            " if let Some({}) = {} {{ {t} a.push_arg({}); }}",
                            p.ident, p.ident, p.ident
                        ));
                    } else {
                        params.extend(ps);
                        code.push(' ');
                        code.push_str(&w);
                    }
                }
                (params, code)
            }
            kind => {
                let (ty, sample) = rust_value_type(kind);
                let sample = sample_for(&arg.name, kind, sample);
                (
                    vec![Param {
                        ident: ident.clone(),
                        ty: ty.into(),
                        sample,
                    }],
                    format!("{token} a.push_arg({ident});"),
                )
            }
        }
    }
}

/// `impl ToArg` cannot sit inside `Option`: an owned type instead.
fn owned_param_type(ty: &str) -> &str {
    match ty {
        "impl ToArg" | "impl ToArgs" => "String",
        other => other,
    }
}

/// Samples chosen so a call is quick and harmless on a test server:
/// timeouts are short, counts small.
fn sample_for(name: &str, kind: Kind, default: &str) -> String {
    match (kind, name) {
        (Kind::Key, _) => "\"{key}\"".into(),
        (Kind::Double, "timeout") => "0.01".into(),
        (Kind::Int, "timeout") => "1".into(),
        (Kind::Int, n) if n.contains("port") => "1".into(),
        _ => default.into(),
    }
}

fn leaf_sample(arg: &Arg, enums: &mut Enums) -> String {
    match arg.kind {
        Kind::OneOf => enums.enum_for(arg, "").1,
        Kind::Block => {
            let parts: Vec<String> = arg
                .children
                .iter()
                .filter(|c| !c.optional && c.kind != Kind::PureToken && !c.is_count())
                .map(|c| leaf_sample(c, enums))
                .collect();
            if parts.len() == 1 {
                parts[0].clone()
            } else {
                format!("({})", parts.join(", "))
            }
        }
        kind => sample_for(&arg.name, kind, rust_value_type(kind).1),
    }
}

fn repeated_sample(arg: &Arg, enums: &mut Enums) -> String {
    format!("[{}]", leaf_sample(arg, enums))
}

/// The methods of one command.
pub fn emit(cmd: &Command, method: &str, reply: Option<&str>, enums: &mut Enums) -> Emitted {
    let mut b = MethodBuilder::new(cmd);
    enums.prefix = b.prefix.clone();
    b.required_list(&cmd.args, enums);
    let words = cmd.words();
    let mut head = format!("let mut cmd = Cmd::new({:?});", words[0]);
    for w in &words[1..] {
        write!(head, " cmd.push_arg({w:?});").ok();
    }
    let has_options = b.next_slot > 0;
    let options_ty = format!("{}Options", b.prefix);
    let params: Vec<String> = b
        .params
        .iter()
        .map(|p| format!("{}: {}", p.ident, p.ty))
        .collect();
    let doc = method_doc(cmd);
    let (generic, ret) = match reply {
        Some(ty) => (String::new(), ty.to_string()),
        None => (
            "<T: FromValue + Send + 'static>".to_string(),
            "T".to_string(),
        ),
    };
    let bound = if reply.is_none() {
        " where Self: ReplyAs<T>"
    } else {
        ""
    };
    let mut out = Emitted::default();
    let body = |with_options: bool| {
        let mut s = head.clone();
        for stmt in &b.body {
            match stmt {
                Stmt::Code(c) => s.push_str(c),
                Stmt::Slots(lo, hi) if with_options && lo < hi => {
                    write!(s, " options.0.write_to(&mut cmd, {lo}, {hi});").ok();
                }
                Stmt::Slots(..) => {}
            }
        }
        s
    };
    writeln!(
        out.trait_items,
        "{doc}fn {method}{generic}(self, {}) -> Self::Reply<{ret}>{bound} {{ {} self.send(cmd) }}\n",
        params.join(", "),
        body(false)
    )
    .ok();
    let samples: Vec<String> = b
        .params
        .iter()
        .map(|p| p.sample.replace("{key}", &format!("k:{method}")))
        .collect();
    let test_ty = reply.map(str::to_string);
    out.test_calls.push((
        method.to_string(),
        format!("c.{method}({})", samples.join(", ")),
        test_ty.clone(),
    ));
    if has_options {
        let (wgeneric, wret, wbound) =
            if reply.is_some() && super::names::options_change_reply(&cmd.name) {
                (
                    "<T: FromValue + Send + 'static>".to_string(),
                    "T".to_string(),
                    " where Self: ReplyAs<T>",
                )
            } else {
                (generic.clone(), ret.clone(), bound)
            };
        writeln!(
            out.trait_items,
            "{doc}///\n/// With the optional arguments of [`{options_ty}`].\n\
             fn {method}_with{wgeneric}(self, {}options: {options_ty}) -> Self::Reply<{wret}>{wbound} {{ {} self.send(cmd) }}\n",
            params.iter().map(|p| format!("{p}, ")).collect::<String>(),
            body(true)
        )
        .ok();
        let with_ty = if wgeneric.is_empty() { test_ty } else { None };
        let mut args = samples.clone();
        args.push(format!("{options_ty}::new()"));
        out.test_calls.push((
            format!("{method}_with"),
            format!("c.{method}_with({})", args.join(", ")),
            with_ty,
        ));
        writeln!(
            out.module_items,
            "/// The optional arguments of `{}` ([`Commands::{method}_with`]).\n\
             #[derive(Debug, Clone, Default)]\n#[must_use]\npub struct {options_ty}(OptionArgs);\n\
             impl {options_ty} {{\n/// No options.\npub fn new() -> Self {{ Self::default() }}\n{}}}\n",
            cmd.words().join(" "),
            b.setters.join("\n")
        )
        .ok();
    }
    out
}

fn method_doc(cmd: &Command) -> String {
    let mut doc = String::new();
    let summary = cmd.summary.trim();
    writeln!(doc, "/// {summary}").ok();
    writeln!(doc, "///\n/// `{}`", cmd.syntax().replace('`', "'")).ok();
    if !cmd.since.is_empty() {
        writeln!(doc, "///\n/// Group: {}; since {}.", cmd.group, cmd.since).ok();
    }
    if let Some(d) = &cmd.deprecated {
        writeln!(doc, "/// Deprecated {d}.").ok();
    }
    doc
}

/// ` / 2` when the items of `arg` are pairs, nothing when single values.
fn per_item(arg: &Arg) -> String {
    match arg.leaves_per_item() {
        1 => String::new(),
        n => format!(" / {n}"),
    }
}
