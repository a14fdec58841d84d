//! The `sealpost` binary: a thin shell over [`sealpost_server::cli`].

/// mimalloc instead of the system allocator: glibc's malloc keeps an arena per thread that
/// allocated, and memory freed in the arenas of parse and database threads stayed resident
/// after large messages (peak RSS 1,184 MiB against 1,070 MiB with two arenas, the same
/// 20 x 50 MB round of `bench/smtp-large.sh`), beyond what the DATA memory budget counts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sealpost_server::cli::main()
}
