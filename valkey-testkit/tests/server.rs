//! Standalone server and replica lifecycle.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use valkey_testkit::{Server, ServerConfig, info_field};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn binary_is_found_and_is_valkey() {
    let path = valkey_testkit::valkey_server_path().unwrap();
    assert!(path.is_file(), "{}", path.display());
    let version = valkey_testkit::binary::server_version(&path).unwrap();
    assert!(version.starts_with("Valkey server v="), "{version}");
    // Cached: the same answer again.
    assert_eq!(valkey_testkit::ensure_installed().unwrap(), path);
}

#[tokio::test]
async fn start_and_drop_leaves_no_process() {
    let server = Server::start(ServerConfig::new().config("maxmemory", "10mb"))
        .await
        .unwrap();
    let pid = server.pid().unwrap();
    let dir = server.dir().to_path_buf();
    assert!(alive(pid));
    assert_eq!(
        server.url(),
        format!("valkey://127.0.0.1:{}", server.port())
    );
    assert!(raw(server.port(), b"PING\r\n").await.starts_with("+PONG"));
    let reply = raw(server.port(), b"CONFIG GET maxmemory\r\n").await;
    assert!(reply.contains("10485760"), "{reply}");
    assert!(server.log_tail(5).contains("Ready to accept connections"));
    drop(server);
    assert!(!alive(pid), "process {pid} survived drop");
    assert!(!dir.exists(), "temp dir survived drop");
}

#[tokio::test]
async fn drop_during_panic_kills_process() {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = tokio::spawn(async move {
        let server = Server::start(ServerConfig::new()).await.unwrap();
        tx.send(server.pid().unwrap()).unwrap();
        panic!("test panics while the server runs");
    });
    assert!(handle.await.is_err());
    let pid = rx.recv().unwrap();
    assert!(!alive(pid), "process {pid} survived a panic");
}

#[tokio::test]
async fn stop_kill_and_restart_keep_port_and_data() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let port = server.port();
    assert!(raw(port, b"SET k v\r\nSAVE\r\n").await.starts_with("+OK"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let old_pid = server.pid().unwrap();
    server.stop().await.unwrap();
    assert!(!server.is_running());
    assert!(server.pid().is_none());
    assert!(!alive(old_pid));
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );

    server.restart().await.unwrap();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_ne!(server.pid().unwrap(), old_pid);
    assert!(
        raw(port, b"GET k\r\n").await.contains("v"),
        "RDB not reloaded"
    );

    let pid = server.pid().unwrap();
    server.kill();
    assert!(!alive(pid));
    assert!(!server.is_running());
    server.restart().await.unwrap();
    assert!(raw(port, b"PING\r\n").await.starts_with("+PONG"));
}

#[tokio::test]
async fn unix_socket_and_password() {
    let mut server = Server::start(ServerConfig::new().unix_socket(true).password("s3cret"))
        .await
        .unwrap();
    let socket = server.unix_socket_path().unwrap();
    assert!(socket.starts_with(server.dir()));
    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    stream.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0; 64];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"-NOAUTH"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        raw(server.port(), b"AUTH s3cret\r\n")
            .await
            .starts_with("+OK")
    );
    // stop authenticates with the password.
    let pid = server.pid().unwrap();
    server.stop().await.unwrap();
    assert!(!alive(pid));
}

#[tokio::test]
async fn bad_config_reports_log() {
    let err = Server::start(ServerConfig::new().config("no-such-directive", "1"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("exited during startup"), "{message}");
    assert!(message.contains("no-such-directive"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_syncs() {
    let primary = Server::start(ServerConfig::new().password("pw"))
        .await
        .unwrap();
    let replica = primary.start_replica_of().await.unwrap();
    let info = replica.info("replication").await.unwrap();
    assert_eq!(info_field(&info, "role"), Some("slave"));
    assert_eq!(
        info_field(&info, "master_port"),
        Some(primary.port().to_string().as_str())
    );
    assert_eq!(info_field(&info, "master_link_status"), Some("up"));
    let info = primary.info("replication").await.unwrap();
    assert_eq!(info_field(&info, "connected_slaves"), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_servers_in_parallel_get_distinct_ports() {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(Server::start(ServerConfig::new())));
    }
    let mut servers = Vec::new();
    for task in tasks {
        servers.push(task.await.unwrap().unwrap());
    }
    let mut ports: Vec<u16> = servers.iter().map(Server::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 8);
}

#[tokio::test]
async fn connect_with_the_client() {
    let server = Server::start(ServerConfig::new().password("pw"))
        .await
        .unwrap();
    let mut conn = server.connect().await.unwrap();
    let set = valkey_client::Cmd::new("SET").arg("a").arg("1");
    assert!(conn.request(&set).await.unwrap().is_ok());
    let got = conn
        .request(&valkey_client::Cmd::new("GET").arg("a"))
        .await
        .unwrap();
    assert_eq!(got.as_str(), Some("1"));
    // Without the password the server refuses commands.
    let anonymous = valkey_client::ConnectionConfig::tcp("127.0.0.1", server.port());
    let refused = match valkey_client::Connection::connect(&anonymous).await {
        Ok(mut conn) => conn
            .request(&valkey_client::Cmd::new("GET").arg("a"))
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(refused);
}
