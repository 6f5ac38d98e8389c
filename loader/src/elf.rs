//! A careful look at a plugin file before `dlopen` maps it: does the file
//! hold every byte its ELF program headers say the loader will map?
//!
//! A library cut short (half-written by `cargo build`, a full disk, an
//! interrupted copy) is mapped by `dlopen` all the same, and the first read
//! of a page past the end of the file kills the process with SIGBUS. This
//! reads only the ELF header and the program-header table (32 or 64 bits,
//! either byte order) with bounds checks on every field. It decides nothing
//! else: a file that is not ELF at all, or for another machine, is left to
//! `dlopen`, which refuses those with its own message. No `unsafe`, no
//! mapping, nothing executed.
//!
//! (A hand-written reader rather than the `object` or `goblin` crates: four
//! header fields and two program-header fields are all that is needed, and
//! neither crate is otherwise a dependency.)

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What is wrong with an ELF file's extent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfProblem {
    /// The file ends before a part its header declares.
    Truncated {
        /// The file's size in bytes.
        size: u64,
        /// The size the part needs.
        needed: u64,
        /// Which part: `ELF header`, `program headers` or `segments`.
        part: &'static str,
    },
    /// The header is not one a loader could use.
    Malformed(String),
    /// The file could not be read.
    Unreadable(String),
}

impl std::fmt::Display for ElfProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElfProblem::Truncated { size, needed, part } => write!(
                f,
                "truncated: the file is {size} bytes, its {part} need {needed}; was it being built?"
            ),
            ElfProblem::Malformed(why) => write!(f, "malformed ELF header: {why}"),
            ElfProblem::Unreadable(why) => write!(f, "cannot read it: {why}"),
        }
    }
}

const MAGIC: &[u8; 4] = b"\x7fELF";

/// Check that the file at `path`, if it is ELF, covers its program-header
/// table and every segment the table declares (`p_offset + p_filesz` of
/// each entry). `Ok` for a file that is not ELF: that is `dlopen`'s to say.
pub fn check_extent(path: &Path) -> Result<(), ElfProblem> {
    let unreadable = |e: std::io::Error| ElfProblem::Unreadable(e.to_string());
    let mut file = File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    let mut head = [0u8; 64];
    let got = read_up_to(&mut file, &mut head).map_err(unreadable)?;
    let head = &head[..got];
    if head.len() < MAGIC.len() || &head[..4] != MAGIC {
        return Ok(());
    }
    let truncated = |needed: u64, part| ElfProblem::Truncated { size, needed, part };
    if head.len() < 6 {
        return Err(truncated(52, "ELF header"));
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        c => return Err(ElfProblem::Malformed(format!("unknown class {c}"))),
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        d => return Err(ElfProblem::Malformed(format!("unknown byte order {d}"))),
    };
    let r = Fields { little };
    let header_len: u64 = if wide { 64 } else { 52 };
    if (head.len() as u64) < header_len {
        return Err(truncated(header_len, "ELF header"));
    }
    let (phoff, phentsize, phnum, entry_len) = if wide {
        (r.u64(head, 0x20), r.u16(head, 0x36), r.u16(head, 0x38), 56)
    } else {
        (
            u64::from(r.u32(head, 0x1c)),
            r.u16(head, 0x2a),
            r.u16(head, 0x2c),
            32,
        )
    };
    if phnum == 0 {
        return Ok(());
    }
    if phnum == 0xffff {
        return Err(ElfProblem::Malformed(
            "more program headers than a loader reads (e_phnum = 0xffff)".into(),
        ));
    }
    if phentsize != entry_len {
        return Err(ElfProblem::Malformed(format!(
            "program headers of {phentsize} bytes (expected {entry_len})"
        )));
    }
    let table_len = u64::from(phnum) * u64::from(phentsize);
    let table_end = phoff
        .checked_add(table_len)
        .ok_or_else(|| ElfProblem::Malformed("program headers beyond any file size".into()))?;
    if table_end > size {
        return Err(truncated(table_end, "program headers"));
    }
    let mut table = vec![0u8; table_len as usize];
    file.seek(SeekFrom::Start(phoff)).map_err(unreadable)?;
    if read_up_to(&mut file, &mut table).map_err(unreadable)? < table.len() {
        return Err(ElfProblem::Unreadable(
            "the file shrank while it was read".into(),
        ));
    }
    let mut needed = 0u64;
    for entry in table.chunks_exact(usize::from(phentsize)) {
        let (offset, filesz) = if wide {
            (r.u64(entry, 8), r.u64(entry, 0x20))
        } else {
            (u64::from(r.u32(entry, 4)), u64::from(r.u32(entry, 0x10)))
        };
        if filesz == 0 {
            continue;
        }
        let end = offset
            .checked_add(filesz)
            .ok_or_else(|| ElfProblem::Malformed("a segment beyond any file size".into()))?;
        needed = needed.max(end);
    }
    if needed > size {
        return Err(truncated(needed, "segments"));
    }
    Ok(())
}

/// Fill as much of `buf` as the file has; the number of bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads header fields in the file's byte order; callers check lengths first.
struct Fields {
    little: bool,
}

impl Fields {
    fn bytes<const N: usize>(&self, b: &[u8], at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&b[at..at + N]);
        if !self.little {
            out.reverse();
        }
        out
    }
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(self.bytes(b, at))
    }
    fn u32(&self, b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(self.bytes(b, at))
    }
    fn u64(&self, b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(self.bytes(b, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF header with `phnum` program headers right
    /// after it, each one segment `(offset, filesz)`.
    fn elf64(segments: &[(u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(MAGIC);
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for &(off, len) in segments {
            let mut e = vec![0u8; 56];
            e[..4].copy_from_slice(&1u32.to_le_bytes());
            e[8..16].copy_from_slice(&off.to_le_bytes());
            e[0x20..0x28].copy_from_slice(&len.to_le_bytes());
            b.extend(e);
        }
        b
    }

    fn check(bytes: &[u8]) -> Result<(), ElfProblem> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lib.so");
        std::fs::write(&p, bytes).unwrap();
        check_extent(&p)
    }

    #[test]
    fn whole_files_pass_and_cut_ones_say_what_is_missing() {
        let mut whole = elf64(&[(0, 200), (200, 100)]);
        whole.resize(300, 0);
        assert_eq!(check(&whole), Ok(()));
        assert_eq!(
            check(&whole[..250]),
            Err(ElfProblem::Truncated {
                size: 250,
                needed: 300,
                part: "segments"
            })
        );
        assert_eq!(
            check(&whole[..100]),
            Err(ElfProblem::Truncated {
                size: 100,
                needed: 176,
                part: "program headers"
            })
        );
        assert_eq!(
            check(&whole[..20]),
            Err(ElfProblem::Truncated {
                size: 20,
                needed: 64,
                part: "ELF header"
            })
        );
        assert_eq!(
            check(&whole[..250]).unwrap_err().to_string(),
            "truncated: the file is 250 bytes, its segments need 300; was it being built?"
        );
    }

    #[test]
    fn insane_headers_are_refused_and_non_elf_is_left_to_dlopen() {
        assert_eq!(check(b"not a library"), Ok(()));
        assert_eq!(check(b""), Ok(()));
        let mut huge = elf64(&[(u64::MAX - 1, 10)]);
        huge.resize(400, 0);
        assert!(matches!(check(&huge), Err(ElfProblem::Malformed(_))));
        let mut bad_entry = elf64(&[(0, 10)]);
        bad_entry[0x36] = 13;
        assert!(matches!(check(&bad_entry), Err(ElfProblem::Malformed(_))));
    }

    #[test]
    fn big_endian_and_32_bit_headers_are_read_in_their_own_order() {
        // ELF32, big-endian, one segment of 0x100 bytes at 0x40 in a file of 0x80.
        let mut b = vec![0u8; 0x34];
        b[..4].copy_from_slice(MAGIC);
        b[4] = 1;
        b[5] = 2;
        b[0x1c..0x20].copy_from_slice(&0x34u32.to_be_bytes());
        b[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes());
        b[0x2c..0x2e].copy_from_slice(&1u16.to_be_bytes());
        let mut e = vec![0u8; 32];
        e[4..8].copy_from_slice(&0x40u32.to_be_bytes());
        e[0x10..0x14].copy_from_slice(&0x100u32.to_be_bytes());
        b.extend(e);
        b.resize(0x80, 0);
        assert_eq!(
            check(&b),
            Err(ElfProblem::Truncated {
                size: 0x80,
                needed: 0x140,
                part: "segments"
            })
        );
    }
}
