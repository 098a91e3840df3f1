//! The demo is the product's end-to-end story; it must keep passing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_end_to_end() {
    let out = liutong_exchange::demo::run(false, true).await.expect("the demo runs");
    assert!(out.ok, "every store re-verified");
    let steps = out.json["steps"].as_array().expect("steps");
    assert!(steps.len() >= 12, "{}", out.json);
    let text = out.json.to_string();
    for expected in [
        "party.pending",
        "party.suspended",
        "MISMATCH",
        "NOT NOTARIZED",
        "OK",
        "audit trace",
        "query.not_select",
        "VERIFIED offline",
        "Groth16 proof verifies",
    ] {
        assert!(text.contains(expected), "the demo no longer shows {expected}");
    }
    let last = steps.last().expect("a last step");
    assert!(
        last["title"]
            .as_str()
            .is_some_and(|t| t.contains("court verifies the auditor's bundle")),
        "the demo ends with the audit: {last}"
    );
}
