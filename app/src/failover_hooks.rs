//! Carrying out a rule's hooks: HTTP webhooks (a signed JSON POST, retried
//! with backoff) and exec hooks (a program with the event as JSON on its
//! standard input, under a timeout). Each returns what happened, attempt
//! by attempt, for the audit log.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshtwin_failover::Rule;
use meshtwin_failover::rule::{ExecHook, Webhook};
use meshtwin_failover::signature;
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

/// How much of a response or of a program's output is kept.
const KEPT_BYTES: usize = 1024;
/// The first retry waits this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Attempt {
    /// HTTP status, or the program's exit code.
    pub(crate) status: Option<i32>,
    pub(crate) error: Option<String>,
    /// The start of the response body, or of the program's output.
    pub(crate) output: String,
    pub(crate) elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HookResult {
    /// `webhook` or `exec`.
    pub(crate) kind: &'static str,
    /// The URL, or the program.
    pub(crate) target: String,
    pub(crate) ok: bool,
    pub(crate) attempts: Vec<Attempt>,
}

fn kept(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(KEPT_BYTES)]).into_owned()
}

/// POSTs `body` to the webhook, signed with `secret` at `unix_seconds`,
/// until it answers 2xx or its attempts run out. A 4xx other than 429 is
/// not retried: sending the same body again would not change it.
pub(crate) async fn deliver(
    hook: &Webhook,
    secret: &[u8],
    body: Bytes,
    delivery: &str,
    unix_seconds: u64,
) -> HookResult {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let signed = signature::sign(secret, unix_seconds, &body);
    let mut attempts = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    for n in 0..hook.max_attempts {
        if n > 0 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        let started = Instant::now();
        let request = hyper::Request::post(&hook.url)
            .header("content-type", "application/json")
            .header(signature::HEADER, &signed)
            .header("x-meshtwin-delivery", delivery)
            .body(Full::new(body.clone()));
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                attempts.push(failed(format!("bad request: {e}"), started));
                break;
            }
        };
        let timeout = Duration::from_secs(hook.timeout_s);
        let answer = tokio::time::timeout(timeout, async {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, bytes.to_bytes()))
        })
        .await;
        let (status, bytes) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                attempts.push(failed(error, started));
                continue;
            }
            Err(_) => {
                attempts.push(failed(
                    format!("no answer within {} s", hook.timeout_s),
                    started,
                ));
                continue;
            }
        };
        attempts.push(Attempt {
            status: Some(i32::from(status.as_u16())),
            error: None,
            output: kept(&bytes),
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        let retryable = status.is_server_error() || status.as_u16() == 429;
        if status.is_success() || !retryable {
            break;
        }
    }
    let ok = attempts
        .last()
        .and_then(|a| a.status)
        .is_some_and(|s| (200..300).contains(&s));
    HookResult {
        kind: "webhook",
        target: hook.url.clone(),
        ok,
        attempts,
    }
}

fn failed(error: String, started: Instant) -> Attempt {
    Attempt {
        status: None,
        error: Some(error),
        output: String::new(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Runs the program with `input` on its standard input and `env` added to
/// its environment; killed when its timeout passes.
pub(crate) async fn run(hook: &ExecHook, input: &[u8], env: &[(&str, String)]) -> HookResult {
    let program = hook.argv.first().cloned().unwrap_or_default();
    let started = Instant::now();
    let attempt = match run_once(hook, input, env).await {
        Ok((code, output)) => Attempt {
            status: code,
            error: code.is_none().then(|| "killed by a signal".to_owned()),
            output,
            elapsed_ms: started.elapsed().as_millis() as u64,
        },
        Err(error) => failed(error, started),
    };
    HookResult {
        kind: "exec",
        target: program,
        ok: attempt.status == Some(0),
        attempts: vec![attempt],
    }
}

async fn run_once(
    hook: &ExecHook,
    input: &[u8],
    env: &[(&str, String)],
) -> Result<(Option<i32>, String), String> {
    let (program, args) = hook.argv.split_first().ok_or("no program")?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(&hook.env)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let timeout = Duration::from_secs(hook.timeout_s);
    let finished = tokio::time::timeout(timeout, async move {
        // A program that does not read its input must not block us.
        let _ = stdin.write_all(input).await;
        drop(stdin);
        child.wait_with_output().await
    })
    .await;
    match finished {
        Ok(Ok(output)) => {
            let mut text = kept(&output.stdout);
            if !output.stderr.is_empty() {
                text.push_str(&kept(&output.stderr));
            }
            Ok((output.status.code(), kept(text.as_bytes())))
        }
        Ok(Err(e)) => Err(format!("`{program}` failed: {e}")),
        Err(_) => Err(format!(
            "`{program}` did not finish within {} s and was killed",
            hook.timeout_s
        )),
    }
}

/// Calls every hook of `rule` with `payload` (the event, as JSON) at
/// once; a webhook whose secret is not in the environment fails without
/// being sent.
pub(crate) async fn fire(
    rule: &Rule,
    event: &str,
    decision: &str,
    payload: &serde_json::Value,
) -> Vec<HookResult> {
    let body = Bytes::from(payload.to_string());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let delivery = format!("{decision}/{event}");
    let webhooks = rule.webhooks.iter().map(|hook| {
        let (body, delivery) = (body.clone(), delivery.clone());
        async move {
            match std::env::var(&hook.secret_env) {
                Ok(secret) if !secret.is_empty() => {
                    deliver(hook, secret.as_bytes(), body, &delivery, now).await
                }
                _ => HookResult {
                    kind: "webhook",
                    target: hook.url.clone(),
                    ok: false,
                    attempts: vec![failed(
                        format!("the signing secret ${} is not set", hook.secret_env),
                        Instant::now(),
                    )],
                },
            }
        }
    });
    let env = [
        ("MESHTWIN_EVENT", event.to_owned()),
        ("MESHTWIN_RULE", rule.name.clone()),
        ("MESHTWIN_DECISION", decision.to_owned()),
        ("MESHTWIN_SERVICE", rule.service.clone()),
        ("MESHTWIN_LOCALITY", rule.locality.clone()),
    ];
    let execs = rule.exec.iter().map(|hook| run(hook, &body, &env));
    let (mut results, execs) = futures_util::future::join(
        futures_util::future::join_all(webhooks),
        futures_util::future::join_all(execs),
    )
    .await;
    results.extend(execs);
    results
}

#[cfg(test)]
mod tests;
