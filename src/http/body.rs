//! A streamed request body read under limits: its size as sent, its size once inflated, how
//! many times its compressed size it may inflate to, and how long the client may go quiet.
//!
//! A 10 KB gzip body of zeros inflates to gigabytes; a client that opens an upload and sends
//! a byte a minute ties up whatever waits for it. Both end here, with a `413` that names the
//! limit or a `408`, before anything further is kept.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::dev::{Decompress, Payload};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};

use super::error::{ApiError, ErrorCode};

/// A body this small is never refused for its ratio: small files compress unevenly.
const RATIO_FLOOR: u64 = 1 << 20;
/// Compressed bytes inflated at a time. Deflate inflates at most about 1 032 times, so no
/// piece of a body, however hostile, is over some 1 MiB before its limits are checked (and
/// a step this small is inflated in place, not on a blocking thread).
const INFLATE_STEP: usize = 1024;

/// What a body may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes, as sent and once inflated.
    pub max_bytes: u64,
    /// How many times its compressed size a body may inflate to.
    pub max_ratio: u64,
    /// How long the client may send nothing.
    pub idle: Duration,
}

type Raw = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// The body, inflated as it arrives when it says `Content-Encoding: gzip`.
pub struct Body {
    inner: Decompress<Raw>,
    /// Bytes received as sent (compressed, when it is).
    sent: Arc<AtomicU64>,
    inflated: u64,
    limits: Limits,
}

/// A body over a size limit.
pub fn too_large(what: &str, max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("{what} is larger than the limit of {max} bytes"),
    )
}

/// A piece of the body as sent, in steps of at most `INFLATE_STEP` bytes (no copy).
fn steps(piece: Result<Bytes, PayloadError>) -> Vec<Result<Bytes, PayloadError>> {
    match piece {
        Ok(mut bytes) => {
            let mut steps = Vec::with_capacity(bytes.len() / INFLATE_STEP + 1);
            while bytes.len() > INFLATE_STEP {
                steps.push(Ok(bytes.split_to(INFLATE_STEP)));
            }
            steps.push(Ok(bytes));
            steps
        }
        Err(err) => vec![Err(err)],
    }
}

impl Body {
    /// Starts reading; a body that declares a length over the limit is refused at once.
    pub fn new(payload: Payload, headers: &HeaderMap, limits: Limits) -> Result<Self, ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large("the body", limits.max_bytes));
        }
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let counted: Raw = Box::pin(
            payload
                .inspect(move |piece| {
                    if let Ok(piece) = piece {
                        counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
                    }
                })
                .flat_map(|piece| futures_util::stream::iter(steps(piece))),
        );
        Ok(Body {
            inner: Decompress::from_headers(counted, headers),
            sent,
            inflated: 0,
            limits,
        })
    }

    /// The next piece of the inflated body; `None` at its end.
    pub async fn next(&mut self) -> Option<Result<Bytes, ApiError>> {
        let piece = match tokio::time::timeout(self.limits.idle, self.inner.next()).await {
            Err(_) => {
                return Some(Err(ApiError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the body stopped arriving: nothing came for {}; send it again",
                        crate::config::show_duration(self.limits.idle)
                    ),
                )));
            }
            Ok(None) => return None,
            Ok(Some(Err(err))) => {
                return Some(Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("the body could not be read: {err}"),
                )));
            }
            Ok(Some(Ok(piece))) => piece,
        };
        self.inflated += piece.len() as u64;
        let sent = self.sent.load(Ordering::Relaxed);
        if sent > self.limits.max_bytes || self.inflated > self.limits.max_bytes {
            return Some(Err(too_large("the body", self.limits.max_bytes)));
        }
        if self.inflated > RATIO_FLOOR && self.inflated > self.limits.max_ratio * sent.max(1) {
            return Some(Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body inflates to more than {} times its compressed size, the most \
                     accepted; send it uncompressed or split it",
                    self.limits.max_ratio
                ),
            )));
        }
        Some(Ok(piece))
    }

    /// Bytes received so far, once inflated.
    pub fn inflated(&self) -> u64 {
        self.inflated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn body(bytes: Vec<u8>, gzipped: bool, limits: Limits) -> Result<Body, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_LENGTH,
            header::HeaderValue::from(bytes.len()),
        );
        if gzipped {
            headers.insert(
                header::CONTENT_ENCODING,
                header::HeaderValue::from_static("gzip"),
            );
        }
        let chunks: Vec<Result<Bytes, PayloadError>> = bytes
            .chunks(8192)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(futures_util::stream::iter(chunks));
        Body::new(Payload::from(stream), &headers, limits)
    }

    async fn drain(mut body: Body) -> Result<u64, ApiError> {
        while let Some(piece) = body.next().await {
            piece?;
        }
        Ok(body.inflated())
    }

    const LIMITS: Limits = Limits {
        max_bytes: 4 << 20,
        max_ratio: 100,
        idle: Duration::from_secs(5),
    };

    #[actix_web::test]
    async fn a_gzip_bomb_is_refused_for_its_ratio_soon_after_the_floor() {
        let bomb = gzip(&vec![0; 100 << 20]);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let limits = Limits {
            max_bytes: 1 << 30,
            ..LIMITS
        };
        let mut body = body(bomb, true, limits).unwrap();
        let err = loop {
            match body.next().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => break err,
                None => panic!("inflated in full"),
            }
        };
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        assert!(err.to_string().contains("100 times"), "{err}");
        // Stopped within one step of the floor: no piece inflates past ~1 MiB.
        assert!(
            body.inflated() < 2 * RATIO_FLOOR + 64 * 1024,
            "{}",
            body.inflated()
        );
    }

    #[actix_web::test]
    async fn inflated_and_declared_sizes_are_capped() {
        // Letters at random (xorshift): text that compresses as a real file does.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let text: Vec<u8> = (0..6_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghij"[(x % 10) as usize]
            })
            .collect();
        let gz = gzip(&text);
        let err = drain(body(gz, true, LIMITS).unwrap()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        assert!(err.to_string().contains("4194304 bytes"), "{err}");
        let err = body(vec![b'a'; 5 << 20], false, LIMITS)
            .err()
            .expect("declared too large");
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        // Within the limits, every byte comes through inflated.
        let small = gzip(&text[..1_000_000]);
        assert_eq!(
            drain(body(small, true, LIMITS).unwrap()).await.unwrap(),
            1_000_000
        );
        assert_eq!(
            drain(body(text[..3_000_000].to_vec(), false, LIMITS).unwrap())
                .await
                .unwrap(),
            3_000_000
        );
    }

    #[actix_web::test]
    async fn a_body_that_goes_quiet_is_a_408() {
        let stream: Raw = Box::pin(futures_util::stream::pending());
        let limits = Limits {
            idle: Duration::from_millis(50),
            ..LIMITS
        };
        let mut body = Body::new(Payload::from(stream), &HeaderMap::new(), limits).unwrap();
        let err = body.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), ErrorCode::RequestTimeout);
        assert!(err.to_string().contains("50ms"), "{err}");
    }

    #[actix_web::test]
    async fn a_broken_gzip_stream_is_a_400() {
        let mut gz = gzip(b"name\nAda\n");
        gz.truncate(gz.len() / 2);
        gz.extend_from_slice(b"garbage");
        let err = drain(body(gz, true, LIMITS).unwrap()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest);
    }
}
