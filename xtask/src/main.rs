//! `cargo xtask`: everything needed to go from a fresh machine to a running,
//! tested xevtchn.

mod bench;
mod build;
mod cmd;
mod fuzz;
mod lint;
mod probe;
mod setup;
mod soak;
mod toolchain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Set up, build, run and test xevtchn", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the pinned toolchains, bpf-linker and Debian packages, mount
    /// tracefs, and report what the host can do. Idempotent.
    Setup,
    /// Set up, then build the controller with its BPF object and guest embedded.
    Build,
    /// Set up, build, then run `xevtchn run ARGS`.
    Run {
        /// Arguments passed to `xevtchn run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then rustfmt's check and clippy (warnings denied) on every
    /// crate for its own target: host crates, guest, BPF programs.
    Lint,
    /// Set up, then lint and run every test: unprivileged first, then
    /// privileged.
    Test,
    /// Set up, build, then run everything at once for a long time (rebind,
    /// fuzz, a tracer coming and going, VMs killed) and fail on any loss,
    /// error, panic or leak. Not part of `test` (which runs a short one).
    Soak {
        /// How long.
        #[arg(long, default_value_t = 30.0, value_parser = minutes)]
        minutes: f64,
    },
    /// Set up, then run the libFuzzer target of the hypervisor side
    /// (fuzz/) with cargo-fuzz, built on first use. Not part of `test`
    /// (which runs the same model under proptest).
    Fuzz {
        /// How long.
        #[arg(long, default_value_t = 10.0, value_parser = minutes)]
        minutes: f64,
    },
    /// Set up, build, then run the standard benchmark matrix
    /// (results in target/bench/).
    Bench {
        /// Arguments added to `xevtchn bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn minutes(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(m) if m > 0.0 && m <= 24.0 * 60.0 => Ok(m),
        _ => Err(format!("{text} is not a number of minutes above 0 and at most a day")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::setup().map(|_| ()),
        Command::Build => setup::setup().and_then(|env| build::build(&env)),
        Command::Run { args } => setup::setup().and_then(|env| build::run(&env, &args)),
        Command::Lint => setup::setup().and_then(|env| lint::lint(&env)),
        Command::Test => setup::setup().and_then(|env| build::test(&env)),
        Command::Bench { args } => setup::setup().and_then(|env| bench::bench(&env, &args)),
        Command::Fuzz { minutes } => setup::setup().and_then(|env| fuzz::fuzz(&env, minutes)),
        Command::Soak { minutes } => setup::setup().and_then(|env| {
            build::build(&env)?;
            soak::soak(
                &env.workspace.join("target/release/xevtchn"),
                std::time::Duration::from_secs_f64(minutes * 60.0),
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
