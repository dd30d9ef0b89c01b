//! The export stream watched on its own: each wait for the engine's next bytes ends after the
//! idle time, whether or not an upload is waiting on them (the push may be slow to take them;
//! that time is not counted), and an export that runs far past the size the engine gave for the
//! image is cut.

use std::time::Duration;

use futures_util::StreamExt as _;

use super::stream::ByteStream;
use crate::error::Error;

/// The idle time of the engine's stream: the registry's, or the test variable's.
pub(super) fn idle_time() -> Duration {
    crate::registry::Timeouts::from_env().idle
}

/// The most bytes an export of an image of `size` bytes may run to: twice the size (layers may
/// be sent uncompressed beside compressed ones) and 64 MiB of metadata.
pub(super) fn cap_for(size: Option<u64>) -> Option<u64> {
    size.map(|size| size.saturating_mul(2).saturating_add(64 << 20))
}

/// `bytes` with an idle timer per wait and a cap on its length; `engine` names the peer.
pub(super) fn watched(
    bytes: ByteStream,
    idle: Duration,
    cap: Option<u64>,
    engine: String,
) -> ByteStream {
    let state = (Some(bytes), 0u64);
    futures_util::stream::unfold(state, move |(bytes, sent)| {
        let engine = engine.clone();
        async move {
            let mut bytes = bytes?;
            let item = match tokio::time::timeout(idle, bytes.next()).await {
                Ok(item) => item?,
                Err(_) => {
                    let error = Error::input(format!(
                        "{engine} sent nothing for {}s",
                        idle.as_secs_f64()
                    ))
                    .with_hint("check the engine (docker info) and its log, then try again");
                    return Some((Err(std::io::Error::other(error)), (None, sent)));
                }
            };
            let sent = sent + item.as_ref().map_or(0, |chunk| chunk.len() as u64);
            if let Some(cap) = cap.filter(|cap| sent > *cap) {
                let error = Error::input(format!(
                    "{engine} sent more than {cap} bytes, far more than the size it gave for the image"
                ))
                .with_hint("check the engine (docker info) and its log, then try again");
                return Some((Err(std::io::Error::other(error)), (None, sent)));
            }
            Some((item, (Some(bytes), sent)))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(item: Option<std::io::Result<Bytes>>) -> String {
        match item {
            Some(Err(e)) => e.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stalled_stream_ends_at_the_idle_time() {
        let stalled = futures_util::stream::pending().boxed();
        let mut stream = watched(
            stalled,
            Duration::from_millis(50),
            None,
            "the engine at E".into(),
        );
        assert!(message(stream.next().await).contains("the engine at E sent nothing for 0.05s"));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_past_its_cap_is_cut() {
        let endless =
            futures_util::stream::repeat_with(|| Ok(Bytes::from_static(&[0; 1024]))).boxed();
        let mut stream = watched(
            endless,
            Duration::from_secs(5),
            Some(4096),
            "the engine at E".into(),
        );
        for _ in 0..4 {
            assert!(matches!(stream.next().await, Some(Ok(_))));
        }
        assert!(message(stream.next().await).contains("sent more than 4096 bytes"));
        assert_eq!(cap_for(Some(1)), Some(2 + (64 << 20)));
    }
}
