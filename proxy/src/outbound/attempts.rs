//! One outbound request, attempt by attempt: pick an endpoint, inject any
//! drill fault, send within the route's deadline, feed the outcome to the
//! balancer and outlier detection, and try another endpoint when the
//! failure is retryable, the body can be replayed and the budget allows.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::retry::budget::Budget;

use super::Outbound;
use crate::balance::{self, Pick};
use crate::body::{ProxyBody, incoming};
use crate::fault;
use crate::outlier::Verdict;
use crate::pool::SendError;
use crate::replay::{ReplayBody, Replayer};
use crate::routes::{Destination, Endpoint};
use crate::telemetry::{ErrorSource, grpc_status_in_headers};

/// Why the proxy answers a request itself.
pub(super) struct Failure {
    pub(super) status: StatusCode,
    pub source: ErrorSource,
    pub message: String,
}

/// How a request ended, and what it took.
pub(super) struct Outcome {
    pub result: Result<Response<Incoming>, Failure>,
    /// The endpoint of the last attempt.
    pub endpoint: Option<Arc<Endpoint>>,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub fault: Option<&'static str>,
    /// Endpoints this request's failed attempts got ejected.
    pub ejections: u32,
    /// Turned away because every endpoint was at its limit.
    pub breaker_open: bool,
}

/// What is kept to send a request again.
struct Template {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    replayer: Option<Replayer>,
}

impl Template {
    fn next(&self) -> Option<Request<ProxyBody>> {
        let body = self.replayer.as_ref()?.replay()?;
        let mut request = Request::new(body.boxed_unsync());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        Some(request)
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// What one attempt's result means for the request.
enum Next {
    Done(Result<Response<Incoming>, Failure>),
    Retry(Result<Response<Incoming>, Failure>),
}

impl Outbound {
    pub(super) async fn send_with_retries(
        &self,
        destination: &Destination,
        request: Request<Incoming>,
        grpc: bool,
        upgrade: bool,
    ) -> Outcome {
        let retry = &destination.retry;
        let idempotent = is_idempotent(request.method());
        let small_body = request
            .body()
            .size_hint()
            .upper()
            .is_none_or(|n| n <= retry.max_body_bytes as u64);
        let replayable = retry.max_retries > 0 && !upgrade && small_body;
        let (parts, body) = request.into_parts();
        let (first_body, replayer) = if replayable {
            let (body, replayer) = ReplayBody::new(body, retry.max_body_bytes);
            (body.boxed_unsync(), Some(replayer))
        } else {
            (incoming(body), None)
        };
        let template = Template {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            replayer,
        };
        let http2 = parts.version == http::Version::HTTP_2;
        let mut request = Some(Request::from_parts(parts, first_body));
        destination.budget.deposit();
        let deadline = destination.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tried: Vec<Arc<Endpoint>> = Vec::new();
        let mut outcome = Outcome {
            result: Err(failure(
                StatusCode::BAD_GATEWAY,
                ErrorSource::Internal,
                "no attempt made",
            )),
            endpoint: None,
            attempt: 0,
            fault: None,
            ejections: 0,
            breaker_open: false,
        };
        while let Some(next_request) = request.take() {
            let endpoint = match balance::pick(destination, &tried, Instant::now()) {
                Pick::Endpoint(endpoint) => endpoint,
                Pick::NoEndpoints => {
                    outcome.result = Err(failure(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorSource::Internal,
                        format!("service `{}` has no endpoints", destination.name),
                    ));
                    return outcome;
                }
                Pick::BreakerOpen => {
                    self.metrics.resilience(&destination.name, "breaker_open");
                    outcome.breaker_open = true;
                    outcome.result = Err(failure(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorSource::Internal,
                        format!(
                            "circuit breaker open: every endpoint of `{}` is at its limit",
                            destination.name
                        ),
                    ));
                    return outcome;
                }
            };
            outcome.endpoint = Some(endpoint.clone());
            if tried.is_empty() {
                let injected = fault::draw(&destination.faults, &endpoint.locality);
                outcome.fault = injected.label();
                if let Some(delay) = injected.delay {
                    self.metrics.resilience(&destination.name, "fault_delay");
                    tokio::time::sleep(delay).await;
                }
                if let Some(status) = injected.abort {
                    self.metrics.resilience(&destination.name, "fault_abort");
                    outcome.result = Err(failure(
                        status,
                        ErrorSource::Upstream,
                        "fault injected: abort",
                    ));
                    return outcome;
                }
            }
            let (next, ejected) = self
                .attempt(destination, &endpoint, next_request, http2, deadline)
                .await;
            outcome.ejections += u32::from(ejected);
            let next = classify(next, destination, idempotent, grpc);
            match next {
                Next::Retry(result) if outcome.attempt < retry.max_retries => {
                    request = template.next();
                    if request.is_some() && !destination.budget.withdraw() {
                        self.metrics
                            .resilience(&destination.name, "retry_budget_exhausted");
                        request = None;
                    }
                    if request.is_some() {
                        self.metrics.resilience(&destination.name, "retry");
                        outcome.attempt += 1;
                        tried.push(endpoint);
                    }
                    outcome.result = result;
                }
                Next::Retry(result) | Next::Done(result) => outcome.result = result,
            }
        }
        outcome
    }

    /// One attempt on one endpoint, with its effect on the endpoint's load
    /// and health: the result, and whether its failure ejected the endpoint.
    async fn attempt(
        &self,
        destination: &Destination,
        endpoint: &Endpoint,
        request: Request<ProxyBody>,
        http2: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> (Result<Response<Incoming>, AttemptError>, bool) {
        let started = Instant::now();
        let in_flight = endpoint.load.start();
        let gauge = self.metrics.in_flight(&destination.name);
        gauge.inc();
        let send = self.send(destination, endpoint, request, http2);
        let result = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, send)
                .await
                .unwrap_or(Err(AttemptError::Timeout)),
            None => send.await,
        };
        drop(in_flight);
        gauge.dec();
        let now = Instant::now();
        endpoint.load.observe(now - started, now);
        let failed = match &result {
            Ok(response) => response.status().is_server_error(),
            Err(AttemptError::Timeout) => {
                self.metrics.resilience(&destination.name, "timeout");
                true
            }
            Err(_) => true,
        };
        let mut ejected = false;
        if failed {
            let verdict = endpoint.health.failed(
                &destination.outlier,
                now,
                destination.ejected(now),
                destination.endpoints.len(),
            );
            match verdict {
                Verdict::Ejected(length) => {
                    tracing::warn!(service = %destination.name, endpoint = %endpoint.address,
                        seconds = length.as_secs_f64(), "endpoint ejected");
                    self.metrics.resilience(&destination.name, "ejection");
                    ejected = true;
                }
                Verdict::Spared => self
                    .metrics
                    .resilience(&destination.name, "ejection_spared"),
                Verdict::Kept => {}
            }
        } else {
            endpoint.health.succeeded(&destination.outlier, now);
        }
        (result, ejected)
    }
}

/// Why an attempt got no response.
pub(super) enum AttemptError {
    Send(String, SendError),
    Timeout,
}

fn failure(status: StatusCode, source: ErrorSource, message: impl Into<String>) -> Failure {
    Failure {
        status,
        source,
        message: message.into(),
    }
}

/// Whether an attempt's result ends the request or is worth another try.
fn classify(
    result: Result<Response<Incoming>, AttemptError>,
    destination: &Destination,
    idempotent: bool,
    grpc: bool,
) -> Next {
    let retry = &destination.retry;
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let retryable = if grpc {
                grpc_status_in_headers(response.headers())
                    .is_some_and(|code| retry.on_grpc.iter().any(|c| i64::from(*c) == code))
                    || retry.on_status.contains(&status)
            } else {
                idempotent && retry.on_status.contains(&status)
            };
            if retryable {
                Next::Retry(Ok(response))
            } else {
                Next::Done(Ok(response))
            }
        }
        Err(AttemptError::Timeout) => {
            let ms = destination.timeout.map_or(0, |t| t.as_millis());
            Next::Done(Err(failure(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorSource::Upstream,
                format!("{} gave no response within {ms} ms", destination.name),
            )))
        }
        Err(AttemptError::Send(message, error)) => {
            // Nothing was sent when the connection failed, so any request
            // may go elsewhere; a broken exchange only if it is idempotent.
            let retryable = matches!(error, SendError::Connect(_)) || idempotent;
            let failed = Err(failure(
                StatusCode::BAD_GATEWAY,
                ErrorSource::Upstream,
                message,
            ));
            if retryable {
                Next::Retry(failed)
            } else {
                Next::Done(failed)
            }
        }
    }
}
