//! The wire codec: py-ipv8's packet format, byte for byte (see docs/wire-format.md).
//!
//! Owns: reading and writing packet headers, the signed and unsigned frames,
//! py-ipv8's discovery payloads (introduction request/response, puncture
//! request/puncture, old IPv4 and new-style variants) and peerlab's sync
//! request. Decoding borrows from the input and never panics or over-reads;
//! encoding writes into a caller buffer and never allocates.
//! Must not: keep state, verify signatures, or decide what a message means.
//! A change here changes the wire format: update docs/wire-format.md and the
//! codec hash recorded there (a test checks it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::crypto::{CommunityId, Keypair, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::error::{DecodeError, EncodeError};

/// py-ipv8's packet prefix: a zero byte and community version 2.
pub const PREFIX: [u8; 2] = [0x00, 0x02];
/// Prefix + community id + message id.
pub const HEADER_LEN: usize = 23;
/// Bytes a signed frame adds around its payload: header, key length, key, global time, signature.
pub const SIGNED_OVERHEAD: usize = HEADER_LEN + 2 + PUBLIC_KEY_LEN + 8 + SIGNATURE_LEN;
/// Bytes an unsigned frame adds before its payload: header and global time.
pub const UNSIGNED_OVERHEAD: usize = HEADER_LEN + 8;
/// The largest datagram peerlab sends: below common path MTUs, so one message is one datagram.
pub const MAX_DATAGRAM: usize = 1400;

/// Message ids of py-ipv8's discovery messages and peerlab's sync message.
pub mod id {
    /// py-ipv8 `PunctureRequestPayload` (unsigned, IPv4).
    pub const PUNCTURE_REQUEST: u8 = 250;
    /// py-ipv8 `PuncturePayload` (signed, IPv4).
    pub const PUNCTURE: u8 = 249;
    /// py-ipv8 `IntroductionRequestPayload` (signed, IPv4).
    pub const INTRODUCTION_REQUEST: u8 = 246;
    /// py-ipv8 `IntroductionResponsePayload` (signed, IPv4).
    pub const INTRODUCTION_RESPONSE: u8 = 245;
    /// py-ipv8 `NewIntroductionRequestPayload` (signed, IPv4 or IPv6).
    pub const NEW_INTRODUCTION_REQUEST: u8 = 234;
    /// py-ipv8 `NewIntroductionResponsePayload` (signed, IPv4 or IPv6).
    pub const NEW_INTRODUCTION_RESPONSE: u8 = 233;
    /// py-ipv8 `NewPunctureRequestPayload` (unsigned, IPv4 or IPv6).
    pub const NEW_PUNCTURE_REQUEST: u8 = 232;
    /// py-ipv8 `NewPuncturePayload` (signed, IPv4 or IPv6).
    pub const NEW_PUNCTURE: u8 = 231;
    /// peerlab's catch-up sync request (unsigned): a bloom filter over a global-time range.
    pub const SYNC_REQUEST: u8 = 230;
    /// Ids from this one up belong to discovery, sync or py-ipv8's deprecated Dispersy messages.
    pub const FIRST_RESERVED: u8 = 229;
}

/// The fixed start of every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The 20-byte community id.
    pub community: &'a [u8; 20],
    /// The message id.
    pub msg_id: u8,
}

/// Splits off the 23-byte header; the rest is the message body.
pub fn split_header(data: &[u8]) -> Result<(Header<'_>, &[u8]), DecodeError> {
    let mut r = Reader::new(data);
    let prefix: &[u8; 2] = r.array("prefix")?;
    if *prefix != PREFIX {
        return Err(DecodeError::BadPrefix { found: *prefix });
    }
    let community = r.array("community id")?;
    let msg_id = r.u8("message id")?;
    Ok((Header { community, msg_id }, r.rest()))
}

/// A signed frame: `varlenH(public key) || u64 global time || payload || signature`,
/// the signature covering every byte before it (header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedFrame<'a> {
    /// The header.
    pub header: Header<'a>,
    /// The author's serialised public key (not yet checked to be a valid key).
    pub public_key: &'a [u8],
    /// The author's global time (for discovery messages, py-ipv8 sends it modulo 65536).
    pub global_time: u64,
    /// The message payload.
    pub payload: &'a [u8],
    /// The 64-byte ed25519 signature.
    pub signature: &'a [u8; SIGNATURE_LEN],
    /// The signed bytes: the whole packet except the signature.
    pub signed: &'a [u8],
}

/// Decodes a whole datagram as a signed frame. The key length is taken from the
/// packet (py-ipv8's varlenH); the signature is the last 64 bytes.
pub fn decode_signed(data: &[u8]) -> Result<SignedFrame<'_>, DecodeError> {
    let (header, _) = split_header(data)?;
    let sig_start = data
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or(DecodeError::Truncated {
            what: "signature",
            needed: SIGNATURE_LEN,
            offset: HEADER_LEN,
            available: data.len().saturating_sub(HEADER_LEN),
        })?;
    let (signed, sig) = data.split_at(sig_start);
    let mut r = Reader::new(signed);
    r.skip(HEADER_LEN, "header")?;
    let key_len = r.u16("public key length")? as usize;
    let public_key = r.bytes(key_len, "public key")?;
    let global_time = r.u64("global time")?;
    let payload = r.rest();
    let signature: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| DecodeError::Invalid {
        what: "signature",
        why: "not 64 bytes",
    })?;
    Ok(SignedFrame {
        header,
        public_key,
        global_time,
        payload,
        signature,
        signed,
    })
}

/// An unsigned frame: `u64 global time || payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsignedFrame<'a> {
    /// The header.
    pub header: Header<'a>,
    /// The sender's global time.
    pub global_time: u64,
    /// The message payload.
    pub payload: &'a [u8],
}

/// Decodes a whole datagram as an unsigned frame.
pub fn decode_unsigned(data: &[u8]) -> Result<UnsignedFrame<'_>, DecodeError> {
    let (header, _) = split_header(data)?;
    let mut r = Reader::new(data);
    r.skip(HEADER_LEN, "header")?;
    let global_time = r.u64("global time")?;
    Ok(UnsignedFrame {
        header,
        global_time,
        payload: r.rest(),
    })
}

/// Writes a signed frame into `buf`: header, key, global time, the payload
/// written by `payload`, then the signature over all of it. Returns the length.
pub fn encode_signed(
    buf: &mut [u8],
    community: &CommunityId,
    msg_id: u8,
    keypair: &Keypair,
    global_time: u64,
    payload: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let mut w = Writer::new(buf);
    w.put(&PREFIX)?;
    w.put(&community.0)?;
    w.u8(msg_id)?;
    w.varlen_h(keypair.public().as_bytes(), "public key")?;
    w.u64(global_time)?;
    payload(&mut w)?;
    let len = w.len();
    let needed = len + SIGNATURE_LEN;
    if buf.len() < needed {
        return Err(EncodeError::BufferTooSmall {
            needed,
            capacity: buf.len(),
        });
    }
    let signature = keypair.sign(&buf[..len]);
    buf[len..needed].copy_from_slice(&signature);
    Ok(needed)
}

/// Writes an unsigned frame into `buf`. Returns the length.
pub fn encode_unsigned(
    buf: &mut [u8],
    community: &CommunityId,
    msg_id: u8,
    global_time: u64,
    payload: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let mut w = Writer::new(buf);
    w.put(&PREFIX)?;
    w.put(&community.0)?;
    w.u8(msg_id)?;
    w.u64(global_time)?;
    payload(&mut w)?;
    Ok(w.len())
}

/// Address encoding: py-ipv8's `ipv4` (old messages) or `ip_address` (new-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Old messages: 4-byte IPv4 address + u16 port.
    Old,
    /// New-style messages: type byte (1 = IPv4, 3 = IPv6), address, u16 port.
    New,
}

/// py-ipv8's all-zero "no address".
pub const NO_ADDRESS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// Flag bits of an introduction request (old style: bits 7..0 are connection type 0,
/// connection type 1, supports new style, 4 unused, advice).
pub mod flags {
    /// Old request: the sender understands new-style messages.
    pub const REQ_SUPPORTS_NEW_STYLE: u8 = 0x20;
    /// Old request: the sender asks to be introduced to another peer.
    pub const REQ_ADVICE: u8 = 0x01;
    /// Old response: the sender understands new-style messages.
    pub const RESP_SUPPORTS_NEW_STYLE: u8 = 0x10;
    /// Old response: the introduced peer understands new-style messages.
    pub const RESP_INTRO_SUPPORTS_NEW_STYLE: u8 = 0x08;
    /// Old response: the responder is at its peer limit.
    pub const RESP_PEER_LIMIT_REACHED: u8 = 0x04;
    /// New-style response: the introduced peer understands new-style messages.
    pub const NEW_RESP_INTRO_SUPPORTS_NEW_STYLE: u8 = 0x80;
}

/// Introduction request (ids 246 old, 234 new-style); travels in a signed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntroductionRequest<'a> {
    /// Where the sender thinks the receiver is.
    pub destination: SocketAddr,
    /// The sender's LAN address (py-ipv8 answers to this one).
    pub source_lan: SocketAddr,
    /// The sender's WAN address.
    pub source_wan: SocketAddr,
    /// The raw flag byte (see [`flags`]).
    pub flags: u8,
    /// Echoed in the response.
    pub identifier: u16,
    /// Piggybacked bytes (py-ipv8's `extra_bytes`).
    pub extra: &'a [u8],
}

impl<'a> IntroductionRequest<'a> {
    /// Decodes the payload of a signed frame.
    pub fn decode(payload: &'a [u8], style: Style) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let destination = r.addr(style)?;
        let source_lan = r.addr(style)?;
        let source_wan = r.addr(style)?;
        let (flags, identifier) = match style {
            Style::Old => (r.u8("flags")?, r.u16("identifier")?),
            Style::New => {
                let id = r.u16("identifier")?;
                (r.u8("flags")?, id)
            }
        };
        Ok(Self {
            destination,
            source_lan,
            source_wan,
            flags,
            identifier,
            extra: r.rest(),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, w: &mut Writer<'_>, style: Style) -> Result<(), EncodeError> {
        w.addr(self.destination, style)?;
        w.addr(self.source_lan, style)?;
        w.addr(self.source_wan, style)?;
        match style {
            Style::Old => {
                w.u8(self.flags)?;
                w.u16(self.identifier)?;
            }
            Style::New => {
                w.u16(self.identifier)?;
                w.u8(self.flags)?;
            }
        }
        w.put(self.extra)
    }
}

/// Introduction response (ids 245 old, 233 new-style); travels in a signed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntroductionResponse<'a> {
    /// Where the responder saw the requester (the requester learns its WAN address from it).
    pub destination: SocketAddr,
    /// The responder's LAN address.
    pub source_lan: SocketAddr,
    /// The responder's WAN address.
    pub source_wan: SocketAddr,
    /// LAN address of the peer introduced to the requester, or 0.0.0.0:0.
    pub lan_introduction: SocketAddr,
    /// WAN address of the peer introduced to the requester, or 0.0.0.0:0.
    pub wan_introduction: SocketAddr,
    /// The raw flag byte (see [`flags`]).
    pub flags: u8,
    /// The request's identifier.
    pub identifier: u16,
    /// Piggybacked bytes.
    pub extra: &'a [u8],
}

impl<'a> IntroductionResponse<'a> {
    /// Decodes the payload of a signed frame.
    pub fn decode(payload: &'a [u8], style: Style) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let destination = r.addr(style)?;
        let source_lan = r.addr(style)?;
        let source_wan = r.addr(style)?;
        let lan_introduction = r.addr(style)?;
        let wan_introduction = r.addr(style)?;
        let (flags, identifier) = match style {
            Style::Old => (r.u8("flags")?, r.u16("identifier")?),
            Style::New => {
                let id = r.u16("identifier")?;
                (r.u8("flags")?, id)
            }
        };
        Ok(Self {
            destination,
            source_lan,
            source_wan,
            lan_introduction,
            wan_introduction,
            flags,
            identifier,
            extra: r.rest(),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, w: &mut Writer<'_>, style: Style) -> Result<(), EncodeError> {
        w.addr(self.destination, style)?;
        w.addr(self.source_lan, style)?;
        w.addr(self.source_wan, style)?;
        w.addr(self.lan_introduction, style)?;
        w.addr(self.wan_introduction, style)?;
        match style {
            Style::Old => {
                w.u8(self.flags)?;
                w.u16(self.identifier)?;
            }
            Style::New => {
                w.u16(self.identifier)?;
                w.u8(self.flags)?;
            }
        }
        w.put(self.extra)
    }
}

/// Puncture request (ids 250 old, 232 new-style, unsigned frame) and puncture
/// (ids 249 old, 231 new-style, signed frame) share this layout: two addresses
/// and an identifier. For a request the addresses are the walker's LAN and WAN
/// address to puncture towards; for a puncture, the sender's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Puncture {
    /// LAN address.
    pub lan: SocketAddr,
    /// WAN address.
    pub wan: SocketAddr,
    /// The introduction request's identifier.
    pub identifier: u16,
}

impl Puncture {
    /// Decodes the payload; trailing bytes are an error.
    pub fn decode(payload: &[u8], style: Style) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let lan = r.addr(style)?;
        let wan = r.addr(style)?;
        let identifier = r.u16("identifier")?;
        r.finish("puncture")?;
        Ok(Self {
            lan,
            wan,
            identifier,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, w: &mut Writer<'_>, style: Style) -> Result<(), EncodeError> {
        w.addr(self.lan, style)?;
        w.addr(self.wan, style)?;
        w.u16(self.identifier)
    }
}

/// peerlab's catch-up sync request (id 230, unsigned frame): "here is a bloom
/// filter of the FullSync messages I hold with global time in
/// `[time_low, time_high]`; send me the ones it does not contain".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRequest<'a> {
    /// First global time covered (inclusive).
    pub time_low: u64,
    /// Last global time covered (inclusive).
    pub time_high: u64,
    /// Salt of the bloom filter's hash functions (changes per request, so false positives differ).
    pub salt: u32,
    /// Number of hash functions (1..=32).
    pub functions: u8,
    /// The subset of the range the filter covers: messages whose author is
    /// in class `offset` of `modulo` (a power of two; see
    /// [`crate::store::in_class`]); `modulo` 1 is the whole range. Lets one
    /// filter cover a range holding more messages than fit (e.g. thousands
    /// with one global time).
    pub modulo: u16,
    /// Which class of `modulo` (below `modulo`).
    pub offset: u16,
    /// The filter's bits; its bit count is `8 * len`.
    pub bloom: &'a [u8],
}

impl<'a> SyncRequest<'a> {
    /// Bytes before the bloom filter.
    pub const FIXED_LEN: usize = 8 + 8 + 4 + 1 + 2 + 2;

    /// Decodes the payload of an unsigned frame.
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let time_low = r.u64("sync time_low")?;
        let time_high = r.u64("sync time_high")?;
        let salt = r.u32("sync salt")?;
        let functions = r.u8("sync functions")?;
        let modulo = r.u16("sync modulo")?;
        let offset = r.u16("sync offset")?;
        let bloom = r.rest();
        if time_low > time_high {
            return Err(DecodeError::Invalid {
                what: "sync range",
                why: "time_low above time_high",
            });
        }
        if functions == 0 || functions > 32 {
            return Err(DecodeError::Invalid {
                what: "sync functions",
                why: "not in 1..=32",
            });
        }
        if !modulo.is_power_of_two() || offset >= modulo {
            return Err(DecodeError::Invalid {
                what: "sync subset",
                why: "modulo is not a power of two or offset not below it",
            });
        }
        if bloom.is_empty() {
            return Err(DecodeError::Invalid {
                what: "sync bloom filter",
                why: "empty",
            });
        }
        Ok(Self {
            time_low,
            time_high,
            salt,
            functions,
            modulo,
            offset,
            bloom,
        })
    }

    /// Encodes the fixed part; the caller writes the filter bits after it.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_fixed(
        w: &mut Writer<'_>,
        time_low: u64,
        time_high: u64,
        salt: u32,
        functions: u8,
        modulo: u16,
        offset: u16,
    ) -> Result<(), EncodeError> {
        w.u64(time_low)?;
        w.u64(time_high)?;
        w.u32(salt)?;
        w.u8(functions)?;
        w.u16(modulo)?;
        w.u16(offset)
    }
}

/// A bounds-checked big-endian reader over borrowed bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at offset 0.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Takes `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                offset: self.pos,
                available,
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array by reference.
    pub fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<&'a [u8; N], DecodeError> {
        let b = self.bytes(N, what)?;
        Ok(b.try_into().expect("bytes returned exactly N"))
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.bytes(n, what).map(|_| ())
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(*self.array(what)?))
    }

    /// Big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(*self.array(what)?))
    }

    /// Big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(*self.array(what)?))
    }

    /// An address in py-ipv8's `ipv4` (old) or `ip_address` (new) format.
    pub fn addr(&mut self, style: Style) -> Result<SocketAddr, DecodeError> {
        match style {
            Style::Old => {
                let ip = *self.array::<4>("ipv4 address")?;
                let port = self.u16("port")?;
                Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
            }
            Style::New => match self.u8("address type")? {
                1 => self.addr(Style::Old),
                3 => {
                    let ip = *self.array::<16>("ipv6 address")?;
                    let port = self.u16("port")?;
                    Ok(SocketAddr::V6(SocketAddrV6::new(
                        Ipv6Addr::from(ip),
                        port,
                        0,
                        0,
                    )))
                }
                other => Err(DecodeError::BadAddressType(other)),
            },
        }
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.data[self.pos..];
        self.pos = self.data.len();
        out
    }

    /// Fails if bytes remain.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }

    /// The current offset.
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// A bounds-checked big-endian writer into a caller buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts at offset 0 of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reserves `n` bytes and returns them for the caller to fill.
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        if n > self.remaining() {
            return Err(EncodeError::BufferTooSmall {
                needed: self.pos + n,
                capacity: self.buf.len(),
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&mut self.buf[start..start + n])
    }

    /// Appends bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }

    /// Big-endian u16.
    pub fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.put(&v.to_be_bytes())
    }

    /// py-ipv8's `varlenH`: u16 length then the bytes.
    pub fn varlen_h(&mut self, bytes: &[u8], what: &'static str) -> Result<(), EncodeError> {
        let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::TooLong {
            what,
            len: bytes.len(),
            max: u16::MAX as usize,
        })?;
        self.u16(len)?;
        self.put(bytes)
    }

    /// An address in py-ipv8's `ipv4` (old) or `ip_address` (new) format.
    pub fn addr(&mut self, addr: SocketAddr, style: Style) -> Result<(), EncodeError> {
        match (style, addr.ip()) {
            (Style::Old, IpAddr::V4(ip)) => {
                self.put(&ip.octets())?;
                self.u16(addr.port())
            }
            (Style::Old, IpAddr::V6(_)) => Err(EncodeError::NotIpv4(addr)),
            (Style::New, IpAddr::V4(ip)) => {
                self.u8(1)?;
                self.put(&ip.octets())?;
                self.u16(addr.port())
            }
            (Style::New, IpAddr::V6(ip)) => {
                self.u8(3)?;
                self.put(&ip.octets())?;
                self.u16(addr.port())
            }
        }
    }
}

/// Every packet kind this crate can decode without knowing the community's
/// meta-messages: what the fuzz target and the property tests exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Introduction request (old or new style) in a signed frame.
    IntroductionRequest(SignedFrame<'a>, IntroductionRequest<'a>),
    /// Introduction response (old or new style) in a signed frame.
    IntroductionResponse(SignedFrame<'a>, IntroductionResponse<'a>),
    /// Puncture request (old or new style) in an unsigned frame.
    PunctureRequest(UnsignedFrame<'a>, Puncture),
    /// Puncture (old or new style) in a signed frame.
    Puncture(SignedFrame<'a>, Puncture),
    /// Sync request in an unsigned frame.
    SyncRequest(UnsignedFrame<'a>, SyncRequest<'a>),
    /// An application message id; its frame depends on the meta-message.
    Application(Header<'a>, &'a [u8]),
}

/// Decodes the discovery and sync messages fully and application messages up
/// to the header.
pub fn decode(data: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let (header, body) = split_header(data)?;
    let style = |new| if new { Style::New } else { Style::Old };
    Ok(match header.msg_id {
        id::INTRODUCTION_REQUEST | id::NEW_INTRODUCTION_REQUEST => {
            let f = decode_signed(data)?;
            let s = style(header.msg_id == id::NEW_INTRODUCTION_REQUEST);
            Decoded::IntroductionRequest(f, IntroductionRequest::decode(f.payload, s)?)
        }
        id::INTRODUCTION_RESPONSE | id::NEW_INTRODUCTION_RESPONSE => {
            let f = decode_signed(data)?;
            let s = style(header.msg_id == id::NEW_INTRODUCTION_RESPONSE);
            Decoded::IntroductionResponse(f, IntroductionResponse::decode(f.payload, s)?)
        }
        id::PUNCTURE_REQUEST | id::NEW_PUNCTURE_REQUEST => {
            let f = decode_unsigned(data)?;
            let s = style(header.msg_id == id::NEW_PUNCTURE_REQUEST);
            Decoded::PunctureRequest(f, Puncture::decode(f.payload, s)?)
        }
        id::PUNCTURE | id::NEW_PUNCTURE => {
            let f = decode_signed(data)?;
            let s = style(header.msg_id == id::NEW_PUNCTURE);
            Decoded::Puncture(f, Puncture::decode(f.payload, s)?)
        }
        id::SYNC_REQUEST => {
            let f = decode_unsigned(data)?;
            Decoded::SyncRequest(f, SyncRequest::decode(f.payload)?)
        }
        _ => Decoded::Application(header, body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp() -> Keypair {
        Keypair::from_seed(&[7; 32])
    }

    #[test]
    fn signed_round_trip() {
        let cid = CommunityId([9; 20]);
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = encode_signed(&mut buf, &cid, 1, &kp(), 42, |w| w.put(b"hello")).unwrap();
        assert_eq!(n, SIGNED_OVERHEAD + 5);
        let f = decode_signed(&buf[..n]).unwrap();
        assert_eq!(f.header.community, &cid.0);
        assert_eq!(f.header.msg_id, 1);
        assert_eq!(f.global_time, 42);
        assert_eq!(f.payload, b"hello");
        assert_eq!(f.public_key, kp().public().as_bytes());
        assert!(crate::crypto::verify(
            &kp().verifying_key(),
            f.signed,
            f.signature
        ));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let cid = CommunityId([1; 20]);
        let mut buf = [0u8; MAX_DATAGRAM];
        let req = IntroductionRequest {
            destination: "1.2.3.4:5".parse().unwrap(),
            source_lan: "10.0.0.1:6".parse().unwrap(),
            source_wan: "1.1.1.1:7".parse().unwrap(),
            flags: flags::REQ_ADVICE,
            identifier: 77,
            extra: b"",
        };
        let n = encode_signed(&mut buf, &cid, id::INTRODUCTION_REQUEST, &kp(), 3, |w| {
            req.encode(w, Style::Old)
        })
        .unwrap();
        match decode(&buf[..n]).unwrap() {
            Decoded::IntroductionRequest(_, r) => assert_eq!(r, req),
            other => panic!("decoded as {other:?}"),
        }
        for cut in 0..n - 64 {
            // Cutting the packet short either fails or (inside `extra`) cannot happen here,
            // since `extra` is empty: every shorter packet must fail.
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn old_style_refuses_ipv6() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        let v6: SocketAddr = "[::1]:5".parse().unwrap();
        assert_eq!(w.addr(v6, Style::Old), Err(EncodeError::NotIpv4(v6)));
        w.addr(v6, Style::New).unwrap();
        let n = w.len();
        assert_eq!(Reader::new(&buf[..n]).addr(Style::New).unwrap(), v6);
    }
}
