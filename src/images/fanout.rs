//! One byte stream, many receivers.
//!
//! The image export is read once and every piece goes to the nodes it is
//! for (all of them, or those that lack a layer) through their own bounded
//! channels. Sending waits until every live node has room, so
//! the slowest node sets the pace (backpressure) and memory stays bounded at
//! [`CHANNEL_CHUNKS`] chunks per node, instead of the whole image. A node
//! whose receiver is gone (its import failed) is dropped and the others go on.

use bytes::Bytes;
use futures::future::join_all;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

/// Bytes per chunk sent to the nodes (see [`coalesce`]).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Chunks buffered per node (16 MiB). containerd stalls an import for a
/// moment when it commits (and fsyncs) a layer; this much slack lets the
/// other nodes keep going meanwhile instead of advancing in lockstep.
/// Bounded, so a node that falls behind for good holds the export back
/// rather than having the whole image queued in memory for it.
pub const CHANNEL_CHUNKS: usize = 16;

/// A chunk of the stream, shared (not copied) between the receivers.
pub type Chunk = Bytes;

/// Bytes for some of the receivers.
#[derive(Debug, Clone)]
pub struct Piece {
    pub data: Chunk,
    /// `to[i]`: receiver `i` gets it.
    pub to: Vec<bool>,
}

impl Piece {
    /// A piece for all of `count` receivers.
    pub fn all(data: Chunk, count: usize) -> Piece {
        Piece {
            data,
            to: vec![true; count],
        }
    }
}

/// How a fan-out ended.
#[derive(Debug)]
pub enum Ended<E> {
    /// The source was read to its end; the total byte count.
    Complete(u64),
    /// Every receiver went away before the end; reading stopped early.
    NoReceivers,
    /// The source failed after this many bytes; the receivers got `poison`.
    SourceFailed(E, u64),
}

/// Bounded channels, one per receiver.
pub fn channels(count: usize) -> (Vec<mpsc::Sender<Chunk>>, Vec<mpsc::Receiver<Chunk>>) {
    (0..count).map(|_| mpsc::channel(CHANNEL_CHUNKS)).unzip()
}

/// Copies each piece of `source` to the senders it is for, until the source
/// ends, it fails, or no receiver is left. On a source failure each live
/// receiver gets `poison` last, so a consumer that cannot be told otherwise
/// (a process reading stdin) sees a broken stream rather than a clean,
/// truncated one.
pub async fn fan_out<S, E>(source: S, senders: Vec<mpsc::Sender<Chunk>>, poison: Chunk) -> Ended<E>
where
    S: Stream<Item = Result<Vec<Piece>, E>>,
{
    let mut live: Vec<Option<mpsc::Sender<Chunk>>> = senders.into_iter().map(Some).collect();
    let mut total = 0u64;
    let mut source = std::pin::pin!(source);
    while let Some(item) = source.next().await {
        let pieces = match item {
            Ok(pieces) => pieces,
            Err(e) => {
                join_all(live.iter().flatten().map(|tx| tx.send(poison.clone()))).await;
                return Ended::SourceFailed(e, total);
            }
        };
        for piece in pieces {
            if piece.data.is_empty() {
                continue;
            }
            total += piece.data.len() as u64;
            let targets: Vec<usize> = (0..live.len())
                .filter(|&i| piece.to.get(i) == Some(&true) && live[i].is_some())
                .collect();
            // Clones share one buffer: the piece is not copied per node.
            let sent = join_all(targets.iter().map(|&i| {
                let tx = live[i].as_ref().expect("live");
                tx.send(piece.data.clone())
            }))
            .await;
            for (&i, result) in targets.iter().zip(sent) {
                if result.is_err() {
                    live[i] = None;
                }
            }
            if live.iter().all(Option::is_none) {
                return Ended::NoReceivers;
            }
        }
    }
    Ended::Complete(total)
}

/// Regroups a stream into chunks of `size` bytes (the last one shorter):
/// export streams come in pieces of a few KiB, and per-chunk costs (channel
/// hand-offs, writes, wake-ups) times three nodes add up.
pub fn coalesce<S, B, E>(source: S, size: usize) -> impl Stream<Item = Result<Chunk, E>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    futures::stream::unfold(
        (source, Vec::with_capacity(size), false),
        move |(mut source, mut buf, done)| async move {
            if done {
                return None;
            }
            loop {
                match source.next().await {
                    Some(Ok(piece)) => {
                        buf.extend_from_slice(piece.as_ref());
                        if buf.len() >= size {
                            let chunk =
                                Chunk::from(std::mem::replace(&mut buf, Vec::with_capacity(size)));
                            return Some((Ok(chunk), (source, buf, false)));
                        }
                    }
                    // The error ends the stream; what was buffered would only be
                    // a truncated tail.
                    Some(Err(e)) => return Some((Err(e), (source, buf, true))),
                    None if buf.is_empty() => return None,
                    None => {
                        return Some((
                            Ok(Chunk::from(std::mem::take(&mut buf))),
                            (source, buf, true),
                        ));
                    }
                }
            }
        },
    )
}

/// A receiver as a stream, for APIs that take one.
pub fn receiver_stream(mut rx: mpsc::Receiver<Chunk>) -> impl Stream<Item = Chunk> + Unpin {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn source(
        chunks: usize,
        read: Arc<AtomicUsize>,
    ) -> impl Stream<Item = Result<Vec<Piece>, String>> {
        futures::stream::iter(0..chunks).map(move |i| {
            read.fetch_add(1, Ordering::SeqCst);
            Ok(vec![Piece::all(Chunk::from(vec![i as u8; 10]), 3)])
        })
    }

    async fn drain(rx: mpsc::Receiver<Chunk>) -> Vec<u8> {
        receiver_stream(rx).map(|b| b.to_vec()).concat().await
    }

    #[tokio::test]
    async fn every_receiver_gets_every_byte_in_order() {
        let (txs, rxs) = channels(3);
        let fan = fan_out(source(200, Arc::default()), txs, Chunk::default());
        let (ended, outputs) = tokio::join!(fan, join_all(rxs.into_iter().map(drain)));
        assert!(matches!(ended, Ended::Complete(2000)));
        let expected: Vec<u8> = (0..200u32).flat_map(|i| vec![i as u8; 10]).collect();
        for out in outputs {
            assert_eq!(out, expected);
        }
    }

    #[tokio::test]
    async fn a_dropped_receiver_does_not_stop_the_others() {
        let (txs, mut rxs) = channels(2);
        drop(rxs.remove(0));
        let fan = fan_out(source(300, Arc::default()), txs, Chunk::default());
        let (ended, out) = tokio::join!(fan, drain(rxs.remove(0)));
        assert!(matches!(ended, Ended::Complete(3000)));
        assert_eq!(out.len(), 3000);
    }

    #[tokio::test]
    async fn a_slow_receiver_holds_the_source_back() {
        let read = Arc::new(AtomicUsize::new(0));
        let (txs, mut rxs) = channels(2);
        let fast = rxs.remove(0);
        let mut slow = rxs.remove(0);
        let fan = tokio::spawn(fan_out(source(1000, read.clone()), txs, Chunk::default()));
        let fast = tokio::spawn(drain(fast));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The slow receiver has taken nothing: the source cannot be more than
        // one channel (plus the chunk in flight) ahead of it.
        assert!(
            read.load(Ordering::SeqCst) <= CHANNEL_CHUNKS + 2,
            "read {}",
            read.load(Ordering::SeqCst)
        );
        while slow.recv().await.is_some() {}
        assert!(matches!(fan.await.unwrap(), Ended::Complete(10_000)));
        assert_eq!(fast.await.unwrap().len(), 10_000);
    }

    #[tokio::test]
    async fn a_failing_source_poisons_the_receivers() {
        let (txs, rxs) = channels(2);
        let failing = futures::stream::iter(vec![
            Ok(vec![Piece::all(Chunk::from_static(b"abc"), 2)]),
            Err("boom"),
        ]);
        let fan = fan_out(failing, txs, Chunk::from_static(b"!"));
        let (ended, outputs) = tokio::join!(fan, join_all(rxs.into_iter().map(drain)));
        assert!(matches!(ended, Ended::SourceFailed("boom", 3)));
        assert!(outputs.iter().all(|o| o == b"abc!"));
    }

    #[tokio::test]
    async fn pieces_go_only_where_they_are_for() {
        let (txs, rxs) = channels(2);
        let pieces = futures::stream::iter(vec![Ok::<_, ()>(vec![
            Piece::all(Chunk::from_static(b"a"), 2),
            Piece {
                data: Chunk::from_static(b"b"),
                to: vec![false, true],
            },
            Piece::all(Chunk::from_static(b"c"), 2),
        ])]);
        let fan = fan_out(pieces, txs, Chunk::default());
        let (ended, outputs) = tokio::join!(fan, join_all(rxs.into_iter().map(drain)));
        assert!(matches!(ended, Ended::Complete(3)));
        assert_eq!(outputs, [b"ac".to_vec(), b"abc".to_vec()]);
    }

    #[tokio::test]
    async fn small_pieces_are_regrouped_into_full_chunks() {
        let pieces = futures::stream::iter((0..25u8).map(|i| Ok::<_, ()>(vec![i; 3])));
        let chunks: Vec<Chunk> = coalesce(pieces, 10).map(Result::unwrap).collect().await;
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [12, 12, 12, 12, 12, 12, 3]);
        let flat: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(flat, (0..25u8).flat_map(|i| [i; 3]).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn reading_stops_when_nobody_listens() {
        let read = Arc::new(AtomicUsize::new(0));
        let (txs, rxs) = channels(2);
        drop(rxs);
        let ended = fan_out(source(1000, read.clone()), txs, Chunk::default()).await;
        assert!(matches!(ended, Ended::NoReceivers));
        assert_eq!(read.load(Ordering::SeqCst), 1);
    }
}
