//! Unpredictable bytes from the operating system (RFC 6455 section 10.3:
//! masking keys and the handshake nonce must not be guessable), buffered so
//! that masking a frame does not cost a system call.

use std::io;

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| io::Error::other(format!("no random source: {e}")))
}

/// The 16 random bytes of a `Sec-WebSocket-Key`.
pub(crate) fn nonce() -> io::Result<[u8; 16]> {
    let mut nonce = [0u8; 16];
    fill(&mut nonce)?;
    Ok(nonce)
}

/// Masking keys for one connection, drawn 64 at a time from the OS.
pub(crate) fn mask_source() -> io::Result<tether_ws::MaskSource> {
    let mut pool = [0u8; 256];
    fill(&mut pool)?;
    let mut used = 0;
    Ok(Box::new(move || {
        if used == pool.len() {
            // A failure here is next to impossible once the first fill
            // worked; the pool's old bytes are still random, so reusing them
            // beats panicking in the middle of a send.
            let _ = fill(&mut pool);
            used = 0;
        }
        let key = pool
            .get(used..used + 4)
            .and_then(|key| <[u8; 4]>::try_from(key).ok())
            .unwrap_or_default();
        used += 4;
        key
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_vary_across_refills() {
        let mut source = mask_source().unwrap();
        let keys: Vec<[u8; 4]> = (0..200).map(|_| source()).collect();
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        // 200 draws of 32 bits: a repeat has odds of about 5 in a million.
        assert!(distinct.len() >= 199, "{} distinct keys", distinct.len());
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
