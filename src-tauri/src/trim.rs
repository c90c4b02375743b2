//! Giving back what start-up and the window cost once Island sits in the tray (Linux).
//! The window's webview runs in a process of its own that ends when it is closed (see
//! `window`), but this process still built the page's answers and events while it was open,
//! and start-up touched code (GTK's and the core's initialisation) that the tray does not
//! run again. So this process's working set is trimmed: freed heap goes back to the system
//! and the file pages it no longer uses are let go, to be read back from the page cache or
//! the disk when they are used again.
//!
//! The trim runs after the window's process ends, and once after a start hidden in the
//! tray (at login). On Windows and macOS it is a no-op: the window is in the app's process
//! there, and WebView2 and WKWebView run the web content and networking in processes that
//! end with the webview.

/// How long after the window is gone the trim runs: the answers and events still on their
/// way to it are dropped first.
#[cfg(target_os = "linux")]
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Trims this process once the window is gone, on a thread of its own.
pub fn after_window_closed() {
    #[cfg(target_os = "linux")]
    std::thread::spawn(|| {
        std::thread::sleep(SETTLE);
        linux::trim_and_log("The window is closed");
    });
}

/// How long after a start hidden in the tray the trim runs: start-up (connecting,
/// registering, the first preload decisions) is over by then.
#[cfg(target_os = "linux")]
const STARTUP: std::time::Duration = std::time::Duration::from_secs(10);

/// Trims this process once start-up is over when Island starts hidden in the tray: what
/// only start-up used (its code, GTK's and the libraries' initialisation) goes back too, so the
/// tray costs the same whether or not the window was ever opened. Skipped when the owner
/// opened the window meanwhile (`still_hidden` says whether it is closed).
pub fn after_hidden_start(still_hidden: impl Fn() -> bool + Send + 'static) {
    #[cfg(target_os = "linux")]
    std::thread::spawn(move || {
        std::thread::sleep(STARTUP);
        if still_hidden() {
            linux::trim_and_log("Started in the tray");
        }
    });
    #[cfg(not(target_os = "linux"))]
    let _ = still_hidden;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs;

    /// Trims, and logs what the trim gave back after `when` ("The window is closed").
    pub(super) fn trim_and_log(when: &str) {
        let before = resident_mb();
        trim();
        tracing::info!("{when}: Island's memory went from {before} MB to {} MB", resident_mb());
    }

    /// This process's resident memory (VmRSS), in MB.
    pub(super) fn resident_mb() -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok());
        kb.unwrap_or(0) / 1024
    }

    /// One mapping of a regular file, from /proc/self/smaps.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) struct FileMapping {
        start: usize,
        end: usize,
        writable: bool,
        /// Pages of it this process has written (copies of the file's pages).
        anonymous_kb: u64,
    }

    impl FileMapping {
        /// Every resident page is the file's own: dropping them loses nothing, the next
        /// use reads them back. Pages written since (relocations, data) are never dropped.
        fn as_in_the_file(&self) -> bool {
            !self.writable && self.anonymous_kb == 0
        }
    }

    /// Returns freed heap to the system and lets go of file pages: pages only this process
    /// maps are paged out (MADV_PAGEOUT), and a mapping whose pages are all as in the file
    /// (code, read-only data) is dropped from this process (MADV_DONTNEED) even where other
    /// processes share its pages, as the X server does with the GL driver's.
    pub(super) fn trim() {
        // SAFETY: malloc_trim only releases free memory of glibc's allocator.
        #[cfg(target_env = "gnu")]
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
        let smaps = fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        for m in file_mappings(&smaps) {
            let (addr, len) = (m.start as *mut libc::c_void, m.end - m.start);
            // SAFETY: MADV_PAGEOUT on a range the kernel just listed as mapped changes no
            // contents: clean file pages are dropped and read back on their next use.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(addr, len, libc::MADV_PAGEOUT);
            }
            if m.as_in_the_file() {
                // SAFETY: a read-only private file mapping with no written pages: after
                // MADV_DONTNEED its pages are read back from the file, unchanged.
                #[allow(unsafe_code)]
                unsafe {
                    libc::madvise(addr, len, libc::MADV_DONTNEED);
                }
            }
        }
    }

    /// The mappings of regular files in an smaps listing (not the heap, stacks, anonymous
    /// or shared memory, whose pages have nowhere to go without swap).
    pub(super) fn file_mappings(smaps: &str) -> Vec<FileMapping> {
        let mut out: Vec<FileMapping> = Vec::new();
        let mut current: Option<FileMapping> = None;
        for line in smaps.lines() {
            if let Some(kb) = line.strip_prefix("Anonymous:") {
                if let Some(m) = current.as_mut() {
                    m.anonymous_kb = kb.trim().trim_end_matches(" kB").parse().unwrap_or(u64::MAX);
                }
            } else if is_header(line) {
                out.extend(current.take());
                current = file_mapping(line);
            }
        }
        out.extend(current);
        out
    }

    /// A mapping's first line ("start-end perms offset dev inode path"), not a field line
    /// ("Name:  value").
    fn is_header(line: &str) -> bool {
        line.split_whitespace().next().is_some_and(|first| first.contains('-') && !first.ends_with(':'))
    }

    fn file_mapping(line: &str) -> Option<FileMapping> {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?;
        let path = fields.nth(3)?;
        if !path.starts_with('/')
            || path.starts_with("/memfd:")
            || path.starts_with("/SYSV")
            || line.ends_with("(deleted)")
            || perms.ends_with('s')
        {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        Some(FileMapping {
            start: usize::from_str_radix(a, 16).ok()?,
            end: usize::from_str_radix(b, 16).ok()?,
            writable: perms.as_bytes().get(1) != Some(&b'-'),
            // Unknown until its Anonymous line is read: taken as written to.
            anonymous_kb: u64::MAX,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const SMAPS: &str = "\
7f1c00000000-7f1c00010000 r-xp 00000000 fe:01 123 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1
Size:                 64 kB
Rss:                  64 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
7f1c00010000-7f1c00020000 r--p 00010000 fe:01 123 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1
Anonymous:            32 kB
7f1c00020000-7f1c00030000 rw-p 00020000 fe:01 123 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1
Anonymous:             0 kB
55d0a0000000-55d0a0100000 rw-p 00000000 00:00 0                          [heap]
Anonymous:          1024 kB
7f1c00000000-7f1c00010000 rw-p 00000000 00:00 0
Anonymous:            64 kB
7f1c00000000-7f1c00010000 rw-s 00000000 00:01 9                          /memfd:WebKitSharedMemory (deleted)
7f1c00000000-7f1c00010000 rw-s 00000000 00:01 9                          /SYSV00000000 (deleted)
7f1c00000000-7f1c00010000 rw-s 00000000 00:01 9                          /dev/shm/x
7f1c00040000-7f1c00050000 r--p 00000000 fe:01 124 /usr/share/fonts/a.ttf
";

        #[test]
        fn only_regular_file_mappings_are_trimmed_and_only_unwritten_ones_dropped() {
            let maps = file_mappings(SMAPS);
            let at = |start: usize| maps.iter().find(|m| m.start == start).unwrap();
            assert_eq!(maps.len(), 4, "{maps:?}");
            let code = at(0x7f1c_0000_0000);
            assert_eq!((code.end, code.writable, code.anonymous_kb), (0x7f1c_0001_0000, false, 0));
            assert!(code.as_in_the_file());
            // Relocated read-only data has pages of its own; data is writable.
            assert!(!at(0x7f1c_0001_0000).as_in_the_file());
            assert!(!at(0x7f1c_0002_0000).as_in_the_file());
            // A mapping whose Anonymous line is missing counts as written to.
            assert!(!at(0x7f1c_0004_0000).as_in_the_file());
        }

        #[test]
        fn trimming_lowers_the_resident_memory_and_leaves_the_process_working() {
            // Touch a file mapping's pages (this test binary's own code and data are in use,
            // so read a file of our own).
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pages");
            fs::write(&path, vec![7u8; 64 << 20]).unwrap();
            let file = fs::File::open(&path).unwrap();
            // SAFETY: a private read-only mapping of a file nobody else writes.
            #[allow(unsafe_code)]
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    64 << 20,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    0,
                )
            };
            assert_ne!(map, libc::MAP_FAILED);
            // SAFETY: reading inside the mapping just made.
            #[allow(unsafe_code)]
            let bytes = unsafe { std::slice::from_raw_parts(map.cast::<u8>(), 64 << 20) };
            let sum: u64 = bytes.iter().step_by(4096).map(|b| u64::from(*b)).sum();
            let before = resident_mb();
            trim();
            let after = resident_mb();
            assert!(after + 48 <= before, "resident {before} MB before the trim, {after} MB after");
            // The pages read back unchanged.
            assert_eq!(bytes.iter().step_by(4096).map(|b| u64::from(*b)).sum::<u64>(), sum);
            // SAFETY: the mapping made above, no longer read.
            #[allow(unsafe_code)]
            unsafe {
                libc::munmap(map, 64 << 20);
            }
        }
    }
}
