//! The connection to the store: one Redis server's, or a Redis Cluster's (slot map, redirects
//! and per-node pipelines by the `redis` crate), and how script calls are grouped for it.

use std::collections::BTreeMap;

use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::{Cmd, Value};

use crate::store::Target;
use crate::Error;

/// One server's connection or a cluster's.
pub(crate) enum Conn {
    One(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    /// Connect to the store `t` names (scripts not loaded yet).
    pub(crate) fn open(t: &Target) -> Result<Self, Error> {
        use redis::IntoConnectionInfo as _;
        // rustls needs a process-wide provider for rediss:// (already set is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = || redis::TlsCertificates {
            client_tls: t
                .client_pem
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: t.ca_pem.clone(),
        };
        Ok(if t.is_cluster {
            let mut nodes = Vec::with_capacity(1 + t.seeds.len());
            for url in std::iter::once(&t.url).chain(&t.seeds) {
                nodes.push(url.as_str().into_connection_info()?);
            }
            let mut b = ClusterClientBuilder::new(nodes)
                .connection_timeout(t.timeout)
                .response_timeout(t.timeout)
                .retries(2);
            if let Some(pw) = &t.password {
                b = b.password(pw);
            }
            if t.has_certs() {
                b = b.certs(certs());
            }
            Conn::Cluster(Box::new(b.build()?.get_connection()?))
        } else {
            let mut info = t.url.as_str().into_connection_info()?;
            if let Some(pw) = &t.password {
                let settings = info.redis_settings().clone().set_password(pw);
                info = info.set_redis_settings(settings);
            }
            let client = if t.has_certs() {
                redis::Client::build_with_tls(info, certs())?
            } else {
                redis::Client::open(info)?
            };
            let conn = client.get_connection_with_timeout(t.timeout)?;
            conn.set_read_timeout(Some(t.timeout))?;
            conn.set_write_timeout(Some(t.timeout))?;
            Conn::One(conn)
        })
    }

    /// The connection, for commands it routes itself (one server; a cluster by key).
    pub(crate) fn get(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Conn::One(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }
}

/// A sent pipeline of commands whose replies are not needed.
pub(crate) fn exec_all(conn: &mut Conn, cmds: Vec<Cmd>) -> Result<(), Error> {
    match conn {
        Conn::One(c) => {
            let mut pipe = redis::pipe();
            for cmd in cmds {
                pipe.add_command(cmd).ignore();
            }
            pipe.exec(c)?;
        }
        Conn::Cluster(c) => {
            let mut pipe = redis::cluster::cluster_pipe();
            for cmd in cmds {
                pipe.add_command(cmd).ignore();
            }
            pipe.exec(c)?;
        }
    }
    Ok(())
}

/// A sent pipeline of commands, their replies in order.
pub(crate) fn query_all(conn: &mut Conn, cmds: Vec<Cmd>) -> Result<Vec<Value>, Error> {
    Ok(match conn {
        Conn::One(c) => {
            let mut pipe = redis::pipe();
            for cmd in cmds {
                pipe.add_command(cmd);
            }
            pipe.query(c)?
        }
        Conn::Cluster(c) => {
            let mut pipe = redis::cluster::cluster_pipe();
            for cmd in cmds {
                pipe.add_command(cmd);
            }
            pipe.query(c)?
        }
    })
}

/// Items grouped so that each group can go to one script call: by bucket on a cluster (one
/// hash slot per call), in arrival order on one server; at most `per_call` per group.
pub(crate) fn groups<T>(
    items: impl Iterator<Item = (u8, T)>,
    cluster: bool,
    per_call: usize,
) -> Vec<Vec<T>> {
    let mut by: BTreeMap<u8, Vec<T>> = BTreeMap::new();
    for (b, item) in items {
        by.entry(if cluster { b } else { 0 })
            .or_default()
            .push(item);
    }
    let mut out = Vec::new();
    for (_, mut list) in by {
        while !list.is_empty() {
            let rest = list.split_off(list.len().min(per_call));
            out.push(std::mem::replace(&mut list, rest));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_a_cluster_call_in_one_bucket() {
        let items = (0..1000u32).map(|i| ((i % 7) as u8, i));
        let calls = groups(items.clone(), true, 64);
        for c in &calls {
            assert!(c.len() <= 64);
            assert!(c.iter().all(|i| i % 7 == c[0] % 7), "{c:?}");
        }
        let mut all: Vec<u32> = calls.concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        // One server: any sets together, in arrival order.
        let one = groups(items, false, 64);
        assert_eq!(one.len(), 16);
        assert_eq!(one.concat(), (0..1000).collect::<Vec<_>>());
    }
}
