//! Every kind of bad OTLP input gets the right status and a counter, and a
//! valid request right after it still succeeds.

use meshtwin_tests::client::{get, metric, post};
use meshtwin_tests::otlp::{self, calls, grpc_raw_export, gzip, trace_id};
use meshtwin_tests::sandbox::Meshtwin;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::Code;
use tonic::codec::CompressionEncoding;

/// Small, so "too large" is cheap to send.
const LIMIT: usize = 64 * 1024;
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn valid() -> ExportTraceServiceRequest {
    calls("client", "server", &[trace_id(1, 1)])
}

fn with_bad_trace_id() -> ExportTraceServiceRequest {
    let mut request = valid();
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![7; 5];
    request
}

/// A valid request with one huge attribute: `bytes` of repetitive text.
fn oversized(bytes: usize) -> ExportTraceServiceRequest {
    let mut request = valid();
    request.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(otlp::text("padding", &"x".repeat(bytes)));
    request
}

/// `google.rpc.Status` as OTLP/HTTP returns it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// One bad HTTP request and what it must get back.
struct HttpCase<'a> {
    name: &'a str,
    content_type: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Vec<u8>,
    status: u16,
    message: &'a str,
}

fn case<'a>(
    name: &'a str,
    content_type: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Vec<u8>,
    status: u16,
    message: &'a str,
) -> HttpCase<'a> {
    HttpCase {
        name,
        content_type,
        headers,
        body,
        status,
        message,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_refuses_each_bad_input_and_keeps_serving() {
    let limit = LIMIT.to_string();
    let meshtwin = Meshtwin::serve(&["--max-request-bytes", &limit]);
    let url = format!("{}/v1/traces", meshtwin.otlp_http);
    let garbage = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec();
    let truncated = {
        let bytes = valid().encode_to_vec();
        bytes[..bytes.len() / 2].to_vec()
    };
    let bomb = gzip(&oversized(4 * LIMIT).encode_to_vec());
    assert!(bomb.len() < LIMIT, "compressed it is small");
    let json_bad_id = serde_json::to_vec(&with_bad_trace_id()).unwrap();
    let gzipped = [("content-encoding", "gzip")];
    let cases = [
        case(
            "garbage bytes",
            PROTOBUF,
            &[],
            garbage,
            400,
            "malformed protobuf",
        ),
        case(
            "truncated protobuf",
            PROTOBUF,
            &[],
            truncated,
            400,
            "malformed protobuf",
        ),
        case(
            "bad trace id",
            PROTOBUF,
            &[],
            with_bad_trace_id().encode_to_vec(),
            400,
            "trace_id has 5 bytes",
        ),
        case(
            "bad trace id (json)",
            JSON,
            &[],
            json_bad_id,
            400,
            "trace_id has 5 bytes",
        ),
        case(
            "odd hex id (json)",
            JSON,
            &[],
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]}"#.to_vec(),
            400,
            "malformed JSON",
        ),
        case(
            "garbage json",
            JSON,
            &[],
            b"{not json".to_vec(),
            400,
            "malformed JSON",
        ),
        case(
            "wrong content type",
            "text/plain",
            &[],
            valid().encode_to_vec(),
            400,
            "unsupported content type",
        ),
        case(
            "over the limit",
            PROTOBUF,
            &[],
            oversized(2 * LIMIT).encode_to_vec(),
            413,
            "exceeds the limit",
        ),
        case(
            "gzip bomb",
            PROTOBUF,
            &gzipped,
            bomb,
            413,
            "decompressed body exceeds",
        ),
        case(
            "not gzip",
            PROTOBUF,
            &gzipped,
            valid().encode_to_vec(),
            400,
            "invalid gzip",
        ),
        case(
            "unknown encoding",
            PROTOBUF,
            &[("content-encoding", "br")],
            valid().encode_to_vec(),
            400,
            "unsupported content encoding",
        ),
    ];
    for HttpCase {
        name,
        content_type,
        headers,
        body,
        status,
        message,
    } in cases
    {
        let reply = post(&url, content_type, headers, body).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.text());
        let error = if content_type == JSON {
            let json = reply.json();
            json["message"].as_str().unwrap_or_default().to_owned()
        } else {
            RpcStatus::decode(reply.body.as_ref())
                .unwrap_or_else(|e| panic!("{name}: status body is not google.rpc.Status: {e}"))
                .message
        };
        assert!(
            error.contains(message),
            "{name}: {error:?} lacks {message:?}"
        );
        let ok = post(&url, PROTOBUF, &[], valid().encode_to_vec()).await;
        assert_eq!(
            ok.status.as_u16(),
            200,
            "valid request after {name}: {}",
            ok.text()
        );
    }

    // A gzip-compressed valid request works.
    let ok = post(
        &url,
        PROTOBUF,
        &[("content-encoding", "gzip")],
        gzip(&valid().encode_to_vec()),
    )
    .await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.text());

    // One unusable span is rejected alone, reported as partial success.
    let mut partial = calls("client", "server", &[trace_id(2, 1), [0; 16]]);
    partial.resource_spans[1].scope_spans[0].spans.truncate(1);
    let reply = post(&url, JSON, &[], serde_json::to_vec(&partial).unwrap()).await;
    assert_eq!(reply.status.as_u16(), 200);
    let body = reply.json();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], 1, "{body}");
    assert!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("all-zero")
    );

    let page = get(&format!("{}/metrics", meshtwin.web)).await.text();
    let bad = |reason: &str| {
        metric(
            &page,
            &format!(
                "meshtwin_collector_bad_requests_total{{transport=\"http\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(bad("malformed"), Some(7.0), "{page}");
    assert_eq!(bad("content_type"), Some(1.0));
    assert_eq!(bad("too_large"), Some(2.0));
    assert_eq!(bad("encoding"), Some(1.0));
    let rejected = "meshtwin_collector_spans_rejected_total{transport=\"http\"}";
    assert_eq!(metric(&page, rejected), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_refuses_each_bad_input_with_invalid_argument_and_keeps_serving() {
    let limit = LIMIT.to_string();
    let meshtwin = Meshtwin::serve(&["--max-request-bytes", &limit]);
    let endpoint = meshtwin.otlp_grpc.clone();
    let truncated = {
        let bytes = valid().encode_to_vec();
        bytes[..bytes.len() / 2].to_vec()
    };
    let cases = [
        (
            "garbage bytes",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
            "",
        ),
        ("truncated protobuf", truncated, ""),
        (
            "bad trace id",
            with_bad_trace_id().encode_to_vec(),
            "trace_id has 5 bytes",
        ),
        (
            "over the limit",
            oversized(2 * LIMIT).encode_to_vec(),
            "too large",
        ),
    ];
    for (name, body, message) in cases {
        let status = grpc_raw_export(&endpoint, body).await.expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(
            status.message().contains(message),
            "{name}: {:?}",
            status.message()
        );
        grpc_raw_export(&endpoint, valid().encode_to_vec())
            .await
            .unwrap_or_else(|e| panic!("valid request after {name}: {e:?}"));
    }

    let mut client = TraceServiceClient::connect(endpoint.clone())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    // Compressed and valid: accepted.
    client.export(valid()).await.expect("gzip export");
    // Small compressed, too large decompressed.
    let status = client.export(oversized(4 * LIMIT)).await.expect_err("bomb");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // One unusable span is rejected alone, reported as partial success.
    let mut partial = calls("client", "server", &[trace_id(3, 1), [0; 16]]);
    partial.resource_spans[1].scope_spans[0].spans.truncate(1);
    let response = client.export(partial).await.expect("partial").into_inner();
    let partial_success = response.partial_success.expect("partial success reported");
    assert_eq!(partial_success.rejected_spans, 1);

    let page = get(&format!("{}/metrics", meshtwin.web)).await.text();
    let bad = |reason: &str| {
        metric(
            &page,
            &format!(
                "meshtwin_collector_bad_requests_total{{transport=\"grpc\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(bad("malformed"), Some(3.0), "{page}");
    assert_eq!(bad("too_large"), Some(2.0));
}
