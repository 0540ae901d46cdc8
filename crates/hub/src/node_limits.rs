//! What the nodes of a cluster share about their users beside the topics,
//! whichever bus carries it: each node's open connections per subject
//! (so that a per-subject connection limit holds over the cluster), and
//! the revoked tokens. A bridge (`tether-redis`, `tether-nats`) calls
//! the embedder's [`NodeLimits`] from its own thread.

use std::collections::HashMap;
use std::sync::Arc;

/// What a node shares with the others through a bus about its users:
/// the server implements it over its hub's shared state, and hands it to
/// its bridge (`share_limits` of `tether-redis`'s or `tether-nats`'s
/// bridge), which calls it every period from its own thread, never from
/// an event loop.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use tether_hub::NodeLimits;
///
/// #[derive(Default)]
/// struct Counts {
///     here: Vec<(Arc<str>, usize)>,
///     elsewhere: Mutex<HashMap<Arc<str>, usize>>,
///     revoked: Mutex<Vec<(String, u64)>>,
/// }
///
/// impl NodeLimits for Counts {
///     fn connections_here(&self) -> Vec<(Arc<str>, usize)> {
///         self.here.clone()
///     }
///     fn set_connections_elsewhere(&self, counts: HashMap<Arc<str>, usize>) {
///         *self.elsewhere.lock().unwrap_or_else(|e| e.into_inner()) = counts;
///     }
///     fn revoked(&self, entries: Vec<(String, u64)>) {
///         self.revoked.lock().unwrap_or_else(|e| e.into_inner()).extend(entries);
///     }
/// }
///
/// let limits: Arc<dyn NodeLimits> = Arc::new(Counts::default());
/// limits.set_connections_elsewhere(HashMap::from([(Arc::from("alice"), 2)]));
/// assert!(limits.connections_here().is_empty());
/// ```
pub trait NodeLimits: Send + Sync {
    /// This node's open connections, by subject.
    fn connections_here(&self) -> Vec<(Arc<str>, usize)>;
    /// The other nodes' open connections by subject, summed, as just read
    /// (replacing what was read before).
    fn set_connections_elsewhere(&self, counts: HashMap<Arc<str>, usize>);
    /// Every revocation the bus holds, as `(entry, until)`: the entry as
    /// the bridge's revoker was given it (opaque text), until in Unix
    /// seconds. Called when the node connects and whenever they changed;
    /// entries already known come again.
    fn revoked(&self, entries: Vec<(String, u64)>);
}
