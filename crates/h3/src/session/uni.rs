//! The client's unidirectional streams: their type, then the control
//! stream, the QPACK encoder and decoder streams, and WebTransport streams.

use super::{ServerSession, SessionEvent, UniState};
use crate::error::{Error, ErrorCode};
use crate::qpack::DecoderStreamReader;
use crate::stream::{ControlEvent, ControlStream, Role, StreamType, StreamTypeReader};
use crate::varint::VarintReader;

impl ServerSession {
    pub(super) fn receive_uni(&mut self, stream_id: u64, data: &[u8], fin: bool) -> Result<(), Error> {
        let mut input = data;
        if !self.uni_streams.contains_key(&stream_id) {
            if !self.uni_ids.first_seen(stream_id) {
                // A stream done with: its late bytes are dropped.
                return Ok(());
            }
            self.uni_streams
                .insert(stream_id, UniState::Type(StreamTypeReader::new()));
        }
        if let Some(UniState::Type(reader)) = self.uni_streams.get_mut(&stream_id) {
            let (used, ty) = reader.feed(input);
            input = input.get(used..).unwrap_or_default();
            let Some(ty) = ty else {
                if fin {
                    // A stream that ends before its type: nothing to use.
                    self.uni_streams.remove(&stream_id);
                }
                return Ok(());
            };
            self.uni.opened(ty)?;
            let next = match ty {
                StreamType::Control => {
                    UniState::Control(ControlStream::new(Role::Server, self.config.max_frame_payload))
                }
                StreamType::QpackEncoder => UniState::Encoder,
                StreamType::QpackDecoder => UniState::Decoder(DecoderStreamReader::new()),
                StreamType::WebTransport if self.webtransport_enabled() => {
                    UniState::WebTransportPrefix(VarintReader::new())
                }
                StreamType::Push | StreamType::WebTransport | StreamType::Unknown(_) => {
                    self.events.push_back(SessionEvent::StopSending {
                        stream_id,
                        code: ErrorCode::H3_STREAM_CREATION_ERROR,
                    });
                    self.uni_streams.remove(&stream_id);
                    return Ok(());
                }
            };
            self.uni_streams.insert(stream_id, next);
        }
        match self.uni_streams.get_mut(&stream_id) {
            Some(UniState::Control(control)) => {
                let mut events = Vec::new();
                control.receive(input, &mut events)?;
                if fin {
                    return Err(control.finish());
                }
                for event in events {
                    self.events.push_back(match event {
                        ControlEvent::Settings(settings) => {
                            self.peer_settings = Some(settings.clone());
                            SessionEvent::Settings(settings)
                        }
                        ControlEvent::Goaway(id) => SessionEvent::Goaway(id),
                        // Push is not offered: MAX_PUSH_ID and
                        // CANCEL_PUSH have nothing to act on.
                        ControlEvent::MaxPushId(_) | ControlEvent::CancelPush(_) => continue,
                    });
                }
            }
            Some(UniState::Encoder) => {
                let unblocked = self.decoder.feed_encoder_stream(input)?;
                if fin {
                    return self.uni.closed(StreamType::QpackEncoder);
                }
                for section in unblocked {
                    self.unblocked(section.stream_id, section.fields)?;
                }
            }
            Some(UniState::Decoder(reader)) => {
                // Our encoder uses no dynamic table: the reader refuses
                // every instruction but Stream Cancellation, which needs
                // nothing done.
                reader.feed(input)?;
                if fin {
                    return self.uni.closed(StreamType::QpackDecoder);
                }
            }
            Some(UniState::WebTransportPrefix(reader)) => {
                let (used, session_id) = reader.feed(input);
                input = input.get(used..).unwrap_or_default();
                match session_id {
                    Some(session_id) => {
                        if self.associate(stream_id, session_id, false) {
                            self.uni_streams.insert(stream_id, UniState::WebTransport);
                            self.uni_stream_data(stream_id, input, fin);
                        } else {
                            self.uni_streams.remove(&stream_id);
                        }
                    }
                    None if fin => {
                        // Ended before its session ID: nothing to use.
                        self.uni_streams.remove(&stream_id);
                    }
                    None => {}
                }
            }
            Some(UniState::WebTransport) => self.uni_stream_data(stream_id, input, fin),
            Some(UniState::Type(_)) | None => {}
        }
        Ok(())
    }

    /// Bytes of a client WebTransport unidirectional stream; an ended one
    /// is done with.
    fn uni_stream_data(&mut self, stream_id: u64, data: &[u8], fin: bool) {
        if fin {
            self.uni_streams.remove(&stream_id);
        }
        self.stream_data(stream_id, data.to_vec(), fin);
    }
}
