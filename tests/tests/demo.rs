//! `meshtwin demo` shows the whole Online Boutique graph within five
//! seconds of starting to serve.

use std::time::Duration;

use meshtwin_model::graph::GraphSnapshot;
use meshtwin_tests::client::get;
use meshtwin_tests::sandbox::{Meshtwin, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_graph_is_complete_within_five_seconds() {
    let demo = Meshtwin::demo(&[]);
    let url = format!("{}/api/v1/graph", demo.web);
    let graph = eventually(Duration::from_secs(5), "12 nodes and 16 edges", || async {
        let graph: GraphSnapshot = serde_json::from_value(get(&url).await.json()).ok()?;
        (graph.nodes.len() == 12 && graph.edges.len() == 16).then_some(graph)
    })
    .await;
    let frontend = graph.nodes.iter().find(|n| n.name == "frontend").unwrap();
    assert_eq!(frontend.namespace.as_deref(), Some("boutique"));
    assert_eq!(frontend.instances, 2);
    assert_eq!(frontend.regions, ["us-central1"]);
    let redis = graph
        .edges
        .iter()
        .find(|e| e.target == "redis-cart")
        .unwrap();
    assert_eq!(redis.source, "boutique/cart");
}

/// `meshtwin simulate` sends the Online Boutique traffic to any OTLP
/// endpoint, over either transport.
#[tokio::test(flavor = "multi_thread")]
async fn simulate_sends_online_boutique_to_any_endpoint_over_either_transport() {
    for protocol in ["grpc", "http"] {
        let target = Meshtwin::serve(&[]);
        let endpoint = match protocol {
            "grpc" => target.otlp_grpc.clone(),
            _ => target.otlp_http.clone(),
        };
        let output = std::process::Command::new(meshtwin_tests::sandbox::meshtwin_bin())
            .args(["simulate", "--endpoint", &endpoint, "--protocol", protocol])
            .args(["--rate", "50", "--seed", "3", "--duration", "3"])
            .output()
            .expect("run meshtwin simulate");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{protocol}: {stdout}");
        assert!(
            stdout.contains("; 0 requests (0 spans) failed"),
            "{protocol}: {stdout}"
        );
        let url = format!("{}/api/v1/graph", target.web);
        eventually(Duration::from_secs(10), "the whole graph", || async {
            let graph: GraphSnapshot = serde_json::from_value(get(&url).await.json()).ok()?;
            (graph.nodes.len() == 12 && graph.edges.len() == 16).then_some(())
        })
        .await;
    }
}
