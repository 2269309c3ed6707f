//! Shell completions and man pages, generated from the clap definitions so
//! they can never drift from the flags the binary accepts.

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell.
    /// Bash: `xevtchn completions bash > /etc/bash_completion.d/xevtchn`.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write xevtchn.1 and one page per subcommand (xevtchn-run.1, ...) into
    /// this directory, instead of printing xevtchn.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` to stdout.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "xevtchn", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints the top-level man page, or writes every page into `args.dir`.
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    let command = Cli::command();
    match &args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command).render(&mut out).context("writing the man page")?;
            out.flush().context("writing the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            eprintln!("xevtchn: man pages written to {} (try: man -l {}/xevtchn.1)", dir.display(), dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
