//! The greeting every new connection runs: protocol, authentication, name,
//! database and library info.

use super::Connection;
use crate::cmd::Cmd;
use crate::config::{ConnectionConfig, Protocol};
use crate::error::{Error, ErrorKind, Result};

/// The library name and version sent with `CLIENT SETINFO`.
const LIB_NAME: &str = "valkey-client-rs";
const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");

pub(super) async fn run(conn: &mut Connection, config: &ConnectionConfig) -> Result<()> {
    let greeted = match config.protocol {
        Protocol::Resp3 => hello(conn, config).await?,
        Protocol::Resp2 => false,
    };
    if !greeted {
        resp2_greeting(conn, config).await?;
    }
    // SELECT and SETINFO go in one round trip; only SETINFO may fail quietly.
    let mut cmds = Vec::with_capacity(4);
    if config.db != 0 {
        cmds.push(Cmd::new("SELECT").arg(config.db));
    }
    if config.readonly {
        cmds.push(Cmd::new("READONLY"));
    }
    if config.set_lib_info {
        cmds.push(
            Cmd::new("CLIENT")
                .arg("SETINFO")
                .arg("LIB-NAME")
                .arg(LIB_NAME),
        );
        cmds.push(
            Cmd::new("CLIENT")
                .arg("SETINFO")
                .arg("LIB-VER")
                .arg(LIB_VERSION),
        );
    }
    if cmds.is_empty() {
        return Ok(());
    }
    let replies = conn.pipeline(&cmds).await?;
    for (cmd, reply) in cmds.iter().zip(replies) {
        match reply {
            Ok(_) => {}
            Err(e) if cmd.name() == "CLIENT" && e.family() == crate::ErrorFamily::Response => {
                tracing::debug!(error = %e, "server does not take CLIENT SETINFO; ignored");
            }
            Err(e) => return Err(conn.fail(e)),
        }
    }
    Ok(())
}

/// `HELLO 3` with credentials and name in one round trip. `Ok(false)` when
/// the server does not know `HELLO` or refuses RESP3: the caller then greets
/// in RESP2.
async fn hello(conn: &mut Connection, config: &ConnectionConfig) -> Result<bool> {
    let mut cmd = Cmd::new("HELLO").arg(3);
    if let Some(password) = &config.password {
        let user = config.username.as_deref().unwrap_or("default");
        cmd = cmd.arg("AUTH").arg(user).arg(password.expose());
    }
    if let Some(name) = &config.client_name {
        cmd = cmd.arg("SETNAME").arg(name);
    }
    match conn.request(&cmd).await {
        Ok(reply) => {
            conn.protocol = Protocol::Resp3;
            conn.server_version = reply
                .map_get("version")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            Ok(true)
        }
        Err(e) if e.code() == Some("NOPROTO") || is_unknown_command(&e) => {
            tracing::debug!(error = %e, "HELLO refused; falling back to RESP2");
            Ok(false)
        }
        Err(e) => Err(handshake_error(conn, e)),
    }
}

async fn resp2_greeting(conn: &mut Connection, config: &ConnectionConfig) -> Result<()> {
    conn.protocol = Protocol::Resp2;
    if let Some(password) = &config.password {
        let mut cmd = Cmd::new("AUTH");
        if let Some(user) = &config.username {
            cmd = cmd.arg(user);
        }
        cmd = cmd.arg(password.expose());
        conn.request(&cmd)
            .await
            .map_err(|e| handshake_error(conn, e))?;
    }
    if let Some(name) = &config.client_name {
        conn.request(&Cmd::new("CLIENT").arg("SETNAME").arg(name))
            .await
            .map_err(|e| handshake_error(conn, e))?;
    }
    Ok(())
}

fn is_unknown_command(e: &Error) -> bool {
    e.code() == Some("ERR") && e.message().starts_with("unknown command")
}

/// A failed handshake closes the connection. A permission refusal of the
/// greeting itself is an authorization failure, not a command error.
fn handshake_error(conn: &mut Connection, e: Error) -> Error {
    let e = if e.kind() == ErrorKind::NoPermission {
        Error::new(
            ErrorKind::Authorization,
            format!("handshake refused: {}", e.message()),
        )
    } else {
        e
    };
    conn.fail(e)
}
