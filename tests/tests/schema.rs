//! The JSON Schemas in docs/schema/ can fail: what a command printed,
//! changed the ways a consumer would notice (a field added, one missing, a
//! type changed, a percentile renamed), is rejected. The privileged tests
//! check every command's real output against the same schemas (run in
//! workloads.rs and trace.rs, trace and its events in trace.rs, bench in
//! cli.rs and below).

use serde_json::{Value, json};
use xevtchn_tests::{assert_schema, schema_errors};

/// A real `xevtchn run --json` report, as the bpf backend printed it.
fn run_report() -> Value {
    serde_json::from_str(
        r#"{
        "schema": "xevtchn.run/1", "backend": "bpf", "workload": "rebind", "vcpus": 3, "callback": "vector",
        "sent": 106106, "delivered": 5305, "coalesced": 100787, "masked": 0, "spurious_upcalls": 2073, "lost": 0,
        "errors": 0, "first_error": null, "userspace_exits": 3323, "duration_s": 0.5035, "sends_per_s": 210708.6,
        "latency_ns": {"n": 274, "p50": 8352, "p90": 216081, "p99": 388221, "max": 2510358},
        "upcalls": 2414, "stale": 16, "guest_status": 0, "fast_sends": 106106, "fallback_sends": 0,
        "unaccounted_sends": 0, "fast_path": "embedded", "fast_path_unavailable": null, "stopped_by": null,
        "seed": null, "fuzz_calls": null, "fuzz_accepted_calls": null, "fuzz_refused_msrs": null,
        "moves": 3308, "moves_per_s": 6569.1, "move_mean_ns": 152184,
        "host": {"userspace_exits": 3323, "hypercalls": 3321, "userspace_sends": 0, "smoke_writes": 0,
                 "stray_accesses": 0, "coalesced": 0, "masked": 0, "upcalls_raised": 0},
        "bpf": {"fast_sends": 106106, "coalesced": 100787, "masked": 0, "upcalls_raised": 5105,
                "already_pending": 214, "spurious_injections": 101001, "not_fast": 0, "bad_writes": 0,
                "unarmed_sends": 0, "canary": 1},
        "injections": {"msis": 0, "eventfd_writes": 744, "level_reasserts": 0, "undeliverable": 0},
        "kvm": {"exits": 112481, "halt_exits": 3, "mmio_exits": 3323}
    }"#,
    )
    .expect("valid JSON")
}

#[test]
fn a_real_report_passes() {
    assert_schema("run.json", &run_report());
}

#[test]
fn what_a_consumer_would_notice_is_rejected() {
    type Change = (&'static str, fn(&mut Value));
    let changes: [Change; 7] = [
        ("a field the schema does not name", |r| r["bogus"] = json!(1)),
        ("a field missing", |r| _ = r.as_object_mut().unwrap().remove("lost")),
        ("a count as a string", |r| r["sent"] = json!("106106")),
        ("an unknown backend", |r| r["backend"] = json!("Bpf")),
        ("another schema version", |r| r["schema"] = json!("xevtchn.run/2")),
        ("a percentile under another name", |r| {
            r["latency_ns"] = json!({"samples": 1, "p50": 1, "p90": 1, "p99": 1, "max": 1})
        }),
        ("a nested counter missing", |r| _ = r["bpf"].as_object_mut().unwrap().remove("canary")),
    ];
    for (what, change) in changes {
        let mut report = run_report();
        change(&mut report);
        assert!(!schema_errors("run.json", &report).is_empty(), "{what} was accepted");
    }
}

#[test]
fn every_schema_names_its_version_as_a_constant() {
    for (file, id) in [
        ("run.json", xevtchn::schema::RUN),
        ("smoke.json", xevtchn::schema::SMOKE),
        ("trace-interval.json", xevtchn::schema::TRACE_INTERVAL),
        ("bench.json", xevtchn::schema::BENCH),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema").join(file);
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(schema["properties"]["schema"]["const"], id, "{file}");
    }
}
