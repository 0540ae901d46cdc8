//! The echo written as tokio-tungstenite's own echo-server example writes
//! it, for any crate whose socket is a `Stream` of messages and a `Sink` of
//! them: the socket split in two halves and every data message forwarded
//! from one into the other. `forward` flushes the sink only when the stream
//! has nothing ready, so messages that arrive together go back in one
//! write; a loop of `send` (the servers without `--forward`) flushes every
//! message alone. With one message in flight per connection the two make
//! the same system calls; with several, forwarding makes fewer.

use std::future::ready;

use futures_util::{Sink, Stream, StreamExt, TryStreamExt};

/// Echoes every message for which `is_data` holds, until the stream ends
/// or fails.
pub async fn echo<S, M, E>(ws: S, is_data: fn(&M) -> bool) -> Result<(), E>
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E>,
{
    let (write, read) = ws.split();
    read.try_filter(move |message| ready(is_data(message)))
        .forward(write)
        .await
}
