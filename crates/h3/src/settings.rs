//! The SETTINGS frame's parameters (RFC 9114 §7.2.4, RFC 9204 §5, RFC 9220
//! §3, RFC 9297 §2.1.1, draft-ietf-webtrans-http3).
//!
//! A SETTINGS payload is a list of (identifier, value) pairs, each a
//! variable-length integer. An identifier may appear once; those HTTP/2
//! defines and HTTP/3 does not are errors; unknown ones are kept and
//! otherwise ignored, as the RFC asks ([`Settings::unknown`]).
//!
//! WebTransport over HTTP/3 has changed its setting across drafts; the
//! three that browsers still send or look for are named:
//! SETTINGS_ENABLE_WEBTRANSPORT (draft-02), and the session count under
//! draft-07's codepoint and draft-13's.

use std::collections::BTreeSet;

use crate::error::{Error, ErrorCode, Misuse, Violation};
use crate::varint;

/// SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5).
pub const QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
/// SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §7.2.4.1).
pub const MAX_FIELD_SECTION_SIZE: u64 = 0x06;
/// SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 §5).
pub const QPACK_BLOCKED_STREAMS: u64 = 0x07;
/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220 §3).
pub const ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
/// SETTINGS_H3_DATAGRAM (RFC 9297 §2.1.1).
pub const H3_DATAGRAM: u64 = 0x33;
/// SETTINGS_ENABLE_WEBTRANSPORT (draft-ietf-webtrans-http3-02 §8.2): 0
/// or 1.
pub const ENABLE_WEBTRANSPORT: u64 = 0x2b60_3742;
/// SETTINGS_WEBTRANSPORT_MAX_SESSIONS under the codepoint of
/// draft-ietf-webtrans-http3-07 to -12.
pub const WEBTRANSPORT_MAX_SESSIONS_DRAFT07: u64 = 0xc671_706a;
/// SETTINGS_WT_MAX_SESSIONS (draft-ietf-webtrans-http3-13 §9.2).
pub const WT_MAX_SESSIONS: u64 = 0x14e9_cd29;

/// Whether `id` is one of the HTTP/2 settings that HTTP/3 reserves (0x00
/// and 0x02 to 0x05): receiving one is an H3_SETTINGS_ERROR.
pub const fn is_http2_setting(id: u64) -> bool {
    matches!(id, 0x00 | 0x02..=0x05)
}

/// The parameters of one SETTINGS frame. `None` means "not sent", which
/// stands for the parameter's default (see the accessors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The largest dynamic table capacity the sender's QPACK decoder
    /// allows.
    pub qpack_max_table_capacity: Option<u64>,
    /// The largest field section the sender accepts (name + value + 32 per
    /// field line).
    pub max_field_section_size: Option<u64>,
    /// How many streams the sender's QPACK decoder lets be blocked.
    pub qpack_blocked_streams: Option<u64>,
    /// The sender accepts extended CONNECT (RFC 9220).
    pub enable_connect_protocol: Option<bool>,
    /// The sender supports HTTP Datagrams (RFC 9297).
    pub h3_datagram: Option<bool>,
    /// The sender supports WebTransport as draft-02 says it
    /// (SETTINGS_ENABLE_WEBTRANSPORT).
    pub enable_webtransport: Option<bool>,
    /// The WebTransport sessions the sender accepts on the connection,
    /// under draft-07's codepoint.
    pub webtransport_max_sessions_draft07: Option<u64>,
    /// The WebTransport sessions the sender accepts on the connection
    /// (SETTINGS_WT_MAX_SESSIONS, draft-13).
    pub wt_max_sessions: Option<u64>,
    /// Every other parameter, in the order received.
    pub unknown: Vec<(u64, u64)>,
}

impl Settings {
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0 if not sent.
    pub fn qpack_max_table_capacity(&self) -> u64 {
        self.qpack_max_table_capacity.unwrap_or(0)
    }

    /// SETTINGS_MAX_FIELD_SECTION_SIZE, unlimited (`u64::MAX`) if not sent.
    pub fn max_field_section_size(&self) -> u64 {
        self.max_field_section_size.unwrap_or(u64::MAX)
    }

    /// SETTINGS_QPACK_BLOCKED_STREAMS, 0 if not sent.
    pub fn qpack_blocked_streams(&self) -> u64 {
        self.qpack_blocked_streams.unwrap_or(0)
    }

    /// Whether the sender speaks WebTransport over HTTP/3 in any of the
    /// drafts' ways (draft-02's flag, or a session count above 0 under
    /// either codepoint).
    pub fn supports_webtransport(&self) -> bool {
        self.enable_webtransport == Some(true)
            || self.webtransport_max_sessions_draft07.is_some_and(|n| n > 0)
            || self.wt_max_sessions.is_some_and(|n| n > 0)
    }

    /// Parses a SETTINGS payload.
    ///
    /// ```
    /// use tether_h3::settings::Settings;
    /// // QPACK_MAX_TABLE_CAPACITY = 4096, an unknown 0x21 = 0.
    /// let s = Settings::parse(&[0x01, 0x50, 0x00, 0x21, 0x00])?;
    /// assert_eq!(s.qpack_max_table_capacity, Some(4096));
    /// assert_eq!(s.unknown, [(0x21, 0)]);
    /// # Ok::<(), tether_h3::Error>(())
    /// ```
    pub fn parse(payload: &[u8]) -> Result<Settings, Error> {
        let layout = Error::new(
            ErrorCode::H3_FRAME_ERROR,
            Violation::FrameLayout(crate::frame_types::SETTINGS),
        );
        let mut settings = Settings::default();
        let mut seen = BTreeSet::new();
        let mut rest = payload;
        while !rest.is_empty() {
            let (id, n) = varint::decode(rest).ok_or(layout)?;
            rest = rest.get(n..).unwrap_or_default();
            let (value, n) = varint::decode(rest).ok_or(layout)?;
            rest = rest.get(n..).unwrap_or_default();
            let error = |violation| Error::new(ErrorCode::H3_SETTINGS_ERROR, violation);
            if !seen.insert(id) {
                return Err(error(Violation::DuplicateSetting(id)));
            }
            if is_http2_setting(id) {
                return Err(error(Violation::Http2Setting(id)));
            }
            let flag = |value| match value {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(error(Violation::InvalidSettingValue(id))),
            };
            match id {
                QPACK_MAX_TABLE_CAPACITY => settings.qpack_max_table_capacity = Some(value),
                MAX_FIELD_SECTION_SIZE => settings.max_field_section_size = Some(value),
                QPACK_BLOCKED_STREAMS => settings.qpack_blocked_streams = Some(value),
                ENABLE_CONNECT_PROTOCOL => settings.enable_connect_protocol = Some(flag(value)?),
                H3_DATAGRAM => settings.h3_datagram = Some(flag(value)?),
                ENABLE_WEBTRANSPORT => settings.enable_webtransport = Some(flag(value)?),
                WEBTRANSPORT_MAX_SESSIONS_DRAFT07 => {
                    settings.webtransport_max_sessions_draft07 = Some(value);
                }
                WT_MAX_SESSIONS => settings.wt_max_sessions = Some(value),
                _ => settings.unknown.push((id, value)),
            }
        }
        Ok(settings)
    }

    /// Appends the payload (not the frame header) to `dst`: the known
    /// parameters that are set, then the unknown ones.
    pub fn encode_payload(&self, dst: &mut Vec<u8>) -> Result<(), Misuse> {
        let known = [
            (QPACK_MAX_TABLE_CAPACITY, self.qpack_max_table_capacity),
            (MAX_FIELD_SECTION_SIZE, self.max_field_section_size),
            (QPACK_BLOCKED_STREAMS, self.qpack_blocked_streams),
            (
                ENABLE_CONNECT_PROTOCOL,
                self.enable_connect_protocol.map(u64::from),
            ),
            (H3_DATAGRAM, self.h3_datagram.map(u64::from)),
            (ENABLE_WEBTRANSPORT, self.enable_webtransport.map(u64::from)),
            (
                WEBTRANSPORT_MAX_SESSIONS_DRAFT07,
                self.webtransport_max_sessions_draft07,
            ),
            (WT_MAX_SESSIONS, self.wt_max_sessions),
        ];
        for (id, value) in known {
            if let Some(value) = value {
                varint::encode(id, dst)?;
                varint::encode(value, dst)?;
            }
        }
        for &(id, value) in &self.unknown {
            if is_http2_setting(id) || known.iter().any(|&(k, _)| k == id) {
                return Err(Misuse::KnownSetting(id));
            }
            varint::encode(id, dst)?;
            varint::encode(value, dst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_error(payload: &[u8]) -> Violation {
        let e = Settings::parse(payload).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_SETTINGS_ERROR);
        e.violation
    }

    #[test]
    fn every_known_setting_round_trips() {
        let s = Settings {
            qpack_max_table_capacity: Some(4096),
            max_field_section_size: Some(16 * 1024),
            qpack_blocked_streams: Some(16),
            enable_connect_protocol: Some(true),
            h3_datagram: Some(false),
            enable_webtransport: Some(true),
            webtransport_max_sessions_draft07: Some(1),
            wt_max_sessions: Some(2),
            unknown: vec![(0x21, 7), (0x1f * 3 + 0x21, 0)],
        };
        assert!(s.supports_webtransport());
        assert!(!Settings::default().supports_webtransport());
        let mut wire = Vec::new();
        s.encode_payload(&mut wire).unwrap();
        assert_eq!(Settings::parse(&wire).unwrap(), s);
        assert_eq!(Settings::parse(&[]).unwrap(), Settings::default());
        let d = Settings::default();
        assert_eq!(d.qpack_max_table_capacity(), 0);
        assert_eq!(d.qpack_blocked_streams(), 0);
        assert_eq!(d.max_field_section_size(), u64::MAX);
    }

    #[test]
    fn duplicates_and_http2_identifiers_are_refused() {
        assert_eq!(
            settings_error(&[0x01, 0x00, 0x01, 0x00]),
            Violation::DuplicateSetting(1)
        );
        assert_eq!(
            settings_error(&[0x21, 0x00, 0x21, 0x01]),
            Violation::DuplicateSetting(0x21)
        );
        for id in [0x00, 0x02, 0x03, 0x04, 0x05] {
            assert_eq!(
                settings_error(&[id, 0x00]),
                Violation::Http2Setting(u64::from(id))
            );
        }
        assert_eq!(settings_error(&[0x08, 0x02]), Violation::InvalidSettingValue(8));
        assert_eq!(
            settings_error(&[0x33, 0x02]),
            Violation::InvalidSettingValue(0x33)
        );
        // SETTINGS_ENABLE_WEBTRANSPORT is 0 or 1.
        assert_eq!(
            settings_error(&[0xab, 0x60, 0x37, 0x42, 0x02]),
            Violation::InvalidSettingValue(ENABLE_WEBTRANSPORT)
        );
    }

    #[test]
    fn a_truncated_pair_is_a_frame_error() {
        let e = Settings::parse(&[0x01]).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_FRAME_ERROR);
        let e = Settings::parse(&[0x01, 0x40]).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_FRAME_ERROR);
    }

    #[test]
    fn unknown_settings_with_known_identifiers_are_not_encoded() {
        let s = Settings {
            unknown: vec![(0x06, 1)],
            ..Settings::default()
        };
        assert_eq!(s.encode_payload(&mut Vec::new()), Err(Misuse::KnownSetting(6)));
    }
}
