//! A prost codec that decodes each message from one contiguous slice.
//!
//! tonic's `ProstCodec` decodes through the `Buf` trait over the receive
//! buffer; taking the message as one zero-copy `Bytes` and decoding the
//! slice is much cheaper (ADR 003, BENCHMARKS.md). The bytes come along
//! with the decoded message ([`Received`]), so the span store can log them
//! without encoding the message again. Decode errors become
//! `INVALID_ARGUMENT` with the reason, and are counted.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::metrics::{BadRequest, CollectorMetrics, Transport};

pub(crate) struct SliceCodec<Response, Request> {
    metrics: Arc<CollectorMetrics>,
    types: PhantomData<fn(Response) -> Request>,
}

impl<Response, Request> SliceCodec<Response, Request> {
    pub(crate) fn new(metrics: Arc<CollectorMetrics>) -> Self {
        Self {
            metrics,
            types: PhantomData,
        }
    }
}

impl<Response, Request> Codec for SliceCodec<Response, Request>
where
    Response: Message + Send + 'static,
    Request: Message + Default + Send + 'static,
{
    type Encode = Response;
    type Decode = Received<Request>;
    type Encoder = MessageEncoder<Response>;
    type Decoder = SliceDecoder<Request>;

    fn encoder(&mut self) -> Self::Encoder {
        MessageEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        SliceDecoder {
            metrics: self.metrics.clone(),
            types: PhantomData,
        }
    }
}

pub(crate) struct MessageEncoder<Response>(PhantomData<fn(Response)>);

impl<Response: Message> Encoder for MessageEncoder<Response> {
    type Item = Response;
    type Error = Status;

    fn encode(&mut self, item: Response, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}

/// A decoded message and the protobuf bytes it was decoded from.
pub(crate) struct Received<Message> {
    pub(crate) message: Message,
    pub(crate) bytes: Bytes,
}

pub(crate) struct SliceDecoder<Request> {
    metrics: Arc<CollectorMetrics>,
    types: PhantomData<fn() -> Request>,
}

impl<Request: Message + Default> Decoder for SliceDecoder<Request> {
    type Item = Received<Request>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        // Splits the receive buffer: no copy.
        let bytes = src.copy_to_bytes(src.remaining());
        match Request::decode(bytes.as_ref()) {
            Ok(message) => Ok(Some(Received { message, bytes })),
            Err(error) => {
                self.metrics
                    .bad_request(Transport::Grpc, BadRequest::Malformed);
                Err(Status::invalid_argument(format!(
                    "malformed protobuf: {error}"
                )))
            }
        }
    }
}
