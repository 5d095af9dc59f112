//! Properties of what a classifier does with untrusted bodies: the body-code parser never
//! panics and finds the code wherever a JSON object puts it at the top level, and a peek hands
//! back exactly the bytes of the body, however they are chunked and whatever the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::Read;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use auth_core::Verdict;
use auth_http::{BodyCode, Classifier, Peeked, PeekedBody, PeekedReader};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame};
use proptest::prelude::*;

/// Runs a future that never waits (bodies made of ready frames).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the test body never waits"),
    }
}

/// A body of ready chunks.
struct Chunks(Vec<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        Poll::Ready((!this.0.is_empty()).then(|| Ok(Frame::data(this.0.remove(0)))))
    }
}

fn classify(classifier: &BodyCode, body: &[u8]) -> Verdict {
    classifier.classify(StatusCode::OK, &HeaderMap::new(), Peeked::Whole(body))
}

/// A JSON value that is not an object key's code: anything a backend might put beside it.
fn other_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        "[a-z ]{0,8}".prop_map(|s| format!("\"{s}\"")),
        Just(r#"{"code":401,"data":[1,2,{"x":null}]}"#.to_owned()),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let seed = BodyCode::new();
        let _ = seed.code(&body);
        let _ = classify(&seed, &body);
    }

    #[test]
    fn the_top_level_code_decides(
        code in prop_oneof![Just(401i64), any::<i64>()],
        as_string in any::<bool>(),
        before in proptest::collection::vec(("[a-bd-z]{1,6}", other_value()), 0..4),
        after in proptest::collection::vec(("[a-bd-z]{1,6}", other_value()), 0..4),
    ) {
        let value = if as_string { format!("\"{code}\"") } else { code.to_string() };
        let fields: Vec<String> = before
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .chain(std::iter::once(format!("\"code\":{value}")))
            .chain(after.iter().map(|(k, v)| format!("\"{k}\":{v}")))
            .collect();
        let body = format!("{{{}}}", fields.join(","));
        let seed = BodyCode::new();
        prop_assert_eq!(seed.code(body.as_bytes()), Ok(Some(code)));
        let expected = if code == 401 { Verdict::Rejected } else { Verdict::Accepted };
        prop_assert_eq!(classify(&seed, body.as_bytes()), expected);
    }

    #[test]
    fn a_peeked_body_hands_back_every_byte(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..8),
        limit in 0usize..64,
    ) {
        let whole: Vec<u8> = chunks.concat();
        let body = Chunks(chunks.into_iter().map(Bytes::from).collect());
        let mut peeked = ready(PeekedBody::read(body, limit));
        match peeked.peeked() {
            Peeked::Whole(seen) => prop_assert_eq!(seen, &whole[..]),
            Peeked::TooLong => prop_assert!(whole.len() > limit),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        let mut read = Vec::new();
        while let Some(frame) = ready(std::future::poll_fn(|cx| Pin::new(&mut peeked).poll_frame(cx))) {
            read.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        prop_assert_eq!(read, whole);
    }

    #[test]
    fn a_peeked_reader_hands_back_every_byte(
        whole in proptest::collection::vec(any::<u8>(), 0..128),
        limit in 0usize..96,
    ) {
        let mut peeked = PeekedReader::read(&whole[..], limit);
        match peeked.peeked() {
            Peeked::Whole(seen) => prop_assert!(seen == &whole[..] && whole.len() <= limit),
            Peeked::TooLong => prop_assert!(whole.len() > limit),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        let mut read = Vec::new();
        peeked.read_to_end(&mut read).unwrap();
        prop_assert_eq!(read, whole);
    }
}
