//! The checksum a delta ends with: Fossil's 32-bit sum of the target
//! read as big-endian words (the last, short word padded with zeros).

/// Fossil's checksum of `data`: the wrapping sum of its big-endian 32-bit
/// words, a final partial word taken as if padded with zero bytes.
///
/// Any one byte changed changes it (by the byte's difference, shifted by
/// its place in its word: never a multiple of 2³²).
///
/// ```
/// assert_eq!(tether_delta::checksum(b""), 0);
/// assert_eq!(tether_delta::checksum(b"\x00\x00\x01\x02"), 0x0102);
/// assert_eq!(tether_delta::checksum(b"\x01"), 0x0100_0000);
/// ```
pub fn checksum(data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(4);
    let mut sum: u32 = 0;
    for word in words.by_ref() {
        let mut be = [0u8; 4];
        be.copy_from_slice(word);
        sum = sum.wrapping_add(u32::from_be_bytes(be));
    }
    let mut tail = [0u8; 4];
    for (slot, byte) in tail.iter_mut().zip(words.remainder()) {
        *slot = *byte;
    }
    sum.wrapping_add(u32::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fossil's own formulation, four lanes summed apart then combined,
    /// written out to check that the word sum is the same number.
    fn fossil(z: &[u8]) -> u32 {
        let (mut s0, mut s1, mut s2, mut s3) = (0u32, 0u32, 0u32, 0u32);
        let mut chunks = z.chunks_exact(4);
        for c in chunks.by_ref() {
            s0 = s0.wrapping_add(u32::from(c[0]));
            s1 = s1.wrapping_add(u32::from(c[1]));
            s2 = s2.wrapping_add(u32::from(c[2]));
            s3 = s3.wrapping_add(u32::from(c[3]));
        }
        s3 = s3
            .wrapping_add(s2 << 8)
            .wrapping_add(s1 << 16)
            .wrapping_add(s0 << 24);
        let r = chunks.remainder();
        if r.len() >= 3 {
            s3 = s3.wrapping_add(u32::from(r[2]) << 8);
        }
        if r.len() >= 2 {
            s3 = s3.wrapping_add(u32::from(r[1]) << 16);
        }
        if !r.is_empty() {
            s3 = s3.wrapping_add(u32::from(r[0]) << 24);
        }
        s3
    }

    #[test]
    fn agrees_with_the_lane_form() {
        let data: alloc::vec::Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(checksum(&data[..n]), fossil(&data[..n]), "{n}");
        }
    }
}
