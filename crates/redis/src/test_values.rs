//! What the unit tests of several modules build alike: a command's
//! arguments as text, a bulk string reply, and the keys of a plain or a
//! cluster deployment (a slot per topic, or partitioned).

use redis::{Arg, Cmd, Value};

use crate::commands::Keys;

/// `cmd`'s arguments, each as text (`<other>` for a cursor argument).
pub(crate) fn args(cmd: &Cmd) -> Vec<String> {
    cmd.args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "<other>".to_owned(),
        })
        .collect()
}

/// A bulk string reply.
pub(crate) fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// The keys under `prefix` on one Redis server.
pub(crate) fn plain(prefix: &str) -> Keys {
    Keys::new(prefix, false, 0)
}

/// The keys under `prefix` on a Redis Cluster, a slot per topic.
pub(crate) fn cluster(prefix: &str) -> Keys {
    Keys::new(prefix, true, 0)
}

/// The keys under `prefix` on a Redis Cluster of `partitions` partitions.
pub(crate) fn partitioned(prefix: &str, partitions: usize) -> Keys {
    Keys::new(prefix, true, partitions)
}
