//! The enums and structs of required choices (`Side`, `GeoUnit`,
//! `GeosearchBy`), shared by every command with the same alternatives.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use super::emit::token_code;
use super::model::{Arg, Kind};
use super::names::{pascal, snake};

/// Enums shared by every command, keyed by their variants' code: two
/// commands with the same `LEFT | RIGHT` share one `Side`.
#[derive(Default)]
pub struct Enums {
    /// The command being emitted, to name its enums.
    pub(super) prefix: String,
    by_body: BTreeMap<String, String>,
    pub code: String,
    /// A sample value of each enum, for the test.
    samples: BTreeMap<String, String>,
}

/// Names for enums whose alternatives are common words.
const ENUM_NAMES: &[(&str, &str)] = &[
    ("LEFT RIGHT", "Side"),
    ("MIN MAX", "MinMax"),
    ("M KM FT MI", "GeoUnit"),
    ("BEFORE AFTER", "InsertPosition"),
    ("ON OFF", "OnOff"),
    ("SLOW LARGE-REQUEST LARGE-REPLY", "CommandLogType"),
    ("AND OR XOR NOT", "BitOperation"),
    ("MAXLEN MINID", "TrimStrategy"),
];

impl Enums {
    /// The enum type of a required one-of, and a sample value.
    pub(super) fn enum_for(&mut self, arg: &Arg, prefix: &str) -> (String, String) {
        let prefix = if prefix.is_empty() {
            self.prefix.clone()
        } else {
            prefix.to_string()
        };
        let prefix = prefix.as_str();
        let mut variants = String::new();
        let mut arms = String::new();
        let mut sample = None;
        let mut used = HashSet::new();
        for child in &arg.children {
            let mut vname = pascal(&child.name);
            if vname.is_empty() || vname.starts_with(|c: char| c.is_ascii_digit()) {
                vname = format!("V{vname}");
            }
            while !used.insert(vname.clone()) {
                vname.push('2');
            }
            let token = child.token.as_deref().map_or(String::new(), |t| {
                format!("out.write_arg({}.as_bytes());", token_code(t))
            });
            let doc = format!("/// `{}`", child.syntax());
            match child.kind {
                Kind::PureToken if !child.multiple => {
                    writeln!(variants, "{doc}\n{vname},").ok();
                    writeln!(arms, "Self::{vname} => {{ {token} }}").ok();
                    sample.get_or_insert(format!("{{ENUM}}::{vname}"));
                }
                _ => {
                    let (ty, s) = self.owned(child, prefix);
                    writeln!(variants, "{doc}\n{vname}({ty}),").ok();
                    let token = if child.kind == Kind::Block || child.multiple {
                        String::new()
                    } else {
                        token
                    };
                    writeln!(arms, "Self::{vname}(v) => {{ {token} v.write_args(out); }}").ok();
                    sample.get_or_insert(format!("{{ENUM}}::{vname}({s})"));
                }
            }
        }
        let key = variants.clone();
        if let Some(name) = self.by_body.get(&key) {
            let name = name.clone();
            let s = self.samples[&name].clone();
            return (name, s);
        }
        let tokens: Vec<String> = arg
            .children
            .iter()
            .map(|c| {
                c.token
                    .clone()
                    .unwrap_or_else(|| c.name.to_ascii_uppercase())
            })
            .collect();
        let name = ENUM_NAMES
            .iter()
            .find(|(t, _)| *t == tokens.join(" "))
            .map_or_else(
                || format!("{prefix}{}", pascal(&arg.name)),
                |(_, n)| n.to_string(),
            );
        let sample = sample.unwrap_or_default().replace("{ENUM}", &name);
        writeln!(
            self.code,
            "/// `{}`\n#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub enum {name} {{\n{variants}}}\n\
             impl ToArgs for {name} {{ fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {{ match self {{ {arms} }} }} }}\n",
            arg.syntax()
        )
        .ok();
        self.by_body.insert(key, name.clone());
        self.samples.insert(name.clone(), sample.clone());
        (name, sample)
    }

    /// The owned type of an enum variant's value, and a sample.
    fn owned(&mut self, arg: &Arg, prefix: &str) -> (String, String) {
        let (item, sample) = match arg.kind {
            Kind::OneOf => self.enum_for(arg, prefix),
            Kind::Block => self.block_struct(arg, prefix),
            Kind::Int | Kind::UnixTime => ("i64".into(), "1".into()),
            Kind::Double => ("f64".into(), "0.01".into()),
            Kind::PureToken => ("bool".into(), "true".into()),
            _ => ("String".into(), "\"v\".into()".into()),
        };
        if arg.multiple {
            (format!("Vec<{item}>"), format!("vec![{sample}]"))
        } else if arg.optional {
            (format!("Option<{item}>"), "None".into())
        } else {
            (item, sample)
        }
    }

    /// A struct for a block inside an enum variant, with a field per part.
    fn block_struct(&mut self, arg: &Arg, prefix: &str) -> (String, String) {
        let name = format!("{prefix}{}", pascal(&arg.name));
        let mut fields = String::new();
        let mut writes = String::new();
        let mut samples = Vec::new();
        if let Some(t) = &arg.token {
            writeln!(writes, "out.write_arg({}.as_bytes());", token_code(t)).ok();
        }
        let mut i = 0;
        while i < arg.children.len() {
            let child = &arg.children[i];
            let f = snake(&child.name);
            let token = child.token.as_deref().map_or(String::new(), |t| {
                format!("out.write_arg({}.as_bytes());", token_code(t))
            });
            if child.is_count() && arg.children.get(i + 1).is_some_and(|n| n.multiple) {
                let next = &arg.children[i + 1];
                let nf = snake(&next.name);
                let (ty, s) = self.owned(next, prefix);
                writeln!(fields, "/// `{}`\npub {nf}: {ty},", next.syntax()).ok();
                writeln!(writes, "{token} out.write_arg(itoa::Buffer::new().format(self.{nf}.len()).as_bytes()); self.{nf}.write_args(out);").ok();
                samples.push(format!("{nf}: {s}"));
                i += 2;
                continue;
            }
            if child.kind == Kind::PureToken && !child.optional && !child.multiple {
                writeln!(writes, "{token}").ok();
                i += 1;
                continue;
            }
            let (ty, s) = self.owned(child, prefix);
            writeln!(fields, "/// `{}`\npub {f}: {ty},", child.syntax()).ok();
            if child.kind == Kind::PureToken {
                writeln!(writes, "if self.{f} {{ {token} }}").ok();
            } else if child.optional {
                writeln!(
                    writes,
                    "if let Some(v) = &self.{f} {{ {token} v.write_args(out); }}"
                )
                .ok();
            } else {
                writeln!(writes, "{token} self.{f}.write_args(out);").ok();
            }
            samples.push(format!("{f}: {s}"));
            i += 1;
        }
        if !self.samples.contains_key(&name) {
            writeln!(
                self.code,
                "/// `{}`\n#[derive(Debug, Clone, PartialEq)]\npub struct {name} {{\n{fields}}}\n\
                 impl ToArgs for {name} {{ fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {{ {writes} }} }}\n",
                arg.syntax()
            )
            .ok();
            self.samples.insert(name.clone(), String::new());
        }
        let sample = format!("{name} {{ {} }}", samples.join(", "));
        (name, sample)
    }
}
