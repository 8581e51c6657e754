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
