//! The connection each bridge thread holds: to one Redis server, or to a
//! Redis Cluster through the `redis` crate's cluster client.

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Cmd, Connection, ErrorKind, RedisError, Value};

use crate::config::RedisConfig;
use crate::sentinel::Sentinel;
use crate::tls::TlsFiles;

/// Where the bridge connects: one Redis server, a Redis Cluster, or the
/// master the sentinels name (a connection to it is one server's).
pub(crate) enum Client {
    Single(redis::Client),
    Cluster(ClusterClient),
    Sentinel(Sentinel),
}

/// A thread's connection: to one server, or the `redis` crate's cluster
/// connection (which routes each command to the node of its key's slot,
/// follows `MOVED` and `ASK`, and finds the new primary after a
/// failover).
pub(crate) enum Con {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

/// Attempts of a command on a cluster (the crate's own retries, for
/// redirections and a node that went away) before the bridge counts the
/// connection as lost and reconnects with its backoff.
const CLUSTER_RETRIES: u32 = 3;

impl Client {
    /// The client of `config.url`, over TLS with `tls` (`rediss://`,
    /// [`TlsFiles::load`]). The reason when it cannot be made never holds
    /// the URL.
    pub(crate) fn open(config: &RedisConfig, tls: Option<TlsFiles>) -> Result<Client, String> {
        let url = config.url.as_str();
        if let Some(sentinel) = crate::sentinel::parse_url(url)? {
            let password = config.sentinel_password.clone();
            return Ok(Client::Sentinel(Sentinel::new(
                sentinel,
                password,
                tls.map(|tls| tls.certificates),
                config.sentinel_tls,
            )));
        }
        if config.sentinel_password.is_some() {
            return Err("a sentinel password is given for a URL without Sentinel: \
                 use redis+sentinel:// (or rediss+sentinel://)"
                .to_owned());
        }
        match crate::config::cluster_nodes(url)? {
            None => match tls {
                Some(tls) => redis::Client::build_with_tls(url, tls.certificates),
                None => redis::Client::open(url),
            }
            .map(Client::Single)
            .map_err(|e| e.to_string()),
            Some(nodes) => {
                let mut builder = ClusterClient::builder(nodes)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.command_timeout)
                    .retries(CLUSTER_RETRIES)
                    .min_retry_wait(10)
                    .max_retry_wait(200);
                if let Some(tls) = tls {
                    builder = builder.certs(tls.certificates);
                }
                builder.build().map(Client::Cluster).map_err(|e| e.to_string())
            }
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Client::Cluster(_))
    }

    /// The sentinels, if the master is theirs to name.
    pub(crate) fn sentinel(&self) -> Option<&Sentinel> {
        match self {
            Client::Sentinel(sentinel) => Some(sentinel),
            _ => None,
        }
    }
}

impl Con {
    /// Sends one command; its reply (an error reply is an error).
    pub(crate) fn query(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Con::Single(con) => cmd.query(con),
            Con::Cluster(con) => cmd.query(&mut **con),
        }
    }

    /// Sends `cmds` in order; each one's reply, an error reply as an
    /// `Err` of its own, up to the first failure of the connection (the
    /// second value; the commands after it were maybe not sent, and that
    /// one maybe ran). One round trip to one server; on a cluster, one a
    /// command (the crate's cluster pipelines fail as a whole at any error
    /// reply: see [`Con::send_all`]).
    pub(crate) fn pipeline(&mut self, cmds: &[Cmd]) -> (Vec<Result<Value, RedisError>>, Option<RedisError>) {
        match self {
            Con::Single(con) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                match pipe.query::<Vec<Value>>(con) {
                    Ok(replies) if replies.len() == cmds.len() => (
                        replies
                            .into_iter()
                            .map(|reply| match reply {
                                Value::ServerError(e) => Err(e.into()),
                                other => Ok(other),
                            })
                            .collect(),
                        None,
                    ),
                    // Cannot happen with a sane server; the connection is
                    // out of step, so make it again.
                    Ok(_) => (
                        Vec::new(),
                        Some(RedisError::from((
                            redis::ErrorKind::Parse,
                            "pipeline reply of the wrong length",
                        ))),
                    ),
                    Err(e) => (Vec::new(), Some(e)),
                }
            }
            Con::Cluster(con) => {
                let mut replies = Vec::with_capacity(cmds.len());
                for cmd in cmds {
                    match cmd.query::<Value>(&mut **con) {
                        Err(e) if !crate::commands::is_server_error(&e) => return (replies, Some(e)),
                        reply => replies.push(reply),
                    }
                }
                (replies, None)
            }
        }
    }
}

impl Con {
    /// `WAIT replicas timeout` on the primaries that hold `slots` (one
    /// server: on it, whatever the slots): how many replicas have every
    /// write this connection made, the fewest of any primary asked. A
    /// primary counts only the writes made on its own connection, which
    /// is this one's.
    pub(crate) fn wait(
        &mut self,
        replicas: usize,
        timeout: std::time::Duration,
        slots: &[u16],
    ) -> Result<usize, RedisError> {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1));
        match self {
            Con::Single(con) => cmd.query(con),
            Con::Cluster(con) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let mut fewest = usize::MAX;
                for &slot in slots {
                    let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
                    let reply = con.route_command(&cmd, RoutingInfo::SingleNode(route))?;
                    fewest = fewest.min(redis::from_redis_value(reply)?);
                }
                Ok(fewest)
            }
        }
    }

    /// The replicas online (`INFO replication`: each `slaveN` line whose
    /// state is `online`) of the server, or on a cluster the fewest of
    /// any primary's: every primary holds some topics' streams, and a
    /// publish to one with too few is refused. An error reply is Redis
    /// refusing to say (an ACL). Not `connected_slaves`, which counts a
    /// replica still taking its first copy, nor `WAIT 0 0`, which counts
    /// only the replicas that have acknowledged this connection's last
    /// write (they do so about once a second): a count taken right after
    /// a batch would come short of the replicas there.
    pub(crate) fn replicas(&mut self) -> Result<usize, RedisError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("replication");
        match self {
            Con::Single(con) => {
                let info: String = cmd.query(con)?;
                Ok(online_replicas(&info))
            }
            Con::Cluster(con) => {
                use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
                let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                // Without a policy to combine them, each primary's answer
                // under its address.
                let Value::Map(answers) = con.route_command(&cmd, every)? else {
                    return Err(RedisError::from((
                        ErrorKind::Parse,
                        "INFO: not an answer per primary",
                    )));
                };
                let mut fewest = None::<usize>;
                for (_, answer) in answers {
                    let info: String = redis::from_redis_value(answer)?;
                    let online = online_replicas(&info);
                    fewest = Some(fewest.map_or(online, |f| f.min(online)));
                }
                fewest.ok_or_else(|| RedisError::from((ErrorKind::Parse, "INFO: no primary answered")))
            }
        }
    }

    /// Sends `cmds` at once; each one's reply, in order. One round trip to
    /// one server; on a cluster, the `redis` crate's cluster pipeline (the
    /// commands for each node in one round trip, the nodes at once; those
    /// redirected, as after a failover, sent again one by one). All or
    /// nothing: any error reply, or any node lost, fails the whole call,
    /// and the other commands may or may not have run. The caller counts
    /// the connection as lost, and reads again or refuses what it sent.
    pub(crate) fn send_all(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>, RedisError> {
        let replies: Vec<Value> = match self {
            Con::Single(con) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query(con)?
            }
            Con::Cluster(con) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query(con)?
            }
        };
        if replies.len() != cmds.len() {
            return Err(RedisError::from((
                ErrorKind::Parse,
                "pipeline reply of the wrong length",
            )));
        }
        Ok(replies)
    }
}

/// The connection a thread holds while it is up; an error (treated like a
/// lost connection) if it has none.
pub(crate) fn connected(con: &mut Option<Con>) -> Result<&mut Con, RedisError> {
    con.as_mut()
        .ok_or_else(|| RedisError::from((ErrorKind::Io, "not connected to Redis")))
}

/// The replicas `INFO replication` lists as online: its `slaveN:` lines
/// (`replicaN:` too, should a server name them so) whose fields hold
/// `state=online`. One still taking its first copy (`wait_bgsave`,
/// `send_bulk`) does not count: it acknowledges nothing yet.
pub(crate) fn online_replicas(info: &str) -> usize {
    info.lines()
        .filter(|line| {
            let Some((key, fields)) = line.split_once(':') else {
                return false;
            };
            let numbered = key
                .strip_prefix("slave")
                .or_else(|| key.strip_prefix("replica"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            numbered && fields.split(',').any(|field| field.trim() == "state=online")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::online_replicas;

    #[test]
    fn online_replicas_are_counted_from_info_replication() {
        let primary = "# Replication\r\nrole:master\r\nconnected_slaves:3\r\n\
            slave0:ip=10.0.0.2,port=6379,state=online,offset=1234,lag=0\r\n\
            slave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0,lag=0\r\n\
            slave2:ip=10.0.0.4,port=6379,state=online,offset=1234,lag=1\r\n\
            master_failover_state:no-failover\r\nmaster_repl_offset:1234\r\n";
        assert_eq!(online_replicas(primary), 2);
        let alone = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n";
        assert_eq!(online_replicas(alone), 0);
        // A replica's own fields are not replicas of it.
        let replica = "role:slave\r\nmaster_host:10.0.0.1\r\nslave_read_only:1\r\n\
            slave_repl_offset:10\r\nreplica_announced:1\r\nconnected_slaves:0\r\n";
        assert_eq!(online_replicas(replica), 0);
        assert_eq!(online_replicas(""), 0);
        assert_eq!(online_replicas("slave:state=online\nslavex:state=online\n"), 0);
    }
}
