//! The fuzz workload, short (the soak runs it long): on each backend, the
//! guest's fuzzing vCPUs throw random hypercalls, MSR accesses and MMIO at
//! the hypervisor while vCPUs 0 and 1 play pingpong. The VMM must answer
//! every call with a success or a Xen errno (the guest checks), lose no
//! event of the pair, keep its log to a few lines a second, and run on.

use std::process::Command;

use serde_json::Value;
use xevtchn_tests::{assert_schema, controller_binary, privileged};

/// Seeds run on every backend: fixed, so that a failure replays.
const SEEDS: [u64; 2] = [1, 0x5eed_f00d];
const SECONDS: u64 = 3;

fn fuzz(backend: &str, seed: u64) -> (Value, String) {
    let out = Command::new(controller_binary())
        .args(["run", "--workload", "fuzz", "--vcpus", "3", "--backend", backend, "--json"])
        .args(["--duration", &SECONDS.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("xevtchn run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "fuzz on {backend}, seed {seed}: {:?}\n{stderr}", out.status);
    let report: Value = serde_json::from_slice(&out.stdout).expect("the run's JSON");
    assert_schema("run.json", &report);
    (report, stderr)
}

#[test]
fn the_hypervisor_answers_every_random_call_and_loses_nothing() {
    let _vm = privileged();
    for backend in ["userspace", "bpf"] {
        for seed in SEEDS {
            let (r, stderr) = fuzz(backend, seed);
            let what = format!("{backend}, seed {seed}: {r}");
            assert_eq!(r["seed"].as_u64(), Some(seed), "the report names its seed");
            assert_eq!((r["lost"].as_u64(), r["errors"].as_u64()), (Some(0), Some(0)), "{what}");
            assert!(r["fuzz_calls"].as_u64() > Some(1000), "the fuzzers ran: {what}");
            assert!(r["fuzz_refused_msrs"].as_u64() > Some(0), "refused MSR accesses were survived: {what}");
            assert!(r["fuzz_accepted_calls"].as_u64() > Some(50), "calls got past validation too: {what}");
            assert!(r["delivered"].as_u64() > Some(100), "the pair played on: {what}");
            assert_eq!(r["unaccounted_sends"].as_u64(), Some(0), "{what}");
            // Guest-caused lines are limited to 5 a second (plus the run's own few).
            let lines = stderr.lines().count() as u64;
            assert!(lines <= 5 * (SECONDS + 2) + 10, "{lines} lines of log in {SECONDS} s:\n{stderr}");
        }
    }
}

#[test]
fn a_seed_is_only_for_the_fuzz_workload() {
    let out = Command::new(controller_binary()).args(["run", "--workload", "flood", "--seed", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seed seeds the fuzz workload"));
}
