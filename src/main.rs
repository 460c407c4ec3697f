//! The `snowflaked` binary: the daemon (`serve`) and its client in one executable. All logic
//! lives in the library; this only hands over to the command line.

fn main() -> std::process::ExitCode {
    snowflaked::cli::main()
}
