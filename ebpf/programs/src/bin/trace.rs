//! The tracing object: `xevtchn trace`'s hooks, and `whoami` (to trace
//! this process's own VM).
#![no_std]
#![no_main]
// BPF atomics (fetch_or, fetch_and, xchg) without compare-and-swap.
#![feature(core_intrinsics)]
#![allow(internal_features)]

#[macro_use]
#[path = "../common.rs"]
mod common;
#[path = "../trace/mod.rs"]
mod trace;
#[path = "../whoami.rs"]
mod whoami;
