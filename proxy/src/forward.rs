//! What both sides do to an HTTP message they pass on: drop hop-by-hop
//! headers, rewrite the request target for the next hop, splice
//! `Upgrade` connections, and answer with the proxy's own errors.

use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use http_body_util::BodyExt;

use crate::body::{ProxyBody, full};
use crate::telemetry::{ErrorSource, ObservedBody, SpanInFlight, grpc_status_in_headers};

/// Set on responses the proxy itself produced, saying why.
pub const PROXY_ERROR_HEADER: &str = "meshtwin-proxy-error";

const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "http2-settings",
];

/// Whether an HTTP/1.1 request asks to switch protocols.
pub fn is_upgrade<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11
        && request.headers().contains_key(UPGRADE)
        && connection_tokens(request.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes headers that belong to one connection; an upgrade keeps
/// `Connection: upgrade` and `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| !(upgrade && t.eq_ignore_ascii_case("upgrade")))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(te) = headers.get("te")
        && te.as_bytes() != b"trailers"
    {
        headers.remove("te");
    }
    if upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(CONNECTION);
        headers.remove(UPGRADE);
    }
}

/// The host the caller addressed: `:authority`, else `Host`, without port.
pub fn request_host<B>(request: &Request<B>) -> Option<String> {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            let host = request.headers().get(HOST)?.to_str().ok()?;
            let host: http::uri::Authority = host.parse().ok()?;
            Some(host.host().to_owned())
        })?;
    Some(authority.to_ascii_lowercase())
}

/// The request target for the next hop: origin-form for HTTP/1.1 (the
/// `Host` header travels unchanged), absolute for HTTP/2, whose
/// `:authority` keeps what the caller addressed.
pub fn next_hop_uri<B>(request: &Request<B>) -> Uri {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if request.version() != Version::HTTP_2 {
        return Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
    }
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(HOST)?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned());
    Uri::builder()
        .scheme(request.uri().scheme_str().unwrap_or("http"))
        .authority(authority)
        .path_and_query(path)
        .build()
        .unwrap_or_else(|_| Uri::from_static("/"))
}

/// Takes the caller's side of a possible upgrade before the request is
/// passed on.
pub fn take_upgrade<B>(request: &mut Request<B>) -> Option<OnUpgrade> {
    is_upgrade(request).then(|| hyper::upgrade::on(request))
}

/// After a `101 Switching Protocols`, copies bytes both ways between the
/// caller and the endpoint until either side closes.
pub fn splice_upgrade(downstream: OnUpgrade, response: &mut Response<Incoming>) {
    let upstream = hyper::upgrade::on(response);
    tokio::spawn(async move {
        let (downstream, upstream) = match tokio::try_join!(downstream, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        let mut downstream = TokioIo::new(downstream);
        let mut upstream = TokioIo::new(upstream);
        if let Err(error) = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
            tracing::debug!(%error, "upgraded connection ended");
        }
    });
}

/// Passes an endpoint's response back: records its status on the span,
/// splices an accepted upgrade, drops hop-by-hop headers, and finishes the
/// span when the body ends.
pub fn pass_response(
    mut response: Response<Incoming>,
    mut span: Option<SpanInFlight>,
    upgrade: Option<OnUpgrade>,
) -> Response<ProxyBody> {
    let status = response.status();
    if let Some(span) = span.as_mut() {
        span.http_status(status.as_u16());
        if let Some(code) = grpc_status_in_headers(response.headers()) {
            span.grpc_status(code);
        }
    }
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && let Some(upgrade) = upgrade {
        splice_upgrade(upgrade, &mut response);
    }
    strip_hop_by_hop(response.headers_mut(), switching);
    response.map(|body| ObservedBody::new(body, span, ErrorSource::Upstream).boxed_unsync())
}

/// A response the proxy makes itself, with the reason in a header and
/// the body.
pub fn proxy_error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(full(format!("meshtwin-proxy: {message}\n")));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(message) {
        response.headers_mut().insert(PROXY_ERROR_HEADER, value);
    }
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    response
}

/// Whether a request is gRPC, by its content type.
pub fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed_but_upgrades_survive() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, "keep-alive, x-secret, upgrade".parse().unwrap());
        headers.insert("x-secret", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("te", "gzip".parse().unwrap());
        headers.insert(UPGRADE, "websocket".parse().unwrap());
        headers.insert("x-kept", "1".parse().unwrap());
        let mut plain = headers.clone();
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1, "{plain:?}");
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers[UPGRADE], "websocket");
        assert_eq!(headers[CONNECTION], "upgrade");
        assert!(!headers.contains_key("x-secret"));
    }

    #[test]
    fn grpc_keeps_te_trailers() {
        let mut headers = HeaderMap::new();
        headers.insert("te", "trailers".parse().unwrap());
        strip_hop_by_hop(&mut headers, false);
        assert_eq!(headers["te"], "trailers");
    }

    #[test]
    fn http2_targets_keep_the_authority() {
        let request = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://payments.prod:8080/pay?x=1")
            .body(())
            .unwrap();
        assert_eq!(next_hop_uri(&request), "http://payments.prod:8080/pay?x=1");
        assert_eq!(request_host(&request).as_deref(), Some("payments.prod"));
        let request = Request::builder()
            .uri("/pay")
            .header(HOST, "Ledger:80")
            .body(())
            .unwrap();
        assert_eq!(next_hop_uri(&request), "/pay");
        assert_eq!(request_host(&request).as_deref(), Some("ledger"));
    }
}
