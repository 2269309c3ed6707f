//! Any sequence of guest and host operations against a `Domain`, with the
//! model's invariants checked after each (xevtchn_xen::fuzz_model). A
//! violation is a crash that libFuzzer keeps, with its input.
#![no_main]

use xevtchn_xen::fuzz_model::{Op, run_all};

libfuzzer_sys::fuzz_target!(|ops: Vec<Op>| {
    if let Err(violation) = run_all(&ops) {
        panic!("{violation}");
    }
});
