//! Reading the start of a response body for a [`crate::Classifier`] without taking it from the
//! caller: [`PeekedBody`] (any `http_body::Body`, for async clients) and [`PeekedReader`] (any
//! `std::io::Read`, for blocking ones) read at most a limit once, then give the caller the
//! bytes read followed by the rest of the body, so the caller reads exactly what it would
//! have read without a classifier.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::classify::Peeked;

/// How much of a body was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extent {
    /// Not at all: the classifier needed none of it.
    NotRead,
    /// To its end: the bytes held are the whole body.
    Whole,
    /// Past the limit: the rest is still in the inner body.
    TooLong,
    /// Until an error, which the caller gets after the bytes read.
    Unreadable,
}

/// A response body whose start was read for classification: yields the bytes read, then the
/// rest of the inner body (or the error reading it met), then its trailers.
///
/// Memory: the limit plus the one chunk that crossed it (a chunk is kept whole, never split).
pub struct PeekedBody<B: Body> {
    prefix: Bytes,
    extent: Extent,
    error: Option<B::Error>,
    trailers: Option<HeaderMap>,
    /// `None` once the inner body ended (or failed) during the peek.
    rest: Option<B>,
}

// `PeekedBody` never pins its fields: it polls `rest` through `Pin::new`, which needs
// `B: Unpin` only, and never pins the error.
impl<B: Body + Unpin> Unpin for PeekedBody<B> {}

impl<B: Body + Unpin> PeekedBody<B> {
    /// Reads `body` until its end, an error, or more than `limit` bytes, whichever comes first.
    pub async fn read(mut body: B, limit: usize) -> Self {
        let mut prefix = BytesMut::new();
        let mut trailers = None;
        loop {
            if prefix.len() > limit {
                return PeekedBody::new(prefix, Extent::TooLong, None, trailers, Some(body));
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                None => return PeekedBody::new(prefix, Extent::Whole, None, trailers, None),
                Some(Err(error)) => {
                    return PeekedBody::new(prefix, Extent::Unreadable, Some(error), trailers, None)
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => prefix.extend_from_slice(&data.copy_to_bytes(data.remaining())),
                    Err(frame) => {
                        if let Ok(map) = frame.into_trailers() {
                            trailers = Some(map);
                        }
                    }
                },
            }
        }
    }
}

impl<B: Body> PeekedBody<B> {
    /// `body` as it is, unread: for a response the classifier decided on its head alone, so
    /// every response of an integration has the same body type.
    pub fn untouched(body: B) -> Self {
        PeekedBody::new(BytesMut::new(), Extent::NotRead, None, None, Some(body))
    }

    fn new(
        prefix: BytesMut,
        extent: Extent,
        error: Option<B::Error>,
        trailers: Option<HeaderMap>,
        rest: Option<B>,
    ) -> Self {
        PeekedBody {
            prefix: prefix.freeze(),
            extent,
            error,
            trailers,
            rest,
        }
    }

    /// What a classifier gets to see: the whole body, or why not.
    pub fn peeked(&self) -> Peeked<'_> {
        peeked(self.extent, &self.prefix)
    }
}

impl<B: Body + Unpin> Body for PeekedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.prefix)))));
        }
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        Pin::new(rest).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|frame| frame.map_data(|mut d| d.copy_to_bytes(d.remaining())))
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty()
            && self.error.is_none()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.prefix.len() as u64;
        let Some(rest) = &self.rest else {
            return SizeHint::with_exact(held);
        };
        let inner = rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(held));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint
    }
}

impl<B: Body> std::fmt::Debug for PeekedBody<B> {
    /// Never shows the bytes: a body may hold personal data or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeekedBody")
            .field("held", &self.prefix.len())
            .field("extent", &self.extent)
            .finish_non_exhaustive()
    }
}

/// A blocking response body whose start was read for classification: reads the bytes read,
/// then the rest of the inner reader (or the error reading it met).
pub struct PeekedReader<R> {
    prefix: io::Cursor<Vec<u8>>,
    extent: Extent,
    error: Option<io::Error>,
    /// `None` once the inner reader ended (or failed) during the peek.
    rest: Option<R>,
}

impl<R: Read> PeekedReader<R> {
    /// Reads `reader` until its end, an error, or more than `limit` bytes, whichever comes
    /// first. Holds at most `limit + 1` bytes.
    pub fn read(mut reader: R, limit: usize) -> Self {
        let mut prefix = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        let (extent, error, rest) = match (&mut reader).take(cap).read_to_end(&mut prefix) {
            Err(error) => (Extent::Unreadable, Some(error), None),
            Ok(_) if prefix.len() > limit => (Extent::TooLong, None, Some(reader)),
            Ok(_) => (Extent::Whole, None, None),
        };
        PeekedReader {
            prefix: io::Cursor::new(prefix),
            extent,
            error,
            rest,
        }
    }

    /// What a classifier gets to see: the whole body, or why not.
    pub fn peeked(&self) -> Peeked<'_> {
        peeked(self.extent, self.prefix.get_ref())
    }

    /// The bytes held, to hand over as a body of their own when the reader ended within the
    /// limit (`None` when there is more to read).
    pub fn into_whole(self) -> Result<Vec<u8>, Self> {
        match self.extent {
            Extent::Whole => Ok(self.prefix.into_inner()),
            _ => Err(self),
        }
    }
}

impl<R: Read> Read for PeekedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.prefix.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        match self.rest.as_mut() {
            Some(rest) => rest.read(buf),
            None => Ok(0),
        }
    }
}

impl<R> std::fmt::Debug for PeekedReader<R> {
    /// Never shows the bytes: a body may hold personal data or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeekedReader")
            .field("held", &self.prefix.get_ref().len())
            .field("extent", &self.extent)
            .finish_non_exhaustive()
    }
}

fn peeked(extent: Extent, prefix: &[u8]) -> Peeked<'_> {
    match extent {
        Extent::NotRead => Peeked::NotRead,
        Extent::Whole => Peeked::Whole(prefix),
        Extent::TooLong => Peeked::TooLong,
        Extent::Unreadable => Peeked::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::future::Future;
    use std::task::Waker;

    /// Runs a future that never waits (bodies made of ready frames).
    fn ready<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the test body never waits"),
        }
    }

    /// A body of the given chunks, then an optional error.
    struct Chunks(Vec<Result<Frame<Bytes>, &'static str>>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            let this = self.get_mut();
            Poll::Ready((!this.0.is_empty()).then(|| this.0.remove(0)))
        }
    }

    fn data(text: &'static str) -> Result<Frame<Bytes>, &'static str> {
        Ok(Frame::data(Bytes::from_static(text.as_bytes())))
    }

    /// Everything a body yields: its data joined, then the error or trailers it ends with.
    fn drain<B: Body<Data = Bytes> + Unpin>(mut body: B) -> (Vec<u8>, Option<B::Error>, bool) {
        let mut bytes = Vec::new();
        let mut trailers = false;
        loop {
            match ready(std::future::poll_fn(|cx| {
                Pin::new(&mut body).poll_frame(cx)
            })) {
                None => return (bytes, None, trailers),
                Some(Err(error)) => return (bytes, Some(error), trailers),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => bytes.extend_from_slice(&data),
                    Err(frame) => trailers |= frame.is_trailers(),
                },
            }
        }
    }

    #[test]
    fn a_short_body_is_seen_whole_and_handed_back() {
        let body = Chunks(vec![data("{\"co"), data("de\":401}")]);
        let peeked = ready(PeekedBody::read(body, 64));
        assert_eq!(peeked.peeked(), Peeked::Whole(b"{\"code\":401}"));
        assert_eq!(peeked.size_hint().exact(), Some(12));
        assert_eq!(drain(peeked), (b"{\"code\":401}".to_vec(), None, false));
    }

    #[test]
    fn a_long_body_is_not_seen_and_handed_back_whole() {
        let body = Chunks(vec![data("abc"), data("def"), data("ghi"), data("jkl")]);
        let peeked = ready(PeekedBody::read(body, 4));
        assert_eq!(peeked.peeked(), Peeked::TooLong);
        assert!(!peeked.is_end_stream());
        assert_eq!(drain(peeked), (b"abcdefghijkl".to_vec(), None, false));
    }

    #[test]
    fn an_untouched_body_is_the_inner_body() {
        let peeked = PeekedBody::untouched(Chunks(vec![data("abc"), data("def")]));
        assert_eq!(peeked.peeked(), Peeked::NotRead);
        assert_eq!(drain(peeked), (b"abcdef".to_vec(), None, false));
    }

    #[test]
    fn an_error_and_trailers_reach_the_caller_after_the_bytes() {
        let body = Chunks(vec![data("abc"), Err("reset")]);
        let peeked = ready(PeekedBody::read(body, 64));
        assert_eq!(peeked.peeked(), Peeked::Unreadable);
        assert_eq!(drain(peeked), (b"abc".to_vec(), Some("reset"), false));

        let body = Chunks(vec![data("abc"), Ok(Frame::trailers(HeaderMap::new()))]);
        let peeked = ready(PeekedBody::read(body, 64));
        assert_eq!(peeked.peeked(), Peeked::Whole(b"abc"));
        assert_eq!(drain(peeked), (b"abc".to_vec(), None, true));
    }

    #[test]
    fn a_reader_is_read_once_and_handed_back() {
        let peeked = PeekedReader::read(&b"{\"code\":401}"[..], 64);
        assert_eq!(peeked.peeked(), Peeked::Whole(b"{\"code\":401}"));
        assert_eq!(peeked.into_whole().unwrap(), b"{\"code\":401}");

        let mut peeked = PeekedReader::read(&b"0123456789"[..], 4);
        assert_eq!(peeked.peeked(), Peeked::TooLong);
        let mut all = String::new();
        peeked.read_to_string(&mut all).unwrap();
        assert_eq!(all, "0123456789");
    }

    #[test]
    fn a_reader_error_reaches_the_caller_after_the_bytes() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    return Err(io::Error::other("reset"));
                }
                buf[..3].copy_from_slice(b"abc");
                Ok(3)
            }
        }
        let mut peeked = PeekedReader::read(Failing(false), 64);
        assert_eq!(peeked.peeked(), Peeked::Unreadable);
        let mut buf = [0; 8];
        assert_eq!(peeked.read(&mut buf).unwrap(), 3);
        assert_eq!(peeked.read(&mut buf).unwrap_err().to_string(), "reset");
        assert_eq!(peeked.read(&mut buf).unwrap(), 0);
    }
}
