//! `xevtchn`: the controller binary. Errors end here as one readable line.

use std::process::ExitCode;

use clap::Parser;
use xevtchn::cli::{Cli, Command, bench, docs, run, serve, trace};

fn main() -> ExitCode {
    // aya's feature probes fail without privileges; the error that follows
    // says so in one line.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,aya::kernel_features=error"))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Plain `xevtchn`: what it can do, then the usage status.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            // One line: what is wrong (clap's first line names the flag).
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            // ... and, for a bad value, which values there are.
            let choices = rendered.lines().map(str::trim).find(|l| l.starts_with("[possible values:"));
            match choices {
                Some(choices) => eprintln!("xevtchn: {line}; {} (see --help)", choices.trim_matches(['[', ']'])),
                None => eprintln!("xevtchn: {line} (see --help)"),
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::bench(args),
        Command::Trace(args) => trace::trace(args),
        Command::Serve(args) => serve::serve(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if err.is::<run::UsageError>() => {
            eprintln!("xevtchn: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("xevtchn: error: {}", without_repeats(&err));
            // 3: the host lacks something (privileges, /dev/kvm, BPF,
            // tracefs); 1: anything else that went wrong.
            ExitCode::from(if xevtchn::cli::host_lacks(&err) { 3 } else { 1 })
        }
    }
}

/// The error's chain joined by ": ", each message once: some libraries'
/// errors repeat their source in their own message ("failed to create map
/// X: failed to create map X: Operation not permitted").
fn without_repeats(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        match parts.last_mut() {
            Some(last) if last.contains(&text) => {}
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ")
}
