//! SETTINGS (RFC 9113 §6.5) with SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC
//! 8441 §3).

use super::header::{
    DEFAULT_MAX_FRAME_SIZE, FrameHeader, FrameKind, MAX_FRAME_SIZE_LIMIT, flags, write_header,
};
use super::window_update::MAX_WINDOW_SIZE;
use crate::error::{Error, ErrorCode, Misuse, Violation};

/// One SETTINGS parameter, its value checked against its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1).
    HeaderTableSize(u32),
    /// SETTINGS_ENABLE_PUSH (0x2): 0 or 1.
    EnablePush(bool),
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
    MaxConcurrentStreams(u32),
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4): at most 2^31-1.
    InitialWindowSize(u32),
    /// SETTINGS_MAX_FRAME_SIZE (0x5): 16384..=16777215.
    MaxFrameSize(u32),
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    MaxHeaderListSize(u32),
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441): 0 or 1.
    EnableConnectProtocol(bool),
    /// An identifier this crate does not know: kept so that a frame can be
    /// re-encoded, and ignored by [`Settings::apply`] (§6.5.2).
    Unknown {
        /// The identifier.
        id: u16,
        /// The value.
        value: u32,
    },
}

impl Setting {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL.
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

    /// Reads an identifier and value as received. A value out of range is
    /// a connection error: PROTOCOL_ERROR for ENABLE_PUSH,
    /// ENABLE_CONNECT_PROTOCOL and MAX_FRAME_SIZE, FLOW_CONTROL_ERROR for
    /// INITIAL_WINDOW_SIZE.
    pub fn from_pair(id: u16, value: u32) -> Result<Self, Error> {
        let invalid = |code| Error::connection(code, Violation::InvalidSetting(id));
        let flag = |value| match value {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid(ErrorCode::PROTOCOL_ERROR)),
        };
        Ok(match id {
            Self::HEADER_TABLE_SIZE => Self::HeaderTableSize(value),
            Self::ENABLE_PUSH => Self::EnablePush(flag(value)?),
            Self::MAX_CONCURRENT_STREAMS => Self::MaxConcurrentStreams(value),
            Self::INITIAL_WINDOW_SIZE if value > MAX_WINDOW_SIZE => {
                return Err(invalid(ErrorCode::FLOW_CONTROL_ERROR));
            }
            Self::INITIAL_WINDOW_SIZE => Self::InitialWindowSize(value),
            Self::MAX_FRAME_SIZE if !(DEFAULT_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&value) => {
                return Err(invalid(ErrorCode::PROTOCOL_ERROR));
            }
            Self::MAX_FRAME_SIZE => Self::MaxFrameSize(value),
            Self::MAX_HEADER_LIST_SIZE => Self::MaxHeaderListSize(value),
            Self::ENABLE_CONNECT_PROTOCOL => Self::EnableConnectProtocol(flag(value)?),
            id => Self::Unknown { id, value },
        })
    }

    /// The identifier on the wire.
    pub const fn id(&self) -> u16 {
        match self {
            Self::HeaderTableSize(_) => Self::HEADER_TABLE_SIZE,
            Self::EnablePush(_) => Self::ENABLE_PUSH,
            Self::MaxConcurrentStreams(_) => Self::MAX_CONCURRENT_STREAMS,
            Self::InitialWindowSize(_) => Self::INITIAL_WINDOW_SIZE,
            Self::MaxFrameSize(_) => Self::MAX_FRAME_SIZE,
            Self::MaxHeaderListSize(_) => Self::MAX_HEADER_LIST_SIZE,
            Self::EnableConnectProtocol(_) => Self::ENABLE_CONNECT_PROTOCOL,
            Self::Unknown { id, .. } => *id,
        }
    }

    /// The value on the wire.
    pub const fn value(&self) -> u32 {
        match *self {
            Self::HeaderTableSize(v)
            | Self::MaxConcurrentStreams(v)
            | Self::InitialWindowSize(v)
            | Self::MaxFrameSize(v)
            | Self::MaxHeaderListSize(v)
            | Self::Unknown { value: v, .. } => v,
            Self::EnablePush(b) | Self::EnableConnectProtocol(b) => b as u32,
        }
    }

    fn to_bytes(self) -> [u8; 6] {
        let id = self.id().to_be_bytes();
        let v = self.value().to_be_bytes();
        [id[0], id[1], v[0], v[1], v[2], v[3]]
    }
}

/// The values of the SETTINGS parameters one endpoint has announced,
/// starting from the defaults of §6.5.2 (and RFC 8441 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_HEADER_TABLE_SIZE, default 4096.
    pub header_table_size: u32,
    /// SETTINGS_ENABLE_PUSH, default true.
    pub enable_push: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS, default unlimited (`None`).
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE, default 65535.
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE, default 16384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE, default unlimited (`None`).
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL, default false.
    pub enable_connect_protocol: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Settings {
    /// The initial values of §6.5.2.
    pub const DEFAULT: Self = Self {
        header_table_size: 4096,
        enable_push: true,
        max_concurrent_streams: None,
        initial_window_size: 65_535,
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        max_header_list_size: None,
        enable_connect_protocol: false,
    };

    /// Takes one parameter into account; unknown identifiers are ignored.
    pub fn apply(&mut self, setting: Setting) {
        match setting {
            Setting::HeaderTableSize(v) => self.header_table_size = v,
            Setting::EnablePush(v) => self.enable_push = v,
            Setting::MaxConcurrentStreams(v) => self.max_concurrent_streams = Some(v),
            Setting::InitialWindowSize(v) => self.initial_window_size = v,
            Setting::MaxFrameSize(v) => self.max_frame_size = v,
            Setting::MaxHeaderListSize(v) => self.max_header_list_size = Some(v),
            Setting::EnableConnectProtocol(v) => self.enable_connect_protocol = v,
            Setting::Unknown { .. } => {}
        }
    }

    /// Takes every parameter of a SETTINGS frame into account, in order.
    pub fn apply_frame(&mut self, frame: &SettingsFrame<'_>) {
        for setting in frame.iter() {
            self.apply(setting);
        }
    }
}

/// A SETTINGS frame, or its acknowledgement. Flags read: ACK.
///
/// The parameters stay in the input and are read with
/// [`SettingsFrame::iter`]; they were all checked when the frame was
/// decoded. To send one, see [`encode_settings`] and
/// [`encode_settings_ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsFrame<'a> {
    ack: bool,
    payload: &'a [u8],
}

impl<'a> SettingsFrame<'a> {
    pub(crate) fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        header.require_connection()?;
        let ack = header.has(flags::ACK);
        let size_error = |violation| Error::connection(ErrorCode::FRAME_SIZE_ERROR, violation);
        if ack && !payload.is_empty() {
            return Err(size_error(Violation::SettingsAckWithPayload));
        }
        if !payload.len().is_multiple_of(6) {
            return Err(size_error(Violation::SettingsLength));
        }
        for pair in payload.chunks_exact(6) {
            let (id, value) = pair_of(pair);
            Setting::from_pair(id, value)?;
        }
        Ok(Self { ack, payload })
    }

    /// Whether this is an acknowledgement (which has no parameters).
    pub const fn is_ack(&self) -> bool {
        self.ack
    }

    /// How many parameters the frame holds.
    pub const fn len(&self) -> usize {
        self.payload.len() / 6
    }

    /// Whether the frame holds no parameter (an acknowledgement, or
    /// SETTINGS with none).
    pub const fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The parameters, in the order they were sent.
    pub fn iter(&self) -> impl Iterator<Item = Setting> + 'a {
        // Every pair passed `from_pair` in `parse`, so none is dropped here.
        self.payload.chunks_exact(6).filter_map(|p| {
            let (id, value) = pair_of(p);
            Setting::from_pair(id, value).ok()
        })
    }

    /// Appends the frame to `out` as it was received; the payload must fit
    /// in `max_frame_size`.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        let f = if self.ack { flags::ACK } else { 0 };
        write_header(out, FrameKind::Settings, f, 0, self.payload.len(), max_frame_size)?;
        out.extend_from_slice(self.payload);
        Ok(())
    }
}

/// A parameter's identifier and value from its 6 bytes (`chunks_exact`
/// gives no other length).
fn pair_of(pair: &[u8]) -> (u16, u32) {
    match *pair {
        [a, b, c, d, e, f] => (u16::from_be_bytes([a, b]), u32::from_be_bytes([c, d, e, f])),
        _ => (0, 0),
    }
}

/// Appends a SETTINGS frame with these parameters to `out`. Each must be
/// one a peer would accept (an `Unknown` setting must have an unknown
/// identifier), and the frame must fit in `max_frame_size`. Nothing is
/// appended on error.
pub fn encode_settings(out: &mut Vec<u8>, settings: &[Setting], max_frame_size: u32) -> Result<(), Error> {
    for s in settings {
        if Setting::from_pair(s.id(), s.value()) != Ok(*s) {
            return Err(Error::Misuse(Misuse::InvalidValue));
        }
    }
    let len = settings.len().saturating_mul(6);
    write_header(out, FrameKind::Settings, 0, 0, len, max_frame_size)?;
    for s in settings {
        out.extend_from_slice(&s.to_bytes());
    }
    Ok(())
}

/// Appends a SETTINGS frame with ACK (and no payload) to `out`.
pub fn encode_settings_ack(out: &mut Vec<u8>) {
    out.extend_from_slice(
        &FrameHeader {
            length: 0,
            kind: FrameKind::Settings,
            flags: flags::ACK,
            stream_id: 0,
        }
        .to_bytes(),
    );
}
