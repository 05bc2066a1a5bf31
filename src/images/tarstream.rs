//! Tar as a stream: read entries from chunks as they arrive, write headers.
//!
//! The engine's image export is a tar that can be gigabytes long and arrives
//! in pieces of any size. [`TarReader`] is fed those pieces and reports each
//! entry's header, then its content as slices of the pieces (shared, not
//! copied), so `skiff load` can decide per entry where it goes before any of
//! its content has arrived. [`header`] and [`END`] write the tars sent on.

use bytes::Bytes;

use super::archive::{checksum_ok, cstr, header_name, parse_size, pax_path};

/// The two zero blocks that end a tar archive.
pub const END: [u8; 1024] = [0; 1024];

/// What an entry is, as far as image archives care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One entry's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path, without a leading `./` or a trailing `/`.
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    /// A symlink's target.
    pub link: String,
}

/// What the reader found in the bytes pushed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Start(Entry),
    /// Content of the entry last started (no padding).
    Data(Bytes),
    /// The entry last started is complete.
    End,
}

/// A push parser for ustar/GNU/PAX archives.
#[derive(Debug, Default)]
pub struct TarReader {
    /// A header block still being filled.
    block: Vec<u8>,
    /// Content bytes of the current entry still to come.
    remaining: u64,
    /// Padding after them.
    padding: u64,
    /// Collecting a PAX header or GNU long name for the next entry.
    meta: Option<(u8, Vec<u8>)>,
    long_name: Option<String>,
    in_entry: bool,
    done: bool,
}

impl TarReader {
    /// Parses `chunk`, appending what it completes to `out`.
    pub fn push(&mut self, chunk: Bytes, out: &mut Vec<Event>) -> Result<(), String> {
        let mut rest = chunk;
        while !rest.is_empty() && !self.done {
            if self.remaining > 0 {
                let n = rest.len().min(self.remaining as usize);
                let data = rest.split_to(n);
                self.remaining -= n as u64;
                match &mut self.meta {
                    Some((_, buf)) => buf.extend_from_slice(&data),
                    None => out.push(Event::Data(data)),
                }
                if self.remaining == 0 {
                    self.end_content(out);
                }
            } else if self.padding > 0 {
                let n = rest.len().min(self.padding as usize);
                let _ = rest.split_to(n);
                self.padding -= n as u64;
            } else {
                let n = rest.len().min(512 - self.block.len());
                self.block.extend_from_slice(&rest.split_to(n));
                if self.block.len() == 512 {
                    let block: [u8; 512] = std::mem::take(&mut self.block)
                        .try_into()
                        .expect("a full block");
                    self.header(&block, out)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the archive ended cleanly (end-of-archive block, or nothing
    /// left half-read).
    pub fn finish(&self) -> Result<(), String> {
        if self.done || (!self.in_entry && self.block.is_empty() && self.meta.is_none()) {
            Ok(())
        } else {
            Err("the image export ended in the middle of a file".into())
        }
    }

    fn header(&mut self, block: &[u8; 512], out: &mut Vec<Event>) -> Result<(), String> {
        if block.iter().all(|&b| b == 0) {
            self.done = true;
            return Ok(());
        }
        if !checksum_ok(block) {
            return Err("the image export is not a valid tar archive (bad header)".into());
        }
        let size = parse_size(&block[124..136]).ok_or("bad size field in the image export")?;
        self.remaining = size;
        self.padding = size.div_ceil(512) * 512 - size;
        let flag = block[156];
        // PAX headers and GNU long names describe the next entry (a global
        // PAX header, `g`, says nothing image archives need).
        if matches!(flag, b'x' | b'L' | b'g') {
            self.meta = Some((flag, Vec::new()));
            if size == 0 {
                self.end_content(out);
            }
            return Ok(());
        }
        let name = self.long_name.take().unwrap_or_else(|| header_name(block));
        let kind = match flag {
            b'0' | 0 | b'7' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            _ => Kind::Other,
        };
        out.push(Event::Start(Entry {
            path: clean(&name),
            kind,
            size,
            link: cstr(&block[157..257]),
        }));
        self.in_entry = true;
        if size == 0 {
            self.end_content(out);
        }
        Ok(())
    }

    fn end_content(&mut self, out: &mut Vec<Event>) {
        match self.meta.take() {
            Some((b'x', data)) => self.long_name = pax_path(&data),
            Some((b'L', data)) => {
                self.long_name = Some(
                    String::from_utf8_lossy(&data)
                        .trim_end_matches('\0')
                        .to_string(),
                )
            }
            Some(_) => {}
            None => {
                out.push(Event::End);
                self.in_entry = false;
            }
        }
    }
}

fn clean(name: &str) -> String {
    name.trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

/// A header for a regular file. Paths up to 255 bytes fit (ustar prefix
/// and name); longer ones are an error.
pub fn header(path: &str, size: u64) -> Result<[u8; 512], String> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .map_err(|e| format!("tar path {path}: {e}"))?;
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    // Read-only, as containerd keeps its blobs.
    h.set_mode(0o444);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    h.set_cksum();
    Ok(*h.as_bytes())
}

/// The zeros that pad `size` bytes of content to a whole block.
pub fn padding(size: u64) -> &'static [u8] {
    &END[..(size.div_ceil(512) * 512 - size) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::tests::tar;

    /// Feeds `bytes` in pieces of `step` and rebuilds (path, content) pairs.
    fn read(bytes: &[u8], step: usize) -> Vec<(Entry, Vec<u8>)> {
        let mut reader = TarReader::default();
        let mut events = Vec::new();
        for piece in bytes.chunks(step) {
            reader
                .push(Bytes::copy_from_slice(piece), &mut events)
                .unwrap();
        }
        reader.finish().unwrap();
        let mut entries: Vec<(Entry, Vec<u8>)> = Vec::new();
        let mut open = false;
        for event in events {
            match event {
                Event::Start(entry) => {
                    assert!(!open, "an entry started inside another");
                    open = true;
                    entries.push((entry, Vec::new()));
                }
                Event::Data(data) => entries.last_mut().unwrap().1.extend_from_slice(&data),
                Event::End => open = false,
            }
        }
        assert!(!open);
        entries
    }

    #[test]
    fn entries_are_read_whatever_the_chunk_size() {
        let big = vec![7u8; 5000];
        let archive = tar(&[("./a/json", b"{}"), ("a/layer.tar", &big), ("empty", b"")]);
        for step in [1, 100, 511, 512, 513, 4096, 1 << 20] {
            let entries = read(&archive, step);
            let names: Vec<&str> = entries.iter().map(|(e, _)| e.path.as_str()).collect();
            assert_eq!(names, ["a/json", "a/layer.tar", "empty"], "step {step}");
            assert_eq!(entries[1].1, big);
            assert_eq!(entries[0].1, b"{}");
            assert_eq!(entries[2].0.size, 0);
        }
    }

    #[test]
    fn written_headers_read_back_including_long_paths() {
        let long = format!(
            "skiff-staging-1-abc-0/layout/blobs/sha256/{}",
            "a".repeat(64)
        );
        let mut archive = Vec::new();
        archive.extend_from_slice(&header(&long, 3).unwrap());
        archive.extend_from_slice(b"abc");
        archive.extend_from_slice(padding(3));
        archive.extend_from_slice(&header("x", 0).unwrap());
        archive.extend_from_slice(&END);
        let entries = read(&archive, 700);
        assert_eq!(entries[0].0.path, long);
        assert_eq!(entries[0].1, b"abc");
        assert_eq!(entries[1].0.kind, Kind::File);
        assert!(header(&"a".repeat(300), 1).is_err());
    }

    #[test]
    fn a_truncated_export_is_an_error() {
        let archive = tar(&[("a", &[1u8; 2000])]);
        let mut reader = TarReader::default();
        let mut events = Vec::new();
        reader
            .push(Bytes::copy_from_slice(&archive[..1500]), &mut events)
            .unwrap();
        assert!(reader.finish().is_err());
        let mut reader = TarReader::default();
        let err = reader
            .push(Bytes::from(vec![1u8; 512]), &mut events)
            .unwrap_err();
        assert!(err.contains("not a valid tar"), "{err}");
    }
}
