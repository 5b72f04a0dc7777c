//! The argument tree of one command, read from its `COMMAND DOCS` entry.

use serde_json::Value as Json;

/// What an argument is, from the docs' `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Str,
    Pattern,
    Int,
    UnixTime,
    Double,
    PureToken,
    OneOf,
    Block,
}

/// One argument of a command (or of a block or one-of inside it).
#[derive(Debug, Clone)]
pub struct Arg {
    pub name: String,
    pub kind: Kind,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    /// The token is repeated before every item (`GET p [GET p ...]`).
    pub multiple_token: bool,
    pub children: Vec<Arg>,
}

impl Arg {
    /// Parses one argument and its children.
    pub fn parse(doc: &Json, command: &str) -> Result<Arg, String> {
        let name = doc["name"]
            .as_str()
            .ok_or_else(|| format!("{command}: an argument without a name"))?
            .to_string();
        let kind = match doc["type"].as_str().unwrap_or("") {
            "key" => Kind::Key,
            "string" => Kind::Str,
            "pattern" => Kind::Pattern,
            "integer" => Kind::Int,
            "unix-time" => Kind::UnixTime,
            "double" => Kind::Double,
            "pure-token" => Kind::PureToken,
            "oneof" => Kind::OneOf,
            "block" => Kind::Block,
            other => {
                return Err(format!(
                    "{command}: argument {name} has unknown type {other:?}"
                ));
            }
        };
        let flags: Vec<&str> = doc["flags"]
            .as_array()
            .map(|f| f.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        for flag in &flags {
            if !["optional", "multiple", "multiple_token"].contains(flag) {
                return Err(format!(
                    "{command}: argument {name} has unknown flag {flag:?}"
                ));
            }
        }
        let children = doc["arguments"]
            .as_array()
            .map(|list| list.iter().map(|a| Arg::parse(a, command)).collect())
            .transpose()?
            .unwrap_or_default();
        Ok(Arg {
            name,
            kind,
            token: doc["token"].as_str().map(str::to_string),
            optional: flags.contains(&"optional"),
            multiple: flags.contains(&"multiple"),
            multiple_token: flags.contains(&"multiple_token"),
            children,
        })
    }

    /// The number of values one item of this argument writes, for the
    /// `numkeys`-style counts (`HSETEX ... FIELDS numfields field value ...`
    /// counts pairs).
    pub fn leaves_per_item(&self) -> usize {
        match self.kind {
            Kind::Block => self
                .children
                .iter()
                .map(Arg::leaves_per_item)
                .sum::<usize>()
                .max(1),
            Kind::OneOf => 1,
            _ => 1 + usize::from(self.token.is_some() && self.kind != Kind::PureToken),
        }
    }

    /// `numkeys`, `numfields`, `BYPOLYGON num-vertices`: a count the
    /// client writes itself (after its token, if any) from the argument
    /// that follows.
    pub fn is_count(&self) -> bool {
        self.kind == Kind::Int && self.name.starts_with("num")
    }

    /// The argument's syntax, as the docs print it (`[EX seconds | PX ms]`).
    pub fn syntax(&self) -> String {
        let inner = match self.kind {
            Kind::PureToken => self.token.clone().unwrap_or_else(|| self.name.clone()),
            Kind::OneOf => {
                let alts: Vec<String> = self.children.iter().map(Arg::syntax).collect();
                let text = alts.join(" | ");
                let text = if self.optional {
                    text
                } else {
                    format!("<{text}>")
                };
                with_token(&self.token, text)
            }
            Kind::Block => {
                let parts: Vec<String> = self.children.iter().map(Arg::syntax).collect();
                with_token(&self.token, parts.join(" "))
            }
            _ => with_token(&self.token, self.name.clone()),
        };
        let repeated = if self.multiple {
            let again = if self.multiple_token {
                inner.clone()
            } else {
                strip_token(&self.token, &inner)
            };
            format!("{inner} [{again} ...]")
        } else {
            inner
        };
        if self.optional {
            format!("[{repeated}]")
        } else {
            repeated
        }
    }
}

fn with_token(token: &Option<String>, text: String) -> String {
    match token {
        Some(t) if text.is_empty() => t.clone(),
        Some(t) => format!("{t} {text}"),
        None => text,
    }
}

fn strip_token(token: &Option<String>, text: &str) -> String {
    match token {
        Some(t) => text
            .strip_prefix(&format!("{t} "))
            .unwrap_or(text)
            .to_string(),
        None => text.to_string(),
    }
}

/// One command or subcommand with its documentation.
#[derive(Debug, Clone)]
pub struct Command {
    /// The table name: lowercase, `container|sub` for a subcommand.
    pub name: String,
    pub summary: String,
    pub since: String,
    pub group: String,
    pub deprecated: Option<String>,
    pub args: Vec<Arg>,
}

impl Command {
    /// Every command and subcommand of the docs, sorted by name; containers
    /// (`CLIENT`, `CONFIG`, ...) are left out, their subcommands are in.
    pub fn all(docs: &Json) -> Result<Vec<Command>, String> {
        let map = docs.as_object().ok_or("command_docs is not a map")?;
        let mut out = Vec::new();
        for (name, doc) in map {
            match doc["subcommands"].as_object() {
                Some(subs) => {
                    for (sub, sub_doc) in subs {
                        out.push(Command::parse(sub, sub_doc)?);
                    }
                }
                None => out.push(Command::parse(name, doc)?),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn parse(name: &str, doc: &Json) -> Result<Command, String> {
        let text = |k: &str| doc[k].as_str().unwrap_or("").to_string();
        Ok(Command {
            name: name.to_string(),
            summary: text("summary"),
            since: text("since"),
            group: text("group"),
            deprecated: doc["deprecated_since"].as_str().map(|s| {
                let by = doc["replaced_by"].as_str().unwrap_or("");
                if by.is_empty() {
                    format!("since {s}")
                } else {
                    format!("since {s}; replaced by {by}")
                }
            }),
            args: doc["arguments"]
                .as_array()
                .map(|list| list.iter().map(|a| Arg::parse(a, name)).collect())
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// The words sent before the arguments: `["CLIENT", "LIST"]`.
    pub fn words(&self) -> Vec<String> {
        self.name.split('|').map(str::to_ascii_uppercase).collect()
    }

    /// `CLIENT LIST [TYPE ...]`.
    pub fn syntax(&self) -> String {
        let mut parts = vec![self.words().join(" ")];
        parts.extend(self.args.iter().map(Arg::syntax));
        parts.join(" ")
    }
}
