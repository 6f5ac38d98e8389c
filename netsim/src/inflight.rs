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

/// Bytes per chunk of the [`Arena`]; a larger datagram gets a chunk of its own.
const CHUNK: usize = 256 * 1024;
/// Empty chunks kept with their memory for reuse, at most.
const SPARE_CHUNKS: usize = 16;
/// Slots are renumbered once at most a quarter of them are in use, and
/// only above this many (small queues are not worth it).
const COMPACT_ABOVE: usize = 1 << 16;

/// Where a datagram's bytes are in the [`Arena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
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
pub(crate) struct Arena {
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
    pub(crate) fn store(&mut self, data: &[u8]) -> Stored {
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
    pub(crate) fn get(&self, s: Stored) -> &[u8] {
        let start = s.start as usize;
        &self.chunks[s.chunk as usize].buf[start..start + s.len as usize]
    }

    /// Done with `s`: its chunk is reused once nothing else points into it.
    pub(crate) fn release(&mut self, s: Stored) {
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
pub(crate) struct Addrs {
    ids: HashMap<SocketAddr, u32>,
    list: Vec<SocketAddr>,
}

impl Addrs {
    /// The number of `addr` (a new one the first time).
    pub(crate) fn id(&mut self, addr: SocketAddr) -> u32 {
        *self.ids.entry(addr).or_insert_with(|| {
            self.list.push(addr);
            (self.list.len() - 1) as u32
        })
    }

    /// The address numbered `id`.
    pub(crate) fn addr(&self, id: u32) -> SocketAddr {
        self.list[id as usize]
    }
}

/// No address (a datagram not sent to a NAT's public address).
pub(crate) const NO_ADDR: u32 = u32::MAX;

/// One queued event, as it waits.
#[derive(Debug)]
pub(crate) enum Queued<W> {
    /// A datagram for endpoint `to` from address number `from`, sent to
    /// address number `via` when that is a NAT's public one (else [`NO_ADDR`]).
    Datagram {
        to: u32,
        from: u32,
        via: u32,
        bytes: Stored,
    },
    /// The driver's wake-up.
    Wake(W),
}

/// The queued events by slot number, and the free slot numbers.
#[derive(Debug)]
pub(crate) struct Slots<W> {
    slots: Vec<Option<Queued<W>>>,
    free: Vec<u32>,
}

impl<W> Default for Slots<W> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<W> Slots<W> {
    /// Put `event` in a slot; its number.
    pub(crate) fn insert(&mut self, event: Queued<W>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(event);
                i
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Take the event out of slot `i`, freeing it.
    pub(crate) fn take(&mut self, i: u32) -> Queued<W> {
        let event = self.slots[i as usize]
            .take()
            .expect("queued events have a slot");
        self.free.push(i);
        event
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
    fn compacting_renumbers_the_slots_in_use_and_keeps_their_events() {
        let mut s: Slots<u32> = Slots::default();
        let mut ids: Vec<u32> = (0..COMPACT_ABOVE as u32 + 10)
            .map(|i| s.insert(Queued::Wake(i)))
            .collect();
        let kept: Vec<u32> = ids.iter().copied().filter(|i| i % 5 == 0).collect();
        for &i in ids.iter().filter(|i| *i % 5 != 0) {
            s.take(i);
        }
        assert!(s.sparse());
        ids = kept.clone();
        s.compact(ids.iter_mut());
        assert!(!s.sparse());
        for (new, old) in ids.iter().zip(&kept) {
            assert!(matches!(s.take(*new), Queued::Wake(w) if w == *old));
        }
    }
}
