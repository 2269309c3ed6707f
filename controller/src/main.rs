//! `xevtchn`: the controller binary. Errors end here as one readable line.

use std::process::ExitCode;

use clap::Parser;
use xevtchn::cli::{Cli, Command, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xevtchn: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
