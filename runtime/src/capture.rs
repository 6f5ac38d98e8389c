//! Packet capture: one instance's datagrams, as its driver carries them,
//! written to a pcap file in the run folder (`<ID>.pcap`, named by
//! `peerlab_run::layout`), readable by `tcpdump -r` and Wireshark.
//!
//! Each datagram becomes one Ethernet frame with synthetic Ethernet, IPv4
//! (or IPv6) and UDP headers carrying the two instances' addresses and
//! ports (checksums computed, MACs `02:00:` + the IP's last four bytes),
//! its payload the datagram's bytes unchanged (py-ipv8's wire format). The
//! timestamp is virtual time in a simulation (the driver passes it) and
//! the wall clock over real UDP ([`Capture::wire_sent`],
//! [`Capture::wire_received`]); docs/network.md says what is and is not
//! in a capture.
//!
//! Owns: the file's format (classic pcap, nanosecond timestamps, little
//! endian, link type Ethernet), holding a sent datagram until its wire time
//! when it leaves after a delay (so the file stays in time order), the size
//! cap (`capture_limit`), and the file's I/O: records are kept in memory
//! and appended in chunks (the file is open only while written, so a
//! process with thousands of instances holds no descriptors for them).
//!
//! Must not: decide what is captured (the drivers call it where a datagram
//! meets the wire), read any clock but the wall clock of the real driver's
//! `wire_*` calls (a simulation passes its virtual times), or fail the
//! instance: a capture that cannot be written stops, and
//! [`Capture::finish`] says why in a line for the instance's `.err`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byteorder_slice::LittleEndian;
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};
use peerlab_instance::record::Record;

/// `capture_limit`'s default: most bytes of one instance's pcap file.
pub const DEFAULT_LIMIT: u64 = peerlab_lang::CAPTURE_LIMIT_DEFAULT;

/// The file's snapshot length: larger than any datagram plus its headers,
/// so no frame is ever cut.
const SNAPLEN: u32 = 262_144;

/// Bytes kept in memory before they are appended to the file.
const SPOOL: usize = 32 * 1024;

/// How often the real driver appends what it holds, at least
/// ([`Capture::flush_if_due`]): what a killed process loses at most.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A pcap record's own header: seconds, fraction, captured and original length.
const RECORD_HEADER: u64 = 16;

/// The wall clock as the real driver's captures count time: since the Unix epoch.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A sent datagram waiting for its wire time (it leaves after a delay).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    at: Duration,
    seq: u64,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// One instance's packet capture. Created off; [`follow`](Self::follow)
/// turns it on when the instance asks for it (config key `capture`, or the
/// scenario's `capture` command), and it stays on to the instance's end.
#[derive(Debug)]
pub struct Capture {
    path: PathBuf,
    local: SocketAddr,
    limit: u64,
    on: bool,
    /// Records not yet appended to the file.
    pending: Vec<u8>,
    held: BinaryHeap<Reverse<Held>>,
    seq: u64,
    /// Bytes of the file so far (appended and pending).
    size: u64,
    captured: u64,
    /// Datagrams past the size cap, counted and not written.
    over_limit: u64,
    /// Why the capture stopped early (the file could not be written).
    error: Option<String>,
    frame: Vec<u8>,
    last_flush: Duration,
}

impl Capture {
    /// The capture of the instance whose socket is `local`, into
    /// `run_dir/rel`, at most `limit` bytes; off until [`follow`](Self::follow).
    pub fn new(run_dir: &Path, rel: &Path, local: SocketAddr, limit: Option<u64>) -> Self {
        Self {
            path: run_dir.join(rel),
            local,
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            on: false,
            pending: Vec::new(),
            held: BinaryHeap::new(),
            seq: 0,
            size: 0,
            captured: 0,
            over_limit: 0,
            error: None,
            frame: Vec::new(),
            last_flush: Duration::ZERO,
        }
    }

    /// Turn the capture on if the instance wants it (and it is not on yet):
    /// the file is created with its header, or, when it already holds a
    /// capture (an instance that came back), appended to.
    pub fn follow(&mut self, wanted: bool) {
        if !wanted || self.on || self.error.is_some() {
            return;
        }
        self.on = true;
        match self.open() {
            Ok(()) => {}
            Err(e) => self.stop(format!("cannot create {}: {e}", self.path.display())),
        }
    }

    fn open(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        if self.size == 0 {
            let header = PcapHeader {
                snaplen: SNAPLEN,
                datalink: DataLink::ETHERNET,
                ts_resolution: TsResolution::NanoSecond,
                endianness: Endianness::Little,
                ..PcapHeader::default()
            };
            let n = header
                .write_to(&mut self.pending)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.size = n as u64;
            self.append()?;
        }
        Ok(())
    }

    /// Whether datagrams are being captured (on, and not stopped by an error).
    pub fn is_on(&self) -> bool {
        self.on && self.error.is_none()
    }

    /// The instance sent `bytes` to `to` at `now`; it meets the wire at `at`
    /// (later than `now` when it leaves after a delay).
    pub fn sent(&mut self, now: Duration, at: Duration, to: SocketAddr, bytes: &[u8]) {
        if !self.is_on() {
            return;
        }
        self.release(now);
        if at <= now {
            self.write(at, self.local, to, bytes);
        } else {
            self.seq += 1;
            self.held.push(Reverse(Held {
                at,
                seq: self.seq,
                to,
                bytes: bytes.to_vec(),
            }));
        }
    }

    /// The instance received `bytes` from `from` at `at`.
    pub fn received(&mut self, at: Duration, from: SocketAddr, bytes: &[u8]) {
        if !self.is_on() {
            return;
        }
        self.release(at);
        self.write(at, from, self.local, bytes);
    }

    /// The real driver handed `bytes` to its socket for `to`, now (wall clock).
    pub fn wire_sent(&mut self, to: SocketAddr, bytes: &[u8]) {
        if self.is_on() {
            let now = wall_clock();
            self.sent(now, now, to, bytes);
        }
    }

    /// The real driver took `bytes` from `from` off its socket, now (wall clock).
    pub fn wire_received(&mut self, from: SocketAddr, bytes: &[u8]) {
        if self.is_on() {
            self.received(wall_clock(), from, bytes);
        }
    }

    /// Write the held datagrams whose wire time has come.
    fn release(&mut self, now: Duration) {
        while self.held.peek().is_some_and(|Reverse(h)| h.at <= now) {
            let Reverse(h) = self.held.pop().expect("peeked");
            self.write(h.at, self.local, h.to, &h.bytes);
        }
    }

    fn write(&mut self, ts: Duration, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.frame.clear();
        if let Err(e) = frame(&mut self.frame, src, dst, payload) {
            self.stop(format!(
                "cannot frame a datagram of {} bytes: {e}",
                payload.len()
            ));
            return;
        }
        let record = RECORD_HEADER + self.frame.len() as u64;
        if self.size + record > self.limit {
            self.over_limit += 1;
            return;
        }
        let len = self.frame.len() as u32;
        let packet = PcapPacket::new(ts, len, &self.frame);
        if let Err(e) =
            packet.write_to::<_, LittleEndian>(&mut self.pending, TsResolution::NanoSecond, SNAPLEN)
        {
            self.stop(format!("cannot write a record: {e}"));
            return;
        }
        self.size += record;
        self.captured += 1;
        if self.pending.len() >= SPOOL {
            self.flush();
        }
    }

    /// Append what is held in memory to the file.
    pub fn flush(&mut self) {
        if let Err(e) = self.append() {
            self.stop(format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// [`flush`](Self::flush) if the last one is more than a second ago
    /// by the wall clock (the real driver calls it before it waits).
    pub fn flush_if_due(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let now = wall_clock();
        if now.saturating_sub(self.last_flush) >= FLUSH_EVERY {
            self.last_flush = now;
            self.flush();
        }
    }

    fn append(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut file = fs::OpenOptions::new().append(true).open(&self.path)?;
        let result = file.write_all(&self.pending);
        self.pending.clear();
        if self.pending.capacity() > 4 * SPOOL {
            self.pending = Vec::new();
        }
        result
    }

    fn stop(&mut self, why: String) {
        self.pending = Vec::new();
        self.held.clear();
        self.error.get_or_insert(why);
    }

    /// The instance ended: write what is held (datagrams still to leave
    /// included) and say, as a line for its `.err`, what the capture
    /// lacks (datagrams past the cap, a write that failed), if anything.
    pub fn finish(&mut self) -> Option<String> {
        if !self.on {
            return None;
        }
        self.release(Duration::MAX);
        self.flush();
        let mut notes = Vec::new();
        if self.over_limit > 0 {
            notes.push(format!(
                "it reached capture_limit ({} bytes) after {} datagrams: {} more were not written (raise capture_limit, or capture fewer instances with `capture {{..}}`)",
                self.limit, self.captured, self.over_limit
            ));
        }
        if let Some(e) = &self.error {
            notes.push(format!("it stopped after {} datagrams: {e}", self.captured));
        }
        self.on = false;
        (!notes.is_empty()).then(|| {
            format!(
                "warning: the packet capture {} is incomplete: {}",
                self.path.display(),
                notes.join("; ")
            )
        })
    }

    /// [`finish`](Self::finish), its line (if any) written to the
    /// instance's `.err` through its record: what a driver calls when the
    /// instance ends (after its last datagrams were sent).
    pub fn end(&mut self, record: &mut Record) {
        if let Some(note) = self.finish() {
            record.error(&note);
            record.flush();
        }
    }

    /// Datagrams written so far.
    pub fn captured(&self) -> u64 {
        self.captured
    }
}

/// The locally administered MAC address standing for `ip`: `02:00:` and
/// its last four bytes.
fn mac(ip: IpAddr) -> [u8; 6] {
    let tail = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, tail[0], tail[1], tail[2], tail[3]]
}

/// One Ethernet frame carrying `payload` from `src` to `dst` over UDP, into
/// `out`: IPv4 when both are IPv4 addresses, else IPv6 (an IPv4 address
/// mapped into it).
fn frame(
    out: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Result<(), etherparse::err::packet::BuildWriteError> {
    let eth = PacketBuilder::ethernet2(mac(src.ip()), mac(dst.ip()));
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .udp(src.port(), dst.port())
            .write(out, payload),
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            eth.ipv6(v6(s), v6(d), 64)
                .udp(src.port(), dst.port())
                .write(out, payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn read_all(path: &Path) -> Vec<(Duration, Vec<u8>)> {
        let mut r = PcapReader::new(fs::File::open(path).expect("open")).expect("pcap header");
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.expect("record");
            out.push((p.timestamp, p.data.into_owned()));
        }
        out
    }

    #[test]
    fn frames_carry_the_addresses_ports_and_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = addr("10.0.0.1:7000");
        let mut c = Capture::new(dir.path(), Path::new("h/node001/00001.pcap"), me, None);
        c.sent(Duration::ZERO, Duration::ZERO, addr("10.0.0.2:7000"), b"x");
        assert_eq!(c.captured(), 0, "off until the instance asks");
        c.follow(true);
        c.sent(
            Duration::from_secs(1),
            Duration::from_secs(1),
            addr("10.0.0.2:7001"),
            b"hello",
        );
        c.received(Duration::from_millis(1500), addr("10.0.0.3:7002"), b"hi");
        assert_eq!(c.finish(), None);
        let packets = read_all(&dir.path().join("h/node001/00001.pcap"));
        assert_eq!(packets.len(), 2);
        let (ts, out) = &packets[0];
        assert_eq!(*ts, Duration::from_secs(1));
        let p = etherparse::SlicedPacket::from_ethernet(out).expect("parses");
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!("ipv4 expected: {:?}", p.net)
        };
        assert_eq!(ip.header().source(), [10, 0, 0, 1]);
        assert_eq!(ip.header().destination(), [10, 0, 0, 2]);
        let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
            panic!("udp expected")
        };
        assert_eq!((udp.source_port(), udp.destination_port()), (7000, 7001));
        assert_eq!(udp.payload(), b"hello");
        // Checksums are right (Wireshark's checks pass, so tools do not flag every frame).
        let iph = ip.header().to_header();
        assert_eq!(iph.header_checksum, iph.calc_header_checksum());
        let udph = udp.to_header();
        assert_eq!(
            udph.checksum,
            udph.calc_checksum_ipv4(&iph, udp.payload()).expect("small")
        );
        assert_eq!(packets[1].0, Duration::from_millis(1500));
        assert!(packets[1].1.ends_with(b"hi"));
    }

    #[test]
    fn a_delayed_datagram_is_written_at_its_wire_time_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = addr("10.0.0.1:7000");
        let to = addr("10.0.0.2:7000");
        let mut c = Capture::new(dir.path(), Path::new("c.pcap"), me, None);
        c.follow(true);
        let ms = Duration::from_millis;
        c.sent(ms(10), ms(50), to, b"late");
        c.sent(ms(20), ms(20), to, b"now");
        c.received(ms(30), to, b"in");
        c.received(ms(60), to, b"after");
        c.finish();
        let times: Vec<Duration> = read_all(&dir.path().join("c.pcap"))
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(times, [ms(20), ms(30), ms(50), ms(60)]);
    }

    #[test]
    fn the_cap_keeps_the_file_whole_and_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = addr("[::1]:7000");
        let mut c = Capture::new(dir.path(), Path::new("c.pcap"), me, Some(1000));
        c.follow(true);
        for i in 0..20u64 {
            c.sent(
                Duration::from_secs(i),
                Duration::from_secs(i),
                addr("127.0.0.1:9"),
                &[0u8; 100],
            );
        }
        let note = c.finish().expect("a note");
        assert!(note.contains("capture_limit (1000 bytes)"), "{note}");
        let len = fs::metadata(dir.path().join("c.pcap")).expect("file").len();
        assert!(len <= 1000, "{len}");
        let packets = read_all(&dir.path().join("c.pcap"));
        assert_eq!(packets.len() as u64, c.captured());
        assert!(
            note.contains(&format!("{} more", 20 - packets.len())),
            "{note}"
        );
        let p = etherparse::SlicedPacket::from_ethernet(&packets[0].1).expect("parses");
        assert!(matches!(p.net, Some(etherparse::NetSlice::Ipv6(_))));
    }

    #[test]
    fn a_capture_that_cannot_be_created_says_so_and_the_instance_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("file"), b"").expect("file");
        let mut c = Capture::new(
            dir.path(),
            Path::new("file/c.pcap"),
            addr("10.0.0.1:1"),
            None,
        );
        c.follow(true);
        assert!(!c.is_on());
        c.sent(Duration::ZERO, Duration::ZERO, addr("10.0.0.2:1"), b"x");
        let note = c.finish().expect("a note");
        assert!(note.starts_with("warning: the packet capture"), "{note}");
        assert!(note.contains("cannot create"), "{note}");
    }
}
