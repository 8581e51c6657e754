//! Failover rules at work in `meshtwin serve`, on a real mesh: `ledger` in
//! region-a and region-b behind `meshtwin-proxy`, called by `payments`'
//! outbound proxy in region-a, all reporting spans to the control plane.
//! When ledger's app in region-a dies, its inbound proxy's spans show the
//! errors in the twin's region-a signals; an `auto` rule decides, writes
//! the decision to the audit log and serves an override that the proxy
//! applies; once the app is back, the control plane's probes show the
//! recovery and traffic moves back. A `dry_run` rule records the decision
//! and its predicted effect and serves nothing.

use std::path::Path;
use std::time::Duration;

use meshtwin_tests::client::{self, metric};
use meshtwin_tests::mesh::{
    MeshProxy, Spawned, call, caller, instance, start_app_on, write_routes,
};
use meshtwin_tests::sandbox::{Meshtwin, eventually, run_meshtwin};

fn rules(mode: &str, hook_out: &Path) -> String {
    format!(
        r#"
[[rules]]
name = "ledger-region-a"
mode = "{mode}"
service = "ledger"
locality = "region-a"
when = {{ signal = "error_ratio", above = 0.2, for_s = 1 }}
recover = {{ signal = "error_ratio", below = 0.01, for_s = 5 }}
shift_traffic = {{ to_locality = "region-b" }}
override_ttl_s = 30
exec = [{{ argv = ["sh", "-c", "cat > \"$OUT\""], env = {{ OUT = "{}" }} }}]
"#,
        hook_out.display()
    )
}

fn audit_kinds(data_dir: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(data_dir.join("audit").join("audit.log")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line[65..]).ok())
        .map(|entry| entry["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn audit_record(data_dir: &Path, kind: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir.join("audit").join("audit.log")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(&line[65..]).unwrap())
        .find(|entry| entry["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} record in\n{text}"))["record"]
        .clone()
}

async fn routes_version(control_plane: &Meshtwin) -> f64 {
    let page = client::get(&format!("{}/metrics", control_plane.web))
        .await
        .text();
    metric(&page, "meshtwin_control_routes_version").unwrap_or(0.0)
}

/// The mesh once ledger's region-a app has died.
struct Scenario {
    dir: tempfile::TempDir,
    control_plane: Meshtwin,
    payments: MeshProxy,
    ledgers: [MeshProxy; 2],
    _app_b: Spawned,
    /// Where ledger's region-a app listened, to start it there again.
    app_a: String,
    _traffic: Traffic,
}

/// payments' calls, stopped with the scenario.
struct Traffic(tokio::task::JoinHandle<()>);

impl Drop for Traffic {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the scenario up to ledger's region-a app dying and its errors
/// reaching the twin.
async fn ledger_a_dies(mode: &str) -> Scenario {
    let dir = tempfile::tempdir().expect("temp dir");
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "").expect("an empty routes file");
    let rules_file = dir.path().join("rules.toml");
    let hook_out = dir.path().join("hook-stdin.json");
    std::fs::write(&rules_file, rules(mode, &hook_out)).expect("rules");
    let control_plane = Meshtwin::serve(&[
        "--mesh-routes",
        routes.to_str().unwrap(),
        "--failover-rules",
        rules_file.to_str().unwrap(),
    ]);
    let (app_a, ledger_a) = instance(&control_plane, "ledger", "region-a").await;
    let (app_b, ledger_b) = instance(&control_plane, "ledger", "region-b").await;
    write_routes(
        &routes,
        "ledger",
        &[
            (ledger_a.inbound.unwrap(), "region-a"),
            (ledger_b.inbound.unwrap(), "region-b"),
        ],
        "",
    );
    let payments = caller(&control_plane, "payments", "region-a").await;
    eventually(
        Duration::from_secs(15),
        "ledger in region-a answering",
        || async {
            let reply = call(payments.outbound, "ledger", "/echo").await;
            (reply.status == 200 && reply.json()["app"] == "ledger-region-a").then_some(())
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(call(payments.outbound, "ledger", "/echo").await.status, 200);
    }
    assert_eq!(audit_kinds(control_plane.data_dir()), ["rules_loaded"]);
    let version = routes_version(&control_plane).await;
    assert_eq!(version, 2.0, "the empty file, then the endpoints");

    // ledger's app in region-a dies; its inbound proxy answers 502 and
    // reports the failed requests until the caller's proxy ejects it.
    // The twin has paired the calls into the payments → ledger edge.
    let graph = format!("{}/api/v1/graph", control_plane.web);
    eventually(
        Duration::from_secs(15),
        "the payments → ledger edge",
        || async {
            let edges = client::get(&graph).await.json()["edges"].clone();
            let edges = edges.as_array().cloned().unwrap_or_default();
            edges
                .iter()
                .any(|e| {
                    let end = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
                    end("source").ends_with("payments") && end("target").ends_with("ledger")
                })
                .then_some(())
        },
    )
    .await;
    let app_a_address = app_a.address("http").to_string();
    app_a.kill();
    // payments keeps calling, ten times a second, as a client would.
    let outbound = payments.outbound;
    let traffic = Traffic(tokio::spawn(async move {
        for _ in 0..3_000 {
            let _ = call(outbound, "ledger", "/echo").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }));
    Scenario {
        dir,
        control_plane,
        payments,
        ledgers: [ledger_a, ledger_b],
        _app_b: app_b,
        app_a: app_a_address,
        _traffic: traffic,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_rule_fails_over_through_the_routes_stream_and_audits_it() {
    let Scenario {
        dir,
        control_plane,
        payments,
        ledgers: _ledgers,
        _app_b,
        app_a,
        _traffic,
    } = ledger_a_dies("auto").await;
    let data_dir = control_plane.data_dir().to_owned();
    eventually(Duration::from_secs(60), "the rule to act", || async {
        audit_kinds(&data_dir)
            .contains(&"act".to_owned())
            .then_some(())
    })
    .await;
    assert_eq!(
        audit_kinds(&data_dir)[..3],
        ["rules_loaded", "decided", "act"]
    );
    let decided = audit_record(&data_dir, "decided");
    assert_eq!(decided["mode"], "auto");
    assert!(decided["value"].as_f64().unwrap() > 0.2, "{decided}");
    let act = audit_record(&data_dir, "act");
    assert_eq!(act["route_override"]["service"], "ledger");
    assert_eq!(act["route_override"]["locality_priorities"]["region-b"], 0);

    // The override goes out as a new routes version, which the proxy applies.
    eventually(
        Duration::from_secs(10),
        "the override served and applied",
        || async {
            let served = routes_version(&control_plane).await;
            let applied = metric(&payments.metrics().await, "meshtwin_proxy_routes_version");
            (served == 3.0 && applied == Some(3.0)).then_some(())
        },
    )
    .await;
    for _ in 0..5 {
        let reply = call(payments.outbound, "ledger", "/echo").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["app"], "ledger-region-b");
    }
    // The exec hook got the decision on its standard input, and its
    // result was audited.
    eventually(
        Duration::from_secs(10),
        "the hook's result audited",
        || async {
            audit_kinds(&data_dir)
                .contains(&"hook_results".to_owned())
                .then_some(())
        },
    )
    .await;
    let results = audit_record(&data_dir, "hook_results");
    assert_eq!(results["results"][0]["ok"], true, "{results}");
    let stdin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("hook-stdin.json")).unwrap())
            .unwrap();
    assert_eq!(stdin["event"], "failover");
    assert_eq!(stdin["rule"], "ledger-region-a");
    assert_eq!(stdin["to_locality"], "region-b");
    assert_eq!(stdin["details"]["kind"], "act");
    assert!(stdin["incidents"].is_array(), "{stdin}");

    // ledger's app in region-a comes back. The control plane's probes
    // reach it while traffic is away; once the errors have left the
    // twin's one-minute window and recovery has held 5 s, traffic moves
    // back: the override is withdrawn and the proxy serves region-a again.
    let _app_a = start_app_on("ledger-region-a", &app_a, false);
    eventually(Duration::from_secs(120), "the fail-back", || async {
        audit_kinds(&data_dir)
            .contains(&"fail_back".to_owned())
            .then_some(())
    })
    .await;
    let back = audit_record(&data_dir, "fail_back");
    assert_eq!(back["dry_run"], false, "{back}");
    eventually(
        Duration::from_secs(45),
        "traffic back in region-a",
        || async {
            // Renewals of the override were versions too: the proxy has
            // applied the latest, the one without it.
            let served = routes_version(&control_plane).await;
            let applied = metric(&payments.metrics().await, "meshtwin_proxy_routes_version");
            let reply = call(payments.outbound, "ledger", "/echo").await;
            (applied == Some(served)
                && reply.status == 200
                && reply.json()["app"] == "ledger-region-a")
                .then_some(())
        },
    )
    .await;
    // The fail-back's hook ran too; its result is audited when it ends.
    eventually(
        Duration::from_secs(10),
        "the fail-back hook audited",
        || async {
            let kinds = audit_kinds(&data_dir);
            (kinds.iter().filter(|k| *k == "hook_results").count() == 2).then_some(())
        },
    )
    .await;

    // The chain checks out while the control plane keeps writing to it.
    let (code, out) = run_meshtwin(&["audit", "verify", "--data-dir", data_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (status, _) = control_plane.terminate();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_records_the_decision_and_moves_nothing() {
    // Bound whole: every process and the traffic live to the test's end.
    let scenario = ledger_a_dies("dry_run").await;
    let (dir, control_plane, payments) =
        (&scenario.dir, &scenario.control_plane, &scenario.payments);
    let ledger_a = &scenario.ledgers[0];
    let data_dir = control_plane.data_dir().to_owned();
    for _ in 0..600 {
        if audit_kinds(&data_dir).contains(&"decided".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !audit_kinds(&data_dir).contains(&"decided".to_owned()) {
        let graph = client::get(&format!("{}/api/v1/graph", control_plane.web))
            .await
            .text();
        let log =
            std::fs::read_to_string(data_dir.join("audit").join("audit.log")).unwrap_or_default();
        let spans = |page: String| {
            page.lines()
                .filter(|l| l.contains("spans") || l.contains("requests_total"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (p, a) = (
            spans(payments.metrics().await),
            spans(ledger_a.metrics().await),
        );
        let cp = spans(
            client::get(&format!("{}/metrics", control_plane.web))
                .await
                .text(),
        );
        panic!(
            "no decision within 30 s\naudit:\n{log}\ngraph:\n{graph}\npayments:\n{p}\nledger-a:\n{a}\ncontrol plane:\n{cp}"
        );
    }
    let decided = audit_record(&data_dir, "decided");
    assert_eq!(decided["mode"], "dry_run");
    let prediction = &decided["prediction"];
    assert_eq!(prediction["from_locality"], "region-a");
    assert_eq!(prediction["to_locality"], "region-b");
    assert!(
        prediction["moved_share"].as_f64().unwrap() > 0.0,
        "{prediction}"
    );
    assert_eq!(prediction["edges"][0]["caller"], "payments", "{prediction}");
    // Nothing moves and no hook runs: no act record, the routes stay at
    // version 2.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!audit_kinds(&data_dir).contains(&"act".to_owned()));
    assert!(!audit_kinds(&data_dir).contains(&"hook_results".to_owned()));
    assert!(!dir.path().join("hook-stdin.json").exists());
    assert_eq!(routes_version(control_plane).await, 2.0);
}
