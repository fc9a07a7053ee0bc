//! Giving freed memory back to the OS.
//!
//! A connection's buffers are freed as soon as they drain (no high-water mark is kept per
//! connection), but glibc's malloc keeps freed small chunks in its arenas: after a large
//! write backlog (many frames of a slow reader) the process would stay at its peak size. Each
//! worker adds up the large backlogs it freed (see `Conn::take_backlog`) and, once they reach
//! [`TRIM_AT`], asks malloc to return free pages (`malloc_trim`) at the end of the batch. TLS
//! handshakes count too (each frees OpenSSL's handshake state and buffers, scattered among the
//! established connections' memory). The cost is bounded by the work that caused it: a trim
//! needs a megabyte of backlog, or 64 handshakes, first.

use std::cell::Cell;

/// Freed backlog that triggers a trim.
pub(crate) const TRIM_AT: usize = 1 << 20;

thread_local! {
    static FREED: Cell<usize> = const { Cell::new(0) };
}

/// Note `bytes` of large buffers freed on this worker.
pub(crate) fn released(bytes: usize) {
    if bytes > 0 {
        FREED.with(|f| f.set(f.get().saturating_add(bytes)));
    }
}

/// At the end of a batch: return free memory to the OS if enough was freed since last time.
pub(crate) fn give_back() {
    if FREED.with(Cell::get) < TRIM_AT {
        return;
    }
    FREED.with(|f| f.set(0));
    trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim takes no pointer, only releases free memory, and is
    // thread-safe (it locks each arena).
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
