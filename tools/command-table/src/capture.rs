//! `capture`: asks a real valkey-server for `COMMAND INFO` and `COMMAND DOCS`
//! and writes the replies as JSON, so the table can be regenerated offline.

use serde_json::{Map, Value as Json};
use valkey_client::{Cmd, Value};
use valkey_testkit::{Server, ServerConfig};

/// Starts a server through the test kit and returns the capture document:
/// `{"server_version", "command_info", "command_docs"}`.
pub async fn capture() -> Result<Json, String> {
    let server = Server::start(ServerConfig::new())
        .await
        .map_err(|e| format!("starting valkey-server: {e}"))?;
    let mut conn = server
        .connect()
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let version = conn
        .server_version()
        .ok_or("no server version in HELLO (RESP3 needed)")?
        .to_string();
    let info = conn
        .request(&Cmd::new("COMMAND").arg("INFO"))
        .await
        .map_err(|e| format!("COMMAND INFO: {e}"))?;
    let docs = conn
        .request(&Cmd::new("COMMAND").arg("DOCS"))
        .await
        .map_err(|e| format!("COMMAND DOCS: {e}"))?;
    let mut info = to_json(&info)?;
    // The server lists commands in hash-table order: sort by name (here and
    // in every subcommand list) so a regeneration gives no diff.
    sort_by_name(&mut info);
    let mut doc = Map::new();
    doc.insert("server_version".into(), Json::String(version));
    doc.insert("command_info".into(), info);
    doc.insert("command_docs".into(), to_json(&docs)?);
    Ok(Json::Object(doc))
}

/// Sorts an array of `COMMAND INFO` entries by name, recursively through
/// their subcommands (element 9).
fn sort_by_name(entries: &mut Json) {
    if let Json::Array(list) = entries {
        for entry in list.iter_mut() {
            if let Some(subs) = entry.get_mut(9) {
                sort_by_name(subs);
            }
        }
        list.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
    }
}

/// Converts a reply: maps to objects, arrays to arrays, sets to sorted
/// arrays (their order carries no meaning), strings, integers, null.
fn to_json(value: &Value) -> Result<Json, String> {
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Int(i) => Json::from(*i),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Double(d) => Json::from(*d),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Set(items) => {
            let mut items: Vec<Json> = items.iter().map(to_json).collect::<Result<_, _>>()?;
            items.sort_by_key(|j| j.to_string());
            Json::Array(items)
        }
        Value::Map(pairs) => {
            let mut map = Map::new();
            for (k, v) in pairs {
                let key = k
                    .as_str()
                    .ok_or_else(|| format!("map key is not a string: {k:?}"))?;
                map.insert(key.to_string(), to_json(v)?);
            }
            Json::Object(map)
        }
        other => match other.as_str() {
            Some(s) => Json::String(s.to_string()),
            None => return Err(format!("unexpected reply element: {other:?}")),
        },
    })
}
