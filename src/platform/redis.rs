//! One Redis link for a node: a single server or a cluster, behind the same calls.

use anyhow::{bail, Context};
use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

/// Where Redis lives, parsed from `REDIS_URL`.
///
/// `redis://host:port/db` is one server. A cluster is either `redis+cluster://h1:p1,h2:p2`
/// or a comma-separated list of `redis://` seed nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = rest
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            if nodes.is_empty() {
                bail!("REDIS_URL names a cluster with no nodes");
            }
            return Ok(Self::Cluster(nodes));
        }
        let parts: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts
            .iter()
            .any(|p| !(p.starts_with("redis://") || p.starts_with("rediss://")))
        {
            bail!("REDIS_URL must use redis://, rediss:// or redis+cluster://");
        }
        match parts.as_slice() {
            [] => bail!("REDIS_URL is empty"),
            [one] => Ok(Self::Single((*one).to_owned())),
            many => Ok(Self::Cluster(
                many.iter().map(|p| (*p).to_owned()).collect(),
            )),
        }
    }

    /// The nodes a pub/sub subscriber may attach to. In a cluster, PUBLISH reaches every
    /// node, so any one of them will do.
    pub fn subscriber_nodes(&self) -> Vec<String> {
        match self {
            Self::Single(url) => vec![url.clone()],
            Self::Cluster(nodes) => nodes.clone(),
        }
    }
}

/// A multiplexed command connection that reconnects by itself.
#[derive(Clone)]
pub enum RedisLink {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisLink {
    pub async fn connect(target: &RedisTarget) -> anyhow::Result<Self> {
        match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).context("parsing REDIS_URL")?;
                let manager = client
                    .get_connection_manager()
                    .await
                    .context("connecting to Redis")?;
                Ok(Self::Single(manager))
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::new(nodes.clone()).context("parsing REDIS_URL")?;
                let conn = client
                    .get_async_connection()
                    .await
                    .context("connecting to Redis Cluster")?;
                Ok(Self::Cluster(conn))
            }
        }
    }

    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            Self::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Self::Cluster(conn) => cmd.query_async(&mut conn.clone()).await,
        }
    }

    pub async fn query_pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        match self {
            Self::Single(conn) => pipe.query_async(&mut conn.clone()).await,
            Self::Cluster(conn) => pipe.query_async(&mut conn.clone()).await,
        }
    }

    /// Runs a script by its digest (EVALSHA), loading it first where the server lacks it. On a
    /// cluster the invocation's key picks the node, so a script must touch one key (or slot).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> redis::RedisResult<T> {
        match self {
            Self::Single(conn) => invocation.invoke_async(&mut conn.clone()).await,
            Self::Cluster(conn) => invocation.invoke_async(&mut conn.clone()).await,
        }
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let reply: String = self.query(&redis::cmd("PING")).await?;
        if reply != "PONG" {
            bail!("unexpected PING reply {reply:?}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_cluster_forms() -> anyhow::Result<()> {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379")?,
            RedisTarget::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            RedisTarget::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")?,
            RedisTarget::Cluster(vec![
                "redis://127.0.0.1:7000".into(),
                "redis://127.0.0.1:7001".into()
            ])
        );
        assert_eq!(
            RedisTarget::parse("redis://a:1, redis://b:2")?,
            RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert!(RedisTarget::parse("http://x").is_err());
        assert!(RedisTarget::parse("redis+cluster://").is_err());
        Ok(())
    }
}
