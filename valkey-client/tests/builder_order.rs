//! Builder settings given in any order are all kept: a URL or a whole
//! config given after `password()` (or other setters) no longer drops them.

use valkey_client::{Commands, ConnectionConfig, ErrorKind, Valkey, ValkeyBuilder};
use valkey_testkit::{Server, ServerConfig};

async fn server_with_password() -> Server {
    Server::start(ServerConfig::new().config("requirepass", "s3cret"))
        .await
        .expect("start valkey-server")
}

async fn pings(builder: ValkeyBuilder) -> valkey_client::Result<String> {
    let client = builder.build().await?;
    client.ping().await
}

#[tokio::test]
async fn url_then_password_and_password_then_url_both_authenticate() {
    let server = server_with_password().await;
    let url = format!("valkey://127.0.0.1:{}", server.port());

    let url_first = Valkey::builder().url(&url).unwrap().password("s3cret");
    assert_eq!(pings(url_first).await.unwrap(), "PONG");

    let password_first = Valkey::builder().password("s3cret").url(&url).unwrap();
    assert_eq!(pings(password_first).await.unwrap(), "PONG");

    // A whole config given after the setters keeps them too.
    let config = ConnectionConfig::tcp("127.0.0.1", server.port());
    let config_last = Valkey::builder()
        .password("s3cret")
        .connection_config(config);
    assert_eq!(pings(config_last).await.unwrap(), "PONG");

    // The setter wins over a URL's password, whatever the order.
    let wrong_in_url = format!("valkey://:wrong@127.0.0.1:{}", server.port());
    let setter_wins = Valkey::builder()
        .password("s3cret")
        .url(&wrong_in_url)
        .unwrap();
    assert_eq!(pings(setter_wins).await.unwrap(), "PONG");

    // And without the password the server refuses: the tests above could fail.
    let without = Valkey::builder().url(&url).unwrap();
    let err = pings(without).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
}

#[tokio::test]
async fn other_setters_survive_a_later_url() {
    let server = Server::start(ServerConfig::new())
        .await
        .expect("start valkey-server");
    let url = format!("valkey://127.0.0.1:{}/0", server.port());
    let client = Valkey::builder()
        .db(3)
        .client_name("kept-name")
        .url(&url)
        .unwrap()
        .build()
        .await
        .unwrap();
    let name: Option<String> = client.client_getname().await.unwrap();
    assert_eq!(name.as_deref(), Some("kept-name"));
    let info: String = client.client_info().await.unwrap();
    assert!(info.contains(" db=3 "), "{info}");
}
