//! Batch row buffers, reused from one batch to the next.
//!
//! ```text
//!  RowBuffers::take ──▶ open batch's rows ──seal──▶ SealedRows ──▶ insert body (Bytes)
//!        ▲                                                               │ last slice dropped
//!        └──────────────────── give back (bounded) ◀─────────────────────┘
//! ```
//!
//! A batch's rows are megabytes. Allocated afresh for every batch, they came from the kernel
//! as new pages (a page fault and a zeroed page per 4 KiB written, then the pages unmapped
//! again when the insert was done): in profiles about a tenth of the ingester's CPU. A
//! buffer the insert is done with comes back here instead, for the next batch to fill.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Spare buffers kept at most. In the steady state one batch is sealed about as often as
/// one insert ends, so a few cover every partition.
const MAX_SPARE_BUFFERS: usize = 4;

/// Bytes the spare buffers may have written at most: the memory an idle pool holds on to.
/// (Capacity beyond what was written is only reserved address space, not memory.)
const MAX_SPARE_BYTES: usize = 48 * 1024 * 1024;

/// A buffer is reserved for at most this many bytes up front; a larger batch grows it.
const MAX_RESERVE_BYTES: usize = 32 * 1024 * 1024;

/// Room for the row that takes a batch past its byte limit.
const LAST_ROW_BYTES: usize = 1024 * 1024;

/// The pool of spare row buffers; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowBuffers {
    spare: Arc<Mutex<Vec<Spare>>>,
}

/// A spare buffer and the bytes it held (the memory it has written).
type Spare = (Vec<u8>, usize);

impl RowBuffers {
    /// An empty buffer for a batch of up to `max_bytes`, reused when one is spare.
    ///
    /// The whole batch is reserved at once: untouched capacity costs no memory, while a
    /// buffer grown by doubling is copied each time and reused buffers of different sizes
    /// would keep growing.
    pub(crate) fn take(&self, max_bytes: usize) -> Vec<u8> {
        let reused = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buffer = reused.map(|(buffer, _)| buffer).unwrap_or_default();
        buffer.reserve(
            max_bytes
                .saturating_add(LAST_ROW_BYTES)
                .min(MAX_RESERVE_BYTES),
        );
        buffer
    }

    /// Keeps `buffer` for a later batch, unless enough are spare already.
    fn give(&self, mut buffer: Vec<u8>) {
        let written = buffer.len();
        buffer.clear();
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        let spare_bytes: usize = spare.iter().map(|(_, written)| written).sum();
        if spare.len() < MAX_SPARE_BUFFERS && spare_bytes.saturating_add(written) <= MAX_SPARE_BYTES
        {
            spare.push((buffer, written));
        }
    }

    /// Wraps a sealed batch's rows so that they come back here once nothing uses them.
    pub(crate) fn seal(&self, rows: Vec<u8>) -> SealedRows {
        SealedRows {
            rows,
            home: self.clone(),
        }
    }
}

/// A sealed batch's RowBinary rows; the buffer goes back to its pool when dropped.
#[derive(Debug)]
pub(crate) struct SealedRows {
    rows: Vec<u8>,
    home: RowBuffers,
}

impl SealedRows {
    /// The rows as an insert body. The buffer returns to the pool when the last slice of
    /// it is dropped, after the HTTP client is done with it.
    pub(crate) fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for SealedRows {
    fn as_ref(&self) -> &[u8] {
        &self.rows
    }
}

impl std::ops::Deref for SealedRows {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.rows
    }
}

impl Drop for SealedRows {
    fn drop(&mut self) {
        self.home.give(std::mem::take(&mut self.rows));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_once_the_last_slice_is_dropped() {
        let buffers = RowBuffers::default();
        let mut rows = buffers.take(1000);
        rows.extend_from_slice(&[7; 1000]);
        let capacity = rows.capacity();
        let pointer = rows.as_ptr();
        let body = buffers.seal(rows).into_bytes();
        let slice = body.slice(10..20);
        drop(body);
        assert_eq!(&slice[..], &[7; 10]);
        assert!(buffers.spare.lock().unwrap().is_empty(), "still in use");
        drop(slice);
        let reused = buffers.take(10);
        assert!(reused.is_empty());
        assert!(reused.capacity() >= capacity);
        assert_eq!(reused.as_ptr(), pointer);
    }

    #[test]
    fn spares_are_bounded_in_number_and_bytes() {
        let buffers = RowBuffers::default();
        for _ in 0..MAX_SPARE_BUFFERS + 2 {
            drop(buffers.seal(Vec::with_capacity(16)));
        }
        assert_eq!(buffers.spare.lock().unwrap().len(), MAX_SPARE_BUFFERS);

        let buffers = RowBuffers::default();
        drop(buffers.seal(vec![0; MAX_SPARE_BYTES]));
        drop(buffers.seal(vec![0; 1]));
        assert_eq!(buffers.spare.lock().unwrap().len(), 1);
    }
}
