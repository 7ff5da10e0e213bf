//! The `tokengate` binary: a thin shell over the library's command line.

/// Small, short-lived allocations dominate the request path; see `PERFORMANCE.md`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tokengate::main()
}
