//! The twin's detectors end to end: a generated Online Boutique case (ten
//! minutes, 60 % of cart's calls failing from minute 7 for two minutes) is
//! replayed flat out into a real `meshtwin serve`, with its own
//! timestamps from an hour ago; `GET /api/v1/anomalies` flags cart's error
//! rate within 30 s of the fault, and nothing on cart before it; headless
//! Chromium finds the alarms in the UI's anomalies list and selects cart
//! from one (screenshot in target/screenshots/ui-anomalies.png). One
//! incident holds cart's alarms, is shown in the UI's incident panel, and
//! is still there after a restart. Its root causes (`/api/v1/incidents/{id}/rca`
//! and `POST /api/v1/rca` over the past window) put cart first, with
//! evidence, its path from the entry and exemplar traces; the UI lists
//! them, highlights the path and opens an exemplar.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtwin_datasets::dataset::read_manifest;
use meshtwin_model::anomaly::{Anomaly, Deviation, Signal, Subject};
use meshtwin_model::incident::Incident;
use meshtwin_tests::client::{get, metric, post_json};
use meshtwin_tests::sandbox::{Meshtwin, eventually, run_meshtwin};
use meshtwin_tests::tools;

const SECOND: u64 = 1_000_000_000;
const FAULT_START_S: u64 = 420;
const FAULT_END_S: u64 = 540;

/// Runs `meshtwin ARGS`, which must succeed.
fn run(args: &[&str]) {
    let (code, text) = run_meshtwin(args);
    assert_eq!(code, 0, "{args:?}:\n{text}");
}

#[derive(serde::Deserialize)]
struct Listing {
    total: u64,
    anomalies: Vec<Anomaly>,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_fault_is_flagged_on_its_service_within_half_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    // On a whole minute, so the 10 s buckets fall on the same spans every
    // run and the outcome does not depend on the time the test starts.
    let hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        * 60
        - 3600;
    let start = hour_ago * SECOND;
    let case = dir.path().join("case.toml");
    std::fs::write(
        &case,
        format!(
            "topology = \"online-boutique\"\nduration_s = 600.0\n\n[options]\nseed = 3\n\
             start_unix_nano = {start}\n\n[[options.faults]]\ntype = \"error_returns\"\n\
             share = 0.6\nservice = \"cart\"\nstart_s = {FAULT_START_S}.0\n\
             duration_s = {}.0\n",
            FAULT_END_S - FAULT_START_S
        ),
    )
    .unwrap();
    let dataset = dir.path().join("dataset");
    run(&[
        "generate",
        "--case",
        case.to_str().unwrap(),
        "--out",
        dataset.to_str().unwrap(),
    ]);
    let manifest = read_manifest(&dataset).unwrap();

    let data = dir.path().join("data");
    // Metric points reach the store's table within a second, not a minute.
    let config = dir.path().join("meshtwin.toml");
    std::fs::write(&config, "[store]\ntables_flush_seconds = 1\n").unwrap();
    let config_args = ["--config", config.to_str().unwrap()];
    let meshtwin = Meshtwin::serve_in(&data, &config_args);
    run(&[
        "replay",
        dataset.to_str().unwrap(),
        "--endpoint",
        &meshtwin.otlp_grpc,
        "--speed",
        "max",
        "--timestamps",
        "keep",
    ]);
    let metrics_url = format!("{}/metrics", meshtwin.web);
    // Root causes are read from the store, which may lag the twin on a
    // busy machine: wait for both.
    eventually(
        Duration::from_secs(90),
        "every span in the twin and the store",
        || {
            let url = metrics_url.clone();
            let spans = Some(manifest.spans as f64);
            async move {
                let page = get(&url).await.text();
                (metric(&page, "meshtwin_twin_spans_ingested_total") == spans
                    && metric(&page, "meshtwin_store_spans_in_segments_total") == spans)
                    .then_some(())
            }
        },
    )
    .await;
    // The replay ends at the fault's end + 60 s; the buckets close within
    // seconds of event time, so the listing is complete once cart shows.
    let url = format!("{}/api/v1/anomalies", meshtwin.web);
    let listing: Listing = eventually(Duration::from_secs(30), "an alarm on cart", || {
        let url = url.clone();
        async move {
            let listing: Listing = serde_json::from_value(get(&url).await.json()).ok()?;
            listing
                .anomalies
                .iter()
                .any(|a| a.id == "boutique/cart")
                .then_some(listing)
        }
    })
    .await;
    let fault_start = start + FAULT_START_S * SECOND;
    // Alarms are dated by the end of their 10 s bucket.
    let after_fault = |at: u64| at > fault_start;
    let on_cart: Vec<&Anomaly> = listing
        .anomalies
        .iter()
        .filter(|a| a.subject == Subject::Node && a.id == "boutique/cart")
        .collect();
    assert!(
        on_cart.iter().all(|a| after_fault(a.at_unix_nanos)),
        "cart flagged before its fault: {on_cart:?}"
    );
    let first_error = on_cart
        .iter()
        .filter(|a| a.signal == Signal::ErrorRate && a.deviation == Deviation::Above)
        .map(|a| a.at_unix_nanos)
        .min()
        .unwrap_or_else(|| panic!("no error-rate alarm on cart: {on_cart:?}"));
    let delay_s = first_error.saturating_sub(fault_start) / SECOND;
    assert!(
        delay_s <= 30,
        "cart's errors flagged {delay_s} s after the fault"
    );
    // The counter on /metrics counts the same alarms.
    let page = get(&metrics_url).await.text();
    assert_eq!(
        metric(&page, "meshtwin_twin_anomalies_total"),
        Some(listing.total as f64)
    );
    assert!(listing.total >= listing.anomalies.len() as u64);

    // One incident holds cart's alarms, opened within 30 s of the fault.
    let incidents_url = format!("{}/api/v1/incidents", meshtwin.web);
    let incidents = get(&incidents_url).await.json();
    let incidents: Vec<Incident> = serde_json::from_value(incidents["incidents"].clone()).unwrap();
    let with_cart: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.nodes.iter().any(|n| n == "boutique/cart"))
        .collect();
    assert_eq!(with_cart.len(), 1, "{incidents:?}");
    let incident = with_cart[0];
    let opened_s = incident.opened_unix_nanos.saturating_sub(fault_start) / SECOND;
    assert!(
        after_fault(incident.opened_unix_nanos) && opened_s <= 30,
        "opened {opened_s} s after the fault: {incident:?}"
    );
    let one = get(&format!("{incidents_url}/{}", incident.id))
        .await
        .json();
    assert_eq!(one["id"], incident.id);
    assert_eq!(
        get(&format!("{incidents_url}/x")).await.status.as_u16(),
        400
    );
    assert_eq!(
        get(&format!("{incidents_url}?state=sideways"))
            .await
            .status
            .as_u16(),
        400
    );

    // Root causes: cart first, with where its errors start, the path from
    // the entry down to it, and exemplar traces the store returns whole.
    let ranked = get(&format!("{incidents_url}/{}/rca", incident.id))
        .await
        .json();
    let top = &ranked["causes"][0];
    assert_eq!(top["service"], "cart", "{ranked}");
    assert!(
        top["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "error_origin"),
        "{top}"
    );
    let path: Vec<&str> = top["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(path.first(), Some(&"frontend"), "{top}");
    assert_eq!(path.last(), Some(&"cart"), "{top}");
    // The detectors' alarms on cart in the window come with it.
    assert!(
        top["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["signal"] == "error_rate" && a["id"] == "boutique/cart"),
        "{top}"
    );
    let exemplar = top["exemplars"][0].as_str().expect("an exemplar trace");
    let trace = get(&format!("{}/api/v1/traces/{exemplar}", meshtwin.web)).await;
    assert_eq!(trace.status.as_u16(), 200);
    let trace = trace.json();
    assert!(
        trace["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "cart" && s["error"] == true),
        "{trace}"
    );
    // Any past window, by its times: the fault's first two minutes.
    let rca_url = format!("{}/api/v1/rca", meshtwin.web);
    let window = serde_json::json!({
        "from": fault_start / SECOND,
        "to": (fault_start / SECOND + 120).to_string(),
    });
    let ranked = post_json(&rca_url, &window).await;
    assert_eq!(ranked.0, 200, "{}", ranked.1);
    assert_eq!(ranked.1["causes"][0]["service"], "cart", "{}", ranked.1);
    assert!(ranked.1["spans"].as_u64() > Some(1000), "{}", ranked.1);
    assert!(ranked.1["metric_points"].as_u64() > Some(0), "{}", ranked.1);
    // Before the fault, cart's errors had not started: whatever else the
    // window holds, nothing blames cart.
    let calm =
        serde_json::json!({"from": fault_start / SECOND - 180, "to": fault_start / SECOND - 60});
    let calm = post_json(&rca_url, &calm).await.1;
    let blames_cart = calm["causes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["service"] == "cart" && !c["evidence"].as_array().unwrap().is_empty());
    assert!(!blames_cart, "{calm}");
    for bad in [
        serde_json::json!({"from": "yesterday", "to": 1}),
        serde_json::json!({"from": 20, "to": 10}),
        serde_json::json!({"to": 10}),
    ] {
        let (status, body) = post_json(&rca_url, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().is_some(), "{body}");
    }

    let screenshot = tools::screenshot("ui-anomalies.png");
    let ui = format!("{}/", meshtwin.web);
    let summary = tools::run_browser(
        "ui_anomalies.mjs",
        &[
            ui.as_ref(),
            screenshot.as_ref(),
            "boutique/cart".as_ref(),
            incident.id.to_string().as_ref(),
        ],
    )
    .await;
    assert!(summary["subject_rows"].as_u64() >= Some(1), "{summary}");
    let text = summary["text"].as_str().unwrap();
    assert!(
        text.contains("cart") && text.contains("error rate"),
        "{summary}"
    );
    assert_eq!(summary["empty_hint_hidden"], true, "{summary}");
    assert_eq!(summary["heading"], "cart (service)", "{summary}");
    assert_eq!(
        summary["incident_heading"],
        format!("Incident #{}", incident.id),
        "{summary}"
    );
    assert_eq!(summary["incident_marks_cart"], true, "{summary}");
    assert_eq!(summary["causes"][0]["service"], "cart", "{summary}");
    assert_eq!(summary["causes"][0]["picked"], true, "{summary}");
    let alarms = summary["causes"][0]["alarms"].as_str().unwrap_or_default();
    assert!(alarms.contains("error rate above"), "{summary}");
    assert_eq!(summary["path_marks_cart"], true, "{summary}");
    assert!(
        !summary["path_edges"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert!(summary["exemplar_opened"].is_string(), "{summary}");
    assert_eq!(summary["errors"], serde_json::json!([]), "no page errors");

    // Kept across a restart on the same data directory.
    let (status, _) = meshtwin.terminate();
    assert!(status.success(), "{status:?}");
    let restarted = Meshtwin::serve_in(&data, &config_args);
    let again = get(&format!(
        "{}/api/v1/incidents/{}",
        restarted.web, incident.id
    ))
    .await
    .json();
    let again: Incident = serde_json::from_value(again).unwrap();
    // It may have grown since it was read (the clock moves on with the
    // wall once the replay ends), never lost what it held.
    assert!(
        incident.nodes.iter().all(|n| again.nodes.contains(n)),
        "{:?} then {:?}",
        incident.nodes,
        again.nodes
    );
    assert_eq!(again.opened_unix_nanos, incident.opened_unix_nanos);
    restarted.terminate();
}
