//! A run hands the memory it freed back to the system as each of its phases ends.
//!
//! Within a phase, memory freed is memory the phase soon wants again (pages of records, decoded
//! segments, encode buffers): the allocator keeps it, up to ten seconds by default. Handed back
//! as soon as it was freed, every reuse faulted it in again page by page: 138,000 faults in a
//! 10M-line run, about 7% of its time, against 22,500 now (bench/http_log.sh, README). Phases
//! differ in what they allocate, so what one kept would only sit under the next one's peak:
//! each ends here.

/// Returns every page freed so far to the system.
pub fn release_freed() {
    #[cfg(not(target_env = "msvc"))]
    // SAFETY: a documented jemalloc control (`arena.<MALLCTL_ARENAS_ALL>.purge`) with nothing
    // to read or write; the null pointers say so. Its result only says whether it purged.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}
