//! Every measured client behind one enum, with the few operations the
//! workloads need.

use bytes::Bytes;
use valkey_client::Commands;
use valkey_client::{
    Cmd, Connection, ConnectionConfig, ExponentialBackoff, Pipeline, Retry, Valkey, ValkeyCluster,
};

use crate::bare::Bare;
use crate::{Result, VALUE};

/// Which client to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This crate's [`Valkey`] client (one multiplexed connection).
    Valkey,
    /// This crate's [`Valkey`] client with a [`Retry`] configured (no fault
    /// happens, so it never retries).
    ValkeyRetry,
    /// This crate's plain sequential [`Connection`].
    Connection,
    /// The `redis` crate's multiplexed tokio connection.
    Redis,
    /// `fred`'s client (one connection, auto-pipelined).
    Fred,
    /// `valkey-glide`'s standalone client.
    Glide,
    /// No client: a tokio socket and hand-written bytes ([`crate::bare`]).
    BareTokio,
    /// No client: a blocking `std::net` socket and hand-written bytes.
    BareStd,
    /// [`Kind::BareStd`] that busy-waits [`crate::bare::SPIN`] after each
    /// send before it blocks: not a way to run, but the proof of what limits
    /// the sequential workload on a virtual machine (see `docs/benchmarks.md`).
    BareStdSpin,
}

impl Kind {
    /// Every kind this build can measure: the peers only with the `peers`
    /// feature.
    pub fn all() -> Vec<Kind> {
        let mut kinds = vec![Kind::Valkey, Kind::ValkeyRetry, Kind::Connection];
        if cfg!(feature = "peers") {
            kinds.extend([Kind::Redis, Kind::Fred, Kind::Glide]);
        }
        kinds.extend([Kind::BareTokio, Kind::BareStd, Kind::BareStdSpin]);
        kinds
    }

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Valkey => "valkey-client",
            Kind::ValkeyRetry => "valkey-client+retry",
            Kind::Connection => "valkey-client Connection",
            Kind::Redis => "redis",
            Kind::Fred => "fred",
            Kind::Glide => "valkey-glide",
            Kind::BareTokio => "bare tokio loop (no client)",
            Kind::BareStd => "bare std::net loop (no client)",
            Kind::BareStdSpin => "bare std::net loop, 8 us spin",
        }
    }

    /// The short name accepted by `--client`.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Valkey => "valkey",
            Kind::ValkeyRetry => "valkey-retry",
            Kind::Connection => "connection",
            Kind::Redis => "redis",
            Kind::Fred => "fred",
            Kind::Glide => "glide",
            Kind::BareTokio => "bare-tokio",
            Kind::BareStd => "bare-std",
            Kind::BareStdSpin => "bare-std-spin",
        }
    }

    /// Parses a short name (see [`Kind::short`]).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::all().into_iter().find(|k| k.short() == s)
    }

    /// Whether clones share one connection (needed by the 64-task workload).
    pub fn shareable(self) -> bool {
        !matches!(self, Kind::Connection) && !self.bare()
    }

    /// Whether this is one of the bare loops, which are no client.
    pub fn bare(self) -> bool {
        matches!(self, Kind::BareTokio | Kind::BareStd | Kind::BareStdSpin)
    }

    /// Whether this kind has a cluster client (see [`Client::connect_cluster`]).
    pub fn clustered(self) -> bool {
        matches!(self, Kind::Valkey | Kind::Redis | Kind::Fred | Kind::Glide)
    }
}

/// A connected client of some [`Kind`].
pub enum Client {
    /// See [`Kind::Valkey`] and [`Kind::ValkeyRetry`].
    Valkey(Valkey),
    /// See [`Kind::Connection`].
    Connection(Box<Connection>),
    /// See [`Kind::BareTokio`], [`Kind::BareStd`] and [`Kind::BareStdSpin`].
    Bare(Box<Bare>),
    /// See [`Kind::Redis`].
    #[cfg(feature = "peers")]
    Redis(redis::aio::MultiplexedConnection),
    /// See [`Kind::Fred`].
    #[cfg(feature = "peers")]
    Fred(fred::clients::Client),
    /// See [`Kind::Glide`].
    #[cfg(feature = "peers")]
    Glide(Box<glide::GlideClient>),
    /// This crate's [`ValkeyCluster`] ([`Kind::Valkey`] on a cluster).
    ValkeyCluster(ValkeyCluster),
    /// The `redis` crate's async cluster connection ([`Kind::Redis`] on a
    /// cluster): clones share its connections. (`fred` on a cluster is a
    /// [`Client::Fred`] built with `ServerConfig::Clustered`.)
    #[cfg(feature = "peers")]
    RedisCluster(redis::cluster_async::ClusterConnection),
    /// `valkey-glide`'s cluster client ([`Kind::Glide`] on a cluster).
    #[cfg(feature = "peers")]
    GlideCluster(Box<glide::GlideClusterClient>),
}

impl Client {
    /// Connects a client of `kind` to `127.0.0.1:port`.
    pub async fn connect(kind: Kind, port: u16) -> Result<Client> {
        let host = "127.0.0.1";
        Ok(match kind {
            Kind::Valkey => Client::Valkey(Valkey::builder().host(host).port(port).build().await?),
            Kind::ValkeyRetry => Client::Valkey(
                Valkey::builder()
                    .host(host)
                    .port(port)
                    .retry(Retry::new(ExponentialBackoff::default(), 3))
                    .build()
                    .await?,
            ),
            Kind::Connection => Client::Connection(Box::new(
                Connection::connect(&ConnectionConfig::tcp(host, port)).await?,
            )),
            Kind::BareTokio => Client::Bare(Box::new(Bare::connect(port, false, false).await?)),
            Kind::BareStd => Client::Bare(Box::new(Bare::connect(port, true, false).await?)),
            Kind::BareStdSpin => Client::Bare(Box::new(Bare::connect(port, true, true).await?)),
            #[cfg(feature = "peers")]
            Kind::Redis => {
                let client = redis::Client::open(format!("redis://{host}:{port}/"))?;
                Client::Redis(client.get_multiplexed_async_connection().await?)
            }
            #[cfg(feature = "peers")]
            Kind::Fred => {
                use fred::prelude::{Builder, ClientLike, Config};
                let config = Config::from_url(&format!("redis://{host}:{port}"))?;
                let client = Builder::from_config(config).build()?;
                client.init().await?;
                Client::Fred(client)
            }
            #[cfg(feature = "peers")]
            Kind::Glide => {
                let config = glide::GlideClientConfiguration::with_address(host, port);
                Client::Glide(Box::new(glide::GlideClient::connect(config).await?))
            }
            #[cfg(not(feature = "peers"))]
            other => {
                return Err(format!("{} needs the `peers` feature", other.name()).into());
            }
        })
    }

    /// Connects the cluster client of `kind` (see [`Kind::clustered`]) to
    /// the cluster of these nodes, every one given as a seed.
    pub async fn connect_cluster(kind: Kind, seeds: &[(String, u16)]) -> Result<Client> {
        Ok(match kind {
            Kind::Valkey => {
                let mut builder = ValkeyCluster::builder();
                for (host, port) in seeds {
                    builder = builder.seed(host.as_str(), *port);
                }
                Client::ValkeyCluster(builder.build().await?)
            }
            #[cfg(feature = "peers")]
            Kind::Redis => {
                let urls = seeds.iter().map(|(h, p)| format!("redis://{h}:{p}/"));
                let client = redis::cluster::ClusterClient::new(urls)?;
                Client::RedisCluster(client.get_async_connection().await?)
            }
            #[cfg(feature = "peers")]
            Kind::Fred => {
                use fred::prelude::{Builder, ClientLike, Config, ServerConfig};
                let config = Config {
                    server: ServerConfig::new_clustered(seeds.to_vec()),
                    ..Config::default()
                };
                let client = Builder::from_config(config).build()?;
                client.init().await?;
                Client::Fred(client)
            }
            #[cfg(feature = "peers")]
            Kind::Glide => {
                let nodes = seeds
                    .iter()
                    .map(|(h, p)| glide::NodeAddress::new(h.as_str(), *p))
                    .collect();
                let config = glide::GlideClusterClientConfiguration::new(nodes);
                Client::GlideCluster(Box::new(glide::GlideClusterClient::connect(config).await?))
            }
            other => return Err(format!("{} has no cluster client here", other.name()).into()),
        })
    }

    /// A second handle on the same connection, for another task; `None` for
    /// a plain [`Connection`].
    pub fn share(&self) -> Option<Client> {
        Some(match self {
            Client::Valkey(c) => Client::Valkey(c.clone()),
            Client::Connection(_) | Client::Bare(_) => return None,
            #[cfg(feature = "peers")]
            Client::Redis(c) => Client::Redis(c.clone()),
            #[cfg(feature = "peers")]
            Client::Fred(c) => Client::Fred(c.clone()),
            #[cfg(feature = "peers")]
            Client::Glide(c) => Client::Glide(c.clone()),
            Client::ValkeyCluster(c) => Client::ValkeyCluster(c.clone()),
            #[cfg(feature = "peers")]
            Client::RedisCluster(c) => Client::RedisCluster(c.clone()),
            #[cfg(feature = "peers")]
            Client::GlideCluster(c) => Client::GlideCluster(c.clone()),
        })
    }

    /// `GET key`, the value as bytes.
    pub async fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        Ok(match self {
            Client::Valkey(c) => c.get::<Option<Bytes>>(key).await?,
            Client::Connection(c) => {
                let reply = c.request(&Cmd::new("GET").arg(key)).await?;
                valkey_client::FromValue::from_value(reply)?
            }
            Client::Bare(c) => c.get(key).await?,
            #[cfg(feature = "peers")]
            Client::Redis(c) => redis::cmd("GET").arg(key).query_async(c).await?,
            #[cfg(feature = "peers")]
            Client::Fred(c) => {
                use fred::prelude::KeysInterface;
                c.get::<Option<Bytes>, _>(key).await?
            }
            #[cfg(feature = "peers")]
            Client::Glide(c) => {
                glide::cmd::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Bytes>>(&**c)
                    .await?
            }
            Client::ValkeyCluster(c) => c.get::<Option<Bytes>>(key).await?,
            #[cfg(feature = "peers")]
            Client::RedisCluster(c) => redis::cmd("GET").arg(key).query_async(c).await?,
            #[cfg(feature = "peers")]
            Client::GlideCluster(c) => {
                glide::cmd::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Bytes>>(&**c)
                    .await?
            }
        })
    }

    /// `GET key`, the value as an owned `Vec<u8>`, each client through its
    /// own typed API (workload (g)).
    pub async fn get_vec(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(match self {
            Client::Valkey(c) => c.get::<Option<Vec<u8>>>(key).await?,
            Client::Connection(c) => {
                let reply = c.request(&Cmd::new("GET").arg(key)).await?;
                valkey_client::FromValue::from_value(reply)?
            }
            Client::Bare(c) => c.get(key).await?.map(|b| b.to_vec()),
            #[cfg(feature = "peers")]
            Client::Redis(c) => {
                use redis::AsyncCommands;
                c.get::<_, Option<Vec<u8>>>(key).await?
            }
            #[cfg(feature = "peers")]
            Client::Fred(c) => {
                use fred::prelude::KeysInterface;
                c.get::<Option<Vec<u8>>, _>(key).await?
            }
            #[cfg(feature = "peers")]
            Client::Glide(c) => {
                glide::cmd::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&**c)
                    .await?
            }
            Client::ValkeyCluster(c) => c.get::<Option<Vec<u8>>>(key).await?,
            #[cfg(feature = "peers")]
            Client::RedisCluster(c) => {
                use redis::AsyncCommands;
                c.get::<_, Option<Vec<u8>>>(key).await?
            }
            #[cfg(feature = "peers")]
            Client::GlideCluster(c) => {
                glide::cmd::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&**c)
                    .await?
            }
        })
    }

    /// `SET key <64-byte value>`.
    pub async fn set(&mut self, key: &str) -> Result<()> {
        match self {
            Client::Valkey(c) => c.set(key, &VALUE[..]).await?,
            Client::Connection(c) => {
                c.request(&Cmd::new("SET").arg(key).arg(&VALUE[..])).await?;
            }
            Client::Bare(c) => c.set_all(std::slice::from_ref(&key.to_string())).await?,
            #[cfg(feature = "peers")]
            Client::Redis(c) => {
                redis::cmd("SET")
                    .arg(key)
                    .arg(&VALUE[..])
                    .query_async::<()>(c)
                    .await?
            }
            #[cfg(feature = "peers")]
            Client::Fred(c) => {
                use fred::prelude::KeysInterface;
                c.set::<(), _, _>(key, Bytes::from_static(VALUE), None, None, false)
                    .await?
            }
            #[cfg(feature = "peers")]
            Client::Glide(c) => {
                glide::cmd::cmd("SET")
                    .arg(key)
                    .arg(Bytes::from_static(VALUE))
                    .query_async::<()>(&**c)
                    .await?
            }
            Client::ValkeyCluster(c) => c.set(key, &VALUE[..]).await?,
            #[cfg(feature = "peers")]
            Client::RedisCluster(c) => {
                redis::cmd("SET")
                    .arg(key)
                    .arg(&VALUE[..])
                    .query_async::<()>(c)
                    .await?
            }
            #[cfg(feature = "peers")]
            Client::GlideCluster(c) => {
                glide::cmd::cmd("SET")
                    .arg(key)
                    .arg(Bytes::from_static(VALUE))
                    .query_async::<()>(&**c)
                    .await?
            }
        }
        Ok(())
    }

    /// `SET key <64-byte value>` for every key, in one pipeline, built for
    /// this call: a [`Pipeline`] for us (sent with `Valkey::pipeline`,
    /// `Connection::send_pipeline` or `ValkeyCluster::pipeline`), the peers'
    /// pipeline APIs otherwise. On a cluster only ours is supported: it
    /// stores the keys of workload (d) once, and no workload times it.
    pub async fn set_pipeline(&mut self, keys: &[String]) -> Result<()> {
        let our_pipeline = || {
            let mut pipe = Pipeline::with_capacity(keys.len() * 96);
            for k in keys {
                pipe.cmd("SET").arg(k).arg(&VALUE[..]);
            }
            pipe
        };
        match self {
            Client::Valkey(c) => {
                for reply in c.pipeline(&mut our_pipeline()).await? {
                    reply?;
                }
            }
            Client::Connection(c) => {
                for reply in c.send_pipeline(&mut our_pipeline()).await? {
                    reply?;
                }
            }
            Client::Bare(c) => c.set_all(keys).await?,
            #[cfg(feature = "peers")]
            Client::Redis(c) => {
                let mut pipe = redis::pipe();
                for k in keys {
                    pipe.cmd("SET").arg(k).arg(&VALUE[..]).ignore();
                }
                pipe.query_async::<()>(c).await?;
            }
            #[cfg(feature = "peers")]
            Client::Fred(c) => {
                use fred::prelude::KeysInterface;
                let pipe = c.pipeline();
                for k in keys {
                    pipe.set::<(), _, _>(k.as_str(), Bytes::from_static(VALUE), None, None, false)
                        .await?;
                }
                pipe.all::<fred::types::Value>().await?;
            }
            #[cfg(feature = "peers")]
            Client::Glide(c) => {
                use glide::PipelineExt;
                let mut pipe = glide::pipe();
                for k in keys {
                    pipe.cmd("SET")
                        .arg(k.as_str())
                        .arg(Bytes::from_static(VALUE))
                        .ignore();
                }
                pipe.query_async::<()>(&**c).await?;
            }
            Client::ValkeyCluster(c) => {
                for reply in c.pipeline(&mut our_pipeline()).await? {
                    reply?;
                }
            }
            #[cfg(feature = "peers")]
            Client::RedisCluster(_) | Client::GlideCluster(_) => {
                return Err("no workload sends a pipeline through a peer's cluster client".into());
            }
        }
        Ok(())
    }
}
