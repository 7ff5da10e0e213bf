//! The `tokengate` binary: a thin shell over [`tokengate::cli`].

fn main() -> std::process::ExitCode {
    tokengate::cli::main()
}
