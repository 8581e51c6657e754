use std::convert::Infallible;

use http_body_util::{BodyExt, StreamBody};

use super::*;

type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn body(chunks: &[&'static str], trailers: bool) -> Frames {
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
        .collect();
    if trailers {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", "0".parse().unwrap());
        frames.push(Ok(Frame::trailers(map)));
    }
    StreamBody::new(futures_util::stream::iter(frames))
}

async fn read_all<B: Body<Data = Bytes, Error = Infallible> + Unpin>(
    body: B,
) -> (Vec<u8>, Option<HeaderMap>) {
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes().to_vec(), trailers)
}

#[tokio::test]
async fn a_replay_sends_the_same_bytes_and_trailers_again() {
    let (first, replayer) = ReplayBody::new(body(&["ab", "cd", "ef"], true), 1024);
    let (bytes, trailers) = read_all(first).await;
    assert_eq!(bytes, b"abcdef");
    assert!(trailers.is_some());
    let (again, trailers) = read_all(replayer.replay().unwrap()).await;
    assert_eq!(again, b"abcdef");
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
}

#[tokio::test]
async fn a_replay_of_a_half_read_body_continues_from_the_source() {
    let (mut first, replayer) = ReplayBody::new(body(&["ab", "cd", "ef"], false), 1024);
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "ab");
    let second = replayer.replay().unwrap();
    // The superseded attempt sees its body end.
    assert!(first.frame().await.is_none());
    assert_eq!(read_all(second).await.0, b"abcdef");
}

#[tokio::test]
async fn a_body_over_the_limit_streams_on_but_cannot_be_replayed() {
    let (first, replayer) = ReplayBody::new(body(&["abcd", "efgh"], false), 6);
    assert_eq!(read_all(first).await.0, b"abcdefgh");
    assert!(replayer.replay().is_none());
}
