//! How the process asks glibc for memory.
//!
//! glibc's malloc gives a thread that finds the arenas in use an arena of its own, up to eight per
//! core, and an arena keeps what it once held. The server's threads (tokio's workers, actix's one
//! runtime per core, the blocking pool, sqlx's and reqwest's tasks moving between them) end up with
//! seven arenas holding 35 MiB between them after a fulfilment burst, half the process's peak
//! resident memory (`docs/PERFORMANCE.md`, "Memory"). Two arenas measured as fast, and ~20 MiB
//! smaller. An operator's own `MALLOC_ARENA_MAX`, which glibc reads at start-up, is left alone.

/// The arenas the process may use when the environment does not say.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`ARENAS`], unless `MALLOC_ARENA_MAX` says otherwise. Call first
/// thing in `main`, before any thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: `mallopt` only sets one of the allocator's parameters (it takes the allocator's own
    // lock) and has no pointer arguments; `M_ARENA_MAX` with a positive value is always valid.
    // Called before any other thread exists, so no thread has picked an arena yet.
    let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    if applied != 1 {
        eprintln!("market: glibc refused to cap its malloc arenas; memory use may be higher");
    }
}

/// Other C libraries have their own allocator policies: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}
