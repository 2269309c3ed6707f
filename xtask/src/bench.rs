//! `cargo xtask bench`: the standard benchmark matrix, written under
//! target/bench/: the table (bench.txt), every figure (bench.json) and the
//! latency CDFs and throughput bars (bench.svg).

use std::{fs, process::Command};

use anyhow::{Context, Result};

use crate::{build, cmd, setup::Env};

pub fn bench(env: &Env, extra: &[String]) -> Result<()> {
    build::build(env)?;
    let out = env.workspace.join("target/bench");
    fs::create_dir_all(&out)?;
    let json = out.join("bench.json");
    let table = cmd::output(
        Command::new(env.workspace.join("target/release/xevtchn"))
            .args([
                "bench",
                "--workloads",
                "pingpong,flood,fanout,rebind",
                "--repeat",
                "5",
                "--trace-overhead",
                "--scale",
                "--output",
            ])
            .arg(&json)
            .arg("--plot")
            .arg(out.join("bench.svg"))
            .args(extra),
    )
    .context("xevtchn bench")?;
    fs::write(out.join("bench.txt"), &table)?;
    print!("{table}");
    eprintln!("xtask: wrote {}, bench.txt and bench.svg", json.display());
    Ok(())
}
