//! The doorbell object: the in-kernel send path and `whoami`, what a VM
//! on the bpf backend (or the host's service) loads.
#![no_std]
#![no_main]
// BPF atomics (fetch_or, fetch_and, xchg) without compare-and-swap.
#![feature(core_intrinsics)]
#![allow(internal_features)]

#[macro_use]
#[path = "../common.rs"]
mod common;
#[path = "../atomics.rs"]
mod atomics;
#[path = "../doorbell.rs"]
mod doorbell;
#[path = "../whoami.rs"]
mod whoami;
