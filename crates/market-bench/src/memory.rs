//! What the server's resident memory is made of, read from `/proc/<pid>/smaps` at the end of a
//! scenario: the binary and libraries (file-backed pages), the main heap (`[heap]`), glibc's
//! per-thread malloc arenas (anonymous read-write mappings starting on a 64 MiB boundary: glibc
//! reserves each arena as a 64 MiB-aligned region), and the rest of the anonymous memory (thread
//! stacks, large allocations mapped on their own). Together with the thread count, it tells an
//! allocator's overhead from the data the service keeps.

use serde::Serialize;

/// glibc's `HEAP_MAX_SIZE` on 64-bit: arenas other than the main one are aligned to it.
const ARENA_ALIGN: u64 = 64 * 1024 * 1024;

/// A process's resident memory by kind, in KiB.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    pub threads: u64,
    pub rss_kib: u64,
    pub file_kib: u64,
    pub heap_kib: u64,
    pub arenas: u64,
    pub arenas_kib: u64,
    pub other_anon_kib: u64,
}

impl Breakdown {
    /// One line for the report.
    pub fn describe(&self) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        format!(
            "RSS {:.1} MiB now, {} threads: binary and libraries {:.1}, main heap {:.1}, {} malloc arenas {:.1}, other anonymous (stacks, large blocks) {:.1}",
            mib(self.rss_kib),
            self.threads,
            mib(self.file_kib),
            mib(self.heap_kib),
            self.arenas,
            mib(self.arenas_kib),
            mib(self.other_anon_kib)
        )
    }
}

/// The breakdown of process `pid` now (`None` when it cannot be read).
pub fn breakdown(pid: u32) -> Option<Breakdown> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut out = Breakdown {
        threads: status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        ..Breakdown::default()
    };
    let mut kind = Kind::Other;
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            let kib: u64 = rss
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            out.rss_kib += kib;
            match kind {
                Kind::File => out.file_kib += kib,
                Kind::Heap => out.heap_kib += kib,
                Kind::Arena => out.arenas_kib += kib,
                Kind::Other => out.other_anon_kib += kib,
            }
        } else if let Some(k) = mapping(line) {
            if k == Kind::Arena {
                out.arenas += 1;
            }
            kind = k;
        }
    }
    Some(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Heap,
    Arena,
    Other,
}

/// The kind of mapping a smaps header line (`start-end perms offset dev inode [path]`) opens.
fn mapping(line: &str) -> Option<Kind> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let (start, _) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let path = fields.nth(3).unwrap_or("");
    Some(if path.starts_with('/') {
        Kind::File
    } else if path == "[heap]" {
        Kind::Heap
    } else if path.is_empty() && perms.starts_with("rw") && start % ARENA_ALIGN == 0 {
        Kind::Arena
    } else {
        Kind::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_told_apart_by_path_and_alignment() {
        assert_eq!(
            mapping("7f0000000000-7f0000100000 rw-p 00000000 00:00 0"),
            Some(Kind::Arena)
        );
        assert_eq!(
            mapping("7f0000001000-7f0000100000 rw-p 00000000 00:00 0"),
            Some(Kind::Other)
        );
        assert_eq!(
            mapping("55d000000000-55d000100000 rw-p 00000000 00:00 0 [heap]"),
            Some(Kind::Heap)
        );
        assert_eq!(
            mapping("55d000000000-55d000100000 r-xp 00000000 08:01 42 /usr/bin/market"),
            Some(Kind::File)
        );
        assert_eq!(mapping("Rss:                 4 kB"), None);
    }
}
