//! Headless Chromium opens the UI of a running demo and finds all twelve
//! Online Boutique nodes drawn within 10 s, updating live; it writes a
//! screenshot to target/screenshots/ui-demo.png.

use meshtwin_tests::sandbox::Meshtwin;
use meshtwin_tests::tools;

const NODES: [&str; 12] = [
    "loadgenerator",
    "frontend",
    "productcatalog",
    "currency",
    "cart",
    "recommendation",
    "shipping",
    "checkout",
    "ad",
    "email",
    "payment",
    "redis-cart",
];

#[tokio::test(flavor = "multi_thread")]
async fn chromium_draws_the_whole_online_boutique_graph_within_ten_seconds() {
    let screenshot = tools::screenshot("ui-demo.png");
    let demo = Meshtwin::demo(&[]);
    let url = format!("{}/", demo.web);
    let names = serde_json::to_string(&NODES).unwrap();
    let summary = tools::run_browser(
        "ui_graph.mjs",
        &[
            url.as_ref(),
            screenshot.as_ref(),
            names.as_ref(),
            "10000".as_ref(),
        ],
    )
    .await;
    let mut drawn: Vec<String> = serde_json::from_value(summary["drawn"].clone()).unwrap();
    drawn.sort();
    let mut expected: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(drawn, expected);
    let mut listed: Vec<String> = serde_json::from_value(summary["listed"].clone()).unwrap();
    listed.sort();
    assert_eq!(listed, expected, "the side panel lists every node");
    assert_eq!(summary["status"], "live");
    assert_eq!(summary["edges"], 16, "{summary}");
    assert_eq!(summary["errors"], serde_json::json!([]), "no page errors");
    let versions = summary["versions"].as_array().unwrap();
    assert!(
        versions[1].as_u64() > versions[0].as_u64(),
        "live updates without reload"
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}
