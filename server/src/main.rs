//! The `sealpost` binary: a thin shell over [`sealpost_server::cli`].

fn main() -> std::process::ExitCode {
    sealpost_server::cli::main()
}
