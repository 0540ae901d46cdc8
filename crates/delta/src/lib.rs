#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod apply;
mod checksum;
mod encode;
mod int;

pub use apply::{apply, target_len};
pub use checksum::checksum;
pub use encode::{encode, encode_str};

/// Why a delta could not be applied. A delta that is not one (bytes from
/// the network) and a delta applied to a base it was not made from are
/// both errors; which one it is cannot always be told apart, since a
/// wrong base shows only as copies out of range or a checksum that does
/// not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The delta is not in the format: a number, a command letter or the
    /// end is missing or wrong.
    Malformed,
    /// The target the delta declares is longer than the caller's limit.
    TooLarge,
    /// A copy reaches past the end of the base: the base is not the one
    /// the delta was made from (or the delta is damaged).
    CopyOutOfRange,
    /// The commands build more or fewer bytes than the delta declares.
    LengthMismatch,
    /// What was built does not have the delta's checksum: the base is not
    /// the one the delta was made from (or the delta is damaged).
    ChecksumMismatch,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Malformed => "malformed delta",
            Error::TooLarge => "delta target larger than allowed",
            Error::CopyOutOfRange => "delta copies past the end of its base",
            Error::LengthMismatch => "delta builds a target of another length than it declares",
            Error::ChecksumMismatch => "delta checksum does not match (wrong base)",
        })
    }
}

impl core::error::Error for Error {}
