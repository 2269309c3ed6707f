//! The smoke object: a counter of one process's MMIO writes.
#![no_std]
#![no_main]

#[macro_use]
#[path = "../common.rs"]
mod common;
#[path = "../mmio_count.rs"]
mod mmio_count;
#[path = "../whoami.rs"]
mod whoami;
