//! What links what: the proxy links no query engine, no Arrow and no
//! dataframes; the `meshtwin` binary (the demo's path) links no Polars,
//! which lives only in the `meshtwin-parquet` tool.

use std::process::Command;

use meshtwin_tests::tools::workspace;

const HEAVY: [&str; 3] = ["datafusion", "polars", "arrow"];
const DATAFRAMES: [&str; 1] = ["polars"];

/// The normal and build dependencies of `package`, one crate per line.
fn tree(package: &str) -> String {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", package, "-e", "normal,build"])
        .args(["--prefix", "none"])
        .current_dir(workspace())
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn crates_of<'a>(tree: &'a str, banned: &[&str]) -> Vec<&'a str> {
    tree.lines()
        .filter(|line| banned.iter().any(|heavy| line.starts_with(heavy)))
        .collect()
}

#[test]
fn the_proxy_links_no_query_engine_and_no_dataframes() {
    let tree = tree("meshtwin-proxy");
    assert!(
        tree.contains("rustls"),
        "the tree is not the proxy's: {tree}"
    );
    assert_eq!(crates_of(&tree, &HEAVY), Vec::<&str>::new());
}

#[test]
fn the_demo_binary_links_no_dataframes_and_the_parquet_tool_does() {
    let demo = tree("meshtwin");
    assert!(
        demo.contains("meshtwin-eval"),
        "the tree is not meshtwin's: {demo}"
    );
    assert_eq!(crates_of(&demo, &DATAFRAMES), Vec::<&str>::new());
    let tool = tree("meshtwin-parquet");
    assert!(tool.lines().any(|l| l.starts_with("polars ")), "{tool}");
}
