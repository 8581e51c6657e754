//! The body type every proxied message is carried in.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

/// A streamed body: a peer's, or one the proxy wrote itself.
pub type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

fn never(never: Infallible) -> hyper::Error {
    match never {}
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(never).boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(never).boxed_unsync()
}

pub fn incoming(body: hyper::body::Incoming) -> ProxyBody {
    body.boxed_unsync()
}
