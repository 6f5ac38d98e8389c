//! What the queue holds for each event while it waits: a compact slot per
//! event, the bytes of datagrams in flight packed into shared chunks, and
//! the addresses they came from interned as numbers.
//!
//! A simulated run can have tens of millions of datagrams in flight at one
//! virtual instant (Benaloh at 5,000 instances: every instance sends a share
//! to every other at the same moment, 25 M datagrams). Each then costs its
//! bytes plus 32 bytes of slot here (and the queue's own entry in
//! `lib.rs`): no allocation per datagram, no `Vec` header, no socket
//! address (32 bytes each) per datagram. The same bytes sent again right
//! after (one packet to many destinations) are stored once.
//!
//! Owns: [`Slots`] (events by slot number, the free slots, renumbering
//! when mostly empty so the memory of a burst is given back), [`Arena`]
//! (datagram bytes) and [`Addrs`] (address numbers).
//! Must not: decide the order of events, draw anything, or know about
//! links, NATs or endpoints (`lib.rs` and `nat.rs` do); nothing here may
//! change which event comes next or what bytes it carries.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::Event;

/// Bytes per chunk of the [`Arena`]; a larger datagram gets a chunk of its own.
const CHUNK: usize = 256 * 1024;
/// Empty chunks kept with their memory for reuse, at most.
const SPARE_CHUNKS: usize = 16;
/// Slots are renumbered once at most a quarter of them are in use, and
/// only above this many (small queues are not worth it).
const COMPACT_ABOVE: usize = 1 << 16;

/// Where a datagram's bytes are in the [`Arena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    chunk: u32,
    start: u32,
    len: u32,
}

#[derive(Debug, Default)]
struct Chunk {
    /// The bytes stored (`len` is how far it is filled).
    buf: Vec<u8>,
    /// [`Stored`]s not yet released that point into it.
    live: u32,
}

impl Chunk {
    /// Bytes that still fit.
    fn room(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }
}

/// Datagram bytes, appended to chunks; a chunk is reused once every
/// datagram in it has been released. Datagrams are delivered in about the
/// order they were sent, so chunks empty out in order too.
#[derive(Debug, Default)]
struct Arena {
    chunks: Vec<Chunk>,
    /// Empty chunks (with or without memory), to fill next.
    free: Vec<u32>,
    /// The chunk being filled.
    current: Option<u32>,
    /// The last bytes stored, shared by a next store of the same bytes.
    last: Option<Stored>,
}

impl Arena {
    /// Store `data`; give the result back to [`Arena::release`] once.
    fn store(&mut self, data: &[u8]) -> Stored {
        if let Some(last) = self.last
            && self.get(last) == data
        {
            self.chunks[last.chunk as usize].live += 1;
            return last;
        }
        let chunk = match self.current {
            Some(c) if self.chunks[c as usize].room() >= data.len() => c,
            _ => self.fresh_chunk(data.len()),
        };
        let c = &mut self.chunks[chunk as usize];
        let start = c.buf.len();
        c.buf.extend_from_slice(data);
        c.live += 1;
        let stored = Stored {
            chunk,
            start: start as u32,
            len: data.len() as u32,
        };
        self.last = Some(stored);
        stored
    }

    /// An empty chunk with room for `len` bytes, made the current one.
    fn fresh_chunk(&mut self, len: usize) -> u32 {
        // The chunk left behind is freed by its last release.
        if let Some(old) = self.current.take()
            && self.chunks[old as usize].live == 0
        {
            self.retire(old);
        }
        let chunk = match self.free.pop() {
            Some(c) => c,
            None => {
                self.chunks.push(Chunk::default());
                (self.chunks.len() - 1) as u32
            }
        };
        let c = &mut self.chunks[chunk as usize];
        c.buf.clear();
        c.buf.reserve_exact(len.max(CHUNK));
        self.current = Some(chunk);
        chunk
    }

    /// The bytes of `s`.
    fn get(&self, s: Stored) -> &[u8] {
        let start = s.start as usize;
        &self.chunks[s.chunk as usize].buf[start..start + s.len as usize]
    }

    /// Done with `s`: its chunk is reused once nothing else points into it.
    fn release(&mut self, s: Stored) {
        let c = &mut self.chunks[s.chunk as usize];
        c.live -= 1;
        if c.live > 0 {
            return;
        }
        if self.last.is_some_and(|l| l.chunk == s.chunk) {
            self.last = None;
        }
        if self.current == Some(s.chunk) {
            // Still being filled: start it over.
            c.buf.clear();
        } else {
            self.retire(s.chunk);
        }
    }

    /// `chunk` is empty: keep it for reuse, with its memory while few are.
    fn retire(&mut self, chunk: u32) {
        let c = &mut self.chunks[chunk as usize];
        c.buf.clear();
        if self.free.len() >= SPARE_CHUNKS || c.buf.capacity() > CHUNK {
            c.buf = Vec::new();
        }
        self.free.push(chunk);
    }

    /// Bytes the arena holds (filled or not), for tests.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.chunks.iter().map(|c| c.buf.capacity()).sum()
    }
}

/// Socket addresses by number (4 bytes in a slot instead of 32).
#[derive(Debug, Default)]
struct Addrs {
    ids: HashMap<SocketAddr, u32>,
    list: Vec<SocketAddr>,
}

impl Addrs {
    /// The number of `addr` (a new one the first time).
    fn id(&mut self, addr: SocketAddr) -> u32 {
        *self.ids.entry(addr).or_insert_with(|| {
            self.list.push(addr);
            (self.list.len() - 1) as u32
        })
    }

    /// The address numbered `id`.
    fn addr(&self, id: u32) -> SocketAddr {
        self.list[id as usize]
    }
}

/// No address (a datagram not sent to a NAT's public address).
const NO_ADDR: u32 = u32::MAX;

/// One queued event, as it waits.
#[derive(Debug)]
enum Queued<W> {
    /// A datagram for endpoint `to` from address number `from`, sent to
    /// address number `via` when that is a NAT's public one (else [`NO_ADDR`]).
    Datagram {
        to: u32,
        from: u32,
        via: u32,
        bytes: Stored,
    },
    /// A datagram a NAT did not let in (never queued by `lib.rs`; kept
    /// here so any [`Event`] can be).
    Filtered { to: u32, from: u32 },
    /// The driver's wake-up.
    Wake(W),
}

/// The queued events by slot number (each as a [`Queued`], its bytes in
/// the [`Arena`], its addresses in [`Addrs`]), and the free slot numbers.
#[derive(Debug)]
pub(crate) struct Slots<W> {
    slots: Vec<Option<Queued<W>>>,
    free: Vec<u32>,
    arena: Arena,
    addrs: Addrs,
}

impl<W> Default for Slots<W> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            arena: Arena::default(),
            addrs: Addrs::default(),
        }
    }
}

impl<W> Slots<W> {
    /// Put `event` in a slot, with `via`, the public address a datagram to
    /// a NAT'd endpoint was sent to; its number, and a datagram's buffer
    /// to reuse (its bytes are copied).
    pub(crate) fn insert(
        &mut self,
        event: Event<W>,
        via: Option<SocketAddr>,
    ) -> (u32, Option<Vec<u8>>) {
        let endpoint = |to: usize| u32::try_from(to).expect("fewer than 2^32 endpoints");
        let (queued, emptied) = match event {
            Event::Deliver { to, from, data } => (
                Queued::Datagram {
                    to: endpoint(to),
                    from: self.addrs.id(from),
                    via: via.map_or(NO_ADDR, |a| self.addrs.id(a)),
                    bytes: self.arena.store(&data),
                },
                Some(data),
            ),
            Event::Filtered { to, from } => (
                Queued::Filtered {
                    to: endpoint(to),
                    from: self.addrs.id(from),
                },
                None,
            ),
            Event::Wake(w) => (Queued::Wake(w), None),
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(queued);
                i
            }
            None => {
                self.slots.push(Some(queued));
                (self.slots.len() - 1) as u32
            }
        };
        (slot, emptied)
    }

    /// Take the event out of slot `i`, freeing it, with the address it
    /// was sent to if that was a NAT's; a datagram's bytes are copied into
    /// a buffer from `buffer` (cleared first).
    pub(crate) fn take(
        &mut self,
        i: u32,
        buffer: impl FnOnce() -> Vec<u8>,
    ) -> (Event<W>, Option<SocketAddr>) {
        let queued = self.slots[i as usize]
            .take()
            .expect("queued events have a slot");
        self.free.push(i);
        match queued {
            Queued::Datagram {
                to,
                from,
                via,
                bytes,
            } => {
                let mut buf = buffer();
                buf.clear();
                buf.extend_from_slice(self.arena.get(bytes));
                self.arena.release(bytes);
                let via = (via != NO_ADDR).then(|| self.addrs.addr(via));
                let from = self.addrs.addr(from);
                let to = to as usize;
                (
                    Event::Deliver {
                        to,
                        from,
                        data: buf,
                    },
                    via,
                )
            }
            Queued::Filtered { to, from } => {
                let from = self.addrs.addr(from);
                (
                    Event::Filtered {
                        to: to as usize,
                        from,
                    },
                    None,
                )
            }
            Queued::Wake(w) => (Event::Wake(w), None),
        }
    }

    /// Whether only a small part of many slots is in use, so renumbering
    /// ([`Slots::compact`]) would give memory back.
    pub(crate) fn sparse(&self) -> bool {
        self.slots.len() > COMPACT_ABOVE
            && (self.slots.len() - self.free.len()) * 4 < self.slots.len()
    }

    /// Renumber the slots in use to 0.., in the order `numbers` gives them
    /// (each a slot in use, exactly once), rewriting each number, and give
    /// the rest of the memory back. Which event is where does not change
    /// what any number means to the caller once rewritten.
    pub(crate) fn compact<'a>(&mut self, numbers: impl Iterator<Item = &'a mut u32>) {
        let mut slots = Vec::with_capacity(self.slots.len() - self.free.len());
        for n in numbers {
            slots.push(self.slots[*n as usize].take());
            *n = (slots.len() - 1) as u32;
        }
        self.slots = slots;
        self.free = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_gives_back_the_bytes_shares_a_repeat_and_reuses_emptied_chunks() {
        let mut a = Arena::default();
        let x = a.store(b"hello");
        let y = a.store(b"hello");
        let z = a.store(b"world");
        assert_eq!(x, y, "the same bytes right after are stored once");
        assert_eq!((a.get(x), a.get(z)), (&b"hello"[..], &b"world"[..]));
        a.release(x);
        assert_eq!(a.get(y), b"hello", "still held by the second store");
        a.release(y);
        a.release(z);
        // Fill well past one chunk, releasing as we go: the memory stays bounded.
        let packet = [7u8; 1000];
        let mut held = std::collections::VecDeque::new();
        for i in 0..10_000u32 {
            let mut p = packet;
            p[..4].copy_from_slice(&i.to_le_bytes());
            held.push_back((a.store(&p), p));
            if held.len() > 300 {
                let (s, p) = held.pop_front().unwrap();
                assert_eq!(a.get(s), p);
                a.release(s);
            }
        }
        assert!(a.capacity() <= 4 * CHUNK, "{} bytes held", a.capacity());
        for (s, p) in held {
            assert_eq!(a.get(s), p);
            a.release(s);
        }
        // A datagram larger than a chunk has one of its own.
        let big = vec![1u8; CHUNK + 1];
        let s = a.store(&big);
        assert_eq!(a.get(s), &big[..]);
        a.release(s);
    }

    #[test]
    fn a_datagram_comes_out_of_its_slot_as_it_went_in() {
        let mut s: Slots<()> = Slots::default();
        let from: SocketAddr = "10.0.0.1:7000".parse().unwrap();
        let via: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let sent = |data: &[u8]| Event::Deliver {
            to: 3,
            from,
            data: data.to_vec(),
        };
        let (a, emptied) = s.insert(sent(b"first"), Some(via));
        assert_eq!(emptied.as_deref(), Some(&b"first"[..]));
        let (b, _) = s.insert(sent(b"second"), None);
        let (w, _) = s.insert(Event::Wake(()), None);
        assert_eq!(s.take(b, || b"junk".to_vec()), (sent(b"second"), None));
        assert_eq!(s.take(w, Vec::new), (Event::Wake(()), None));
        assert_eq!(s.take(a, Vec::new), (sent(b"first"), Some(via)));
    }

    #[test]
    fn compacting_renumbers_the_slots_in_use_and_keeps_their_events() {
        let mut s: Slots<u32> = Slots::default();
        let mut ids: Vec<u32> = (0..COMPACT_ABOVE as u32 + 10)
            .map(|i| s.insert(Event::Wake(i), None).0)
            .collect();
        let kept: Vec<u32> = ids.iter().copied().filter(|i| i % 5 == 0).collect();
        for &i in ids.iter().filter(|i| *i % 5 != 0) {
            s.take(i, Vec::new);
        }
        assert!(s.sparse());
        ids = kept.clone();
        s.compact(ids.iter_mut());
        assert!(!s.sparse());
        for (new, old) in ids.iter().zip(&kept) {
            assert!(matches!(s.take(*new, Vec::new), (Event::Wake(w), None) if w == *old));
        }
    }
}
