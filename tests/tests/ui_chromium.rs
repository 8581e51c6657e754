//! Headless Chromium opens the UI of a running demo and finds all twelve
//! Online Boutique nodes drawn within 10 s, updating live; it writes a
//! screenshot to target/screenshots/ui-demo.png.

use std::process::Command;

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

#[test]
fn chromium_draws_the_whole_online_boutique_graph_within_ten_seconds() {
    let browser_tests = tools::browser_tests();
    let chromium = tools::chromium();
    let screenshots = tools::workspace().join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let screenshot = screenshots.join("ui-demo.png");
    let _ = std::fs::remove_file(&screenshot);

    let demo = Meshtwin::demo(&[]);
    let output = Command::new("node")
        .current_dir(&browser_tests)
        .env("CHROMIUM", &chromium)
        .arg("ui_graph.mjs")
        .arg(format!("{}/", demo.web))
        .arg(&screenshot)
        .arg(serde_json::to_string(&NODES).unwrap())
        .arg("10000")
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "the browser did not see all nodes drawn within 10 s:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
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
