//! `xevtchn trace`, in one place: the tracing programs and their maps
//! (`bpf`), snapshots turned into intervals (`sampler`, `report`), the
//! event stream (`events`), and the renderings: plain lines (`text`), the
//! live terminal view (`view`); `cli::trace` only parses and picks one.

pub mod bpf;
pub mod events;
pub mod report;
pub mod sampler;
pub mod target;
pub mod text;
pub mod view;
pub mod xen_hypercall;
