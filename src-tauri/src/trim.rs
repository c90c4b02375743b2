//! Giving back what the window cost once it is closed. Measured on Linux (WebKitGTK): the
//! heap the window leaves behind is small; what stays is WebKit's network process (about
//! 60 MB), which the web context keeps for the next window, and the pages of the libraries
//! the webview loaded into this process (the GL driver with LLVM, WebKit, JavaScriptCore:
//! about 90 MB), which stay resident although nothing runs them while Island sits in the
//! tray. So after the window is destroyed the network process is ended (WebKit starts a new
//! one for the next window) and this process's working set is trimmed: freed heap goes back
//! to the system and file-backed pages are paged out, to be read back from the page cache or
//! the disk by whatever still uses them.
//!
//! On Windows (WebView2) and macOS (WKWebView) the web content and networking already run
//! in processes that end with the webview, so there is nothing to do there.

use std::time::Duration;

use tracing::debug;

/// How long after the window is destroyed the trim runs: GTK and WebKit finish tearing the
/// webview down on the main loop first.
const SETTLE: Duration = Duration::from_secs(2);

/// Ends the webview's helper processes and trims this process, on a thread of its own.
pub fn after_window_closed() {
    #[cfg(target_os = "linux")]
    std::thread::spawn(|| {
        std::thread::sleep(SETTLE);
        linux::end_network_process();
        std::thread::sleep(SETTLE);
        let paged_out = linux::trim();
        debug!(paged_out_mb = paged_out / 1_000_000, "window closed: working set trimmed");
    });
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs;

    /// Our children that are WebKit network processes (`comm` is cut to 15 bytes).
    fn network_processes() -> Vec<i32> {
        let mut pids = Vec::new();
        let tasks = fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
        for task in tasks {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim_end().starts_with("WebKitNetwork") {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Asks the network process to end (SIGTERM: it exits cleanly; WebKit launches a new
    /// one when a window needs it).
    pub(super) fn end_network_process() {
        for pid in network_processes() {
            // SAFETY: kill(2) with a pid we just read and a valid signal number.
            #[allow(unsafe_code)]
            let r = unsafe { libc::kill(pid, libc::SIGTERM) };
            tracing::debug!(pid, ok = r == 0, "ended the WebKit network process");
        }
    }

    /// Returns freed heap to the system and pages out file-backed mappings; returns the
    /// bytes of mappings advised.
    pub(super) fn trim() -> u64 {
        // SAFETY: malloc_trim only releases free memory of glibc's allocator.
        #[cfg(target_env = "gnu")]
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
        let maps = fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let mut advised = 0;
        for (start, end) in maps.lines().filter_map(file_mapping) {
            // SAFETY: MADV_PAGEOUT on a range the kernel just listed as mapped changes no
            // contents: clean file pages are dropped and read back on their next use.
            #[allow(unsafe_code)]
            let r = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT) };
            if r == 0 {
                advised += (end - start) as u64;
            }
        }
        advised
    }

    /// The address range of a mapping of a regular file (not the heap, stacks, anonymous or
    /// shared memory, whose pages have nowhere to go without swap).
    fn file_mapping(line: &str) -> Option<(usize, usize)> {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let path = fields.nth(4)?;
        if !path.starts_with('/')
            || path.starts_with("/memfd:")
            || path.starts_with("/SYSV")
            || line.ends_with("(deleted)")
        {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_regular_file_mappings_are_paged_out() {
            let lib = "7f1c00000000-7f1c00010000 r-xp 00000000 fe:01 123 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1";
            assert_eq!(file_mapping(lib), Some((0x7f1c_0000_0000, 0x7f1c_0001_0000)));
            for other in [
                "55d0a0000000-55d0a0100000 rw-p 00000000 00:00 0 [heap]",
                "7f1c00000000-7f1c00010000 rw-p 00000000 00:00 0",
                "7f1c00000000-7f1c00010000 rw-s 00000000 00:01 9 /memfd:WebKitSharedMemory (deleted)",
                "7f1c00000000-7f1c00010000 rw-s 00000000 00:01 9 /SYSV00000000 (deleted)",
            ] {
                assert_eq!(file_mapping(other), None, "{other}");
            }
        }

        #[test]
        fn trimming_pages_out_and_leaves_the_process_working() {
            assert!(trim() > 0, "this test binary maps files");
            assert!(network_processes().is_empty());
        }
    }
}
