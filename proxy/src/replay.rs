//! A request body that can be sent again. The first attempt streams the
//! caller's body as it arrives — nothing waits for the whole of it — while
//! every chunk is kept, up to a limit; a retry replays the kept chunks and
//! then carries on with whatever has not arrived yet. A body that outgrows
//! the limit simply stops being replayable.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

pub struct ReplayBody<B = Incoming> {
    shared: Arc<Mutex<Shared<B>>>,
    /// The next kept chunk this copy sends.
    position: usize,
    generation: u64,
    trailers_sent: bool,
}

struct Shared<B> {
    source: Option<B>,
    chunks: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    trailers: Option<HeaderMap>,
    /// Too big (or broken) to replay; nothing is kept any more.
    spilled: bool,
    /// Only the newest copy may read; older attempts see the body end.
    generation: u64,
}

impl<B> ReplayBody<B> {
    /// The body for the first attempt, and what makes the next ones.
    pub fn new(body: B, limit: usize) -> (Self, Replayer<B>) {
        let shared = Shared {
            source: Some(body),
            chunks: Vec::new(),
            kept_bytes: 0,
            limit,
            trailers: None,
            spilled: false,
            generation: 0,
        };
        let shared = Arc::new(Mutex::new(shared));
        let first = Self {
            shared: shared.clone(),
            position: 0,
            generation: 0,
            trailers_sent: false,
        };
        (first, Replayer { shared })
    }
}

/// Makes copies of a body for further attempts.
pub struct Replayer<B = Incoming> {
    shared: Arc<Mutex<Shared<B>>>,
}

impl<B> Replayer<B> {
    /// A copy that starts again from the first byte, unless the body has
    /// outgrown the limit. Earlier copies end where they are.
    pub fn replay(&self) -> Option<ReplayBody<B>> {
        let mut shared = self.shared.lock().expect("replay lock");
        if shared.spilled {
            return None;
        }
        shared.generation += 1;
        Some(ReplayBody {
            shared: self.shared.clone(),
            position: 0,
            generation: shared.generation,
            trailers_sent: false,
        })
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let mut shared = this.shared.lock().expect("replay lock");
        if this.generation != shared.generation {
            return Poll::Ready(None);
        }
        if let Some(chunk) = shared.chunks.get(this.position) {
            this.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
        }
        let Some(source) = shared.source.as_mut() else {
            if this.trailers_sent {
                return Poll::Ready(None);
            }
            this.trailers_sent = true;
            return Poll::Ready(shared.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        };
        match Pin::new(source).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                shared.source = None;
                this.trailers_sent = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                shared.spilled = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    shared.keep(data.clone());
                    this.position = shared.chunks.len();
                } else if let Some(trailers) = frame.trailers_ref() {
                    shared.trailers = Some(trailers.clone());
                    this.trailers_sent = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let shared = self.shared.lock().expect("replay lock");
        self.generation != shared.generation
            || (shared.source.is_none()
                && self.position >= shared.chunks.len()
                && (self.trailers_sent || shared.trailers.is_none()))
    }

    fn size_hint(&self) -> SizeHint {
        let shared = self.shared.lock().expect("replay lock");
        match &shared.source {
            None => {
                let kept: usize = shared
                    .chunks
                    .iter()
                    .skip(self.position)
                    .map(Bytes::len)
                    .sum();
                SizeHint::with_exact(kept as u64)
            }
            Some(source) if self.position == 0 && shared.chunks.is_empty() => source.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}

impl<B> Shared<B> {
    fn keep(&mut self, data: Bytes) {
        if self.spilled {
            return;
        }
        self.kept_bytes += data.len();
        if self.kept_bytes > self.limit {
            self.spilled = true;
            self.chunks = Vec::new();
        } else {
            self.chunks.push(data);
        }
    }
}

#[cfg(test)]
mod tests;
