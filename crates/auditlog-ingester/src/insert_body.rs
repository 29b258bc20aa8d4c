//! A sealed batch's insert body, compressed once, before the first attempt.
//!
//! ```text
//!  RowBinary rows ──1 MiB chunks──▶ LZ4 block + 25-byte head ──▶ one body (pooled buffer)
//!                                    checksum, 0x82, sizes          sent by every attempt
//! ```
//!
//! ClickHouse's HTTP interface takes a body in its native compressed-block format when the
//! request says `decompress=1`. Each block is a 16-byte CityHash128 (version 1.0.2) of what
//! follows it, the method byte (0x82 for LZ4), the block's compressed size with its 9-byte
//! header and its uncompressed size (both u32, little-endian), then the LZ4 block itself.
//!
//! The HTTP client could frame the chunks itself, but it compressed each chunk again on every
//! retry, and into a fresh buffer that it zero-filled first (a memset and, often, new pages per
//! megabyte sent). Here a body is built once per batch: chunks are compressed into a per-thread
//! scratch buffer that stays allocated, and only the compressed bytes are copied into the
//! body, whose buffer comes back to a pool when the insert is done with it.

use std::cell::RefCell;

use bytes::Bytes;

use crate::InsertCompression;
use crate::row_buffers::RowBuffers;

/// Uncompressed bytes per block: ClickHouse's own default block size for compressed data,
/// and the size the HTTP client used.
pub(crate) const BLOCK_BYTES: usize = 1024 * 1024;

/// The checksum, then the method byte and two sizes.
const CHECKSUM_BYTES: usize = 16;
const HEADER_BYTES: usize = 9;

/// ClickHouse's method byte for an LZ4 block.
const LZ4_METHOD: u8 = 0x82;

thread_local! {
    /// Room for one compressed block, kept by each thread that compresses: zero-filled
    /// once, not per block.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Builds insert bodies in the configured compression.
#[derive(Debug, Clone)]
pub(crate) struct InsertBodies {
    compression: InsertCompression,
    buffers: RowBuffers,
}

impl InsertBodies {
    pub(crate) fn new(compression: InsertCompression) -> Self {
        Self {
            compression,
            buffers: RowBuffers::default(),
        }
    }

    /// Whether bodies are compressed, so that the request must say `decompress=1`.
    pub(crate) fn compressed(&self) -> bool {
        self.compression == InsertCompression::Lz4
    }

    /// The body for `rows`: the rows themselves, or their LZ4 blocks.
    pub(crate) fn build(&self, rows: Bytes) -> Bytes {
        match self.compression {
            InsertCompression::None => rows,
            InsertCompression::Lz4 => {
                // LZ4 of generated traffic is about 2.7 times smaller; a worse ratio grows the
                // buffer once.
                let mut body = self.buffers.take(rows.len() / 2);
                for chunk in rows.chunks(BLOCK_BYTES) {
                    append_lz4_block(chunk, &mut body);
                }
                self.buffers.seal(body).into_bytes()
            }
        }
    }
}

/// Appends `chunk` as one compressed block.
fn append_lz4_block(chunk: &[u8], body: &mut Vec<u8>) {
    SCRATCH.with_borrow_mut(|scratch| {
        let room = lz4_flex::block::get_maximum_output_size(chunk.len());
        if scratch.len() < room {
            scratch.resize(room, 0);
        }
        let compressed_len = lz4_flex::block::compress_into(chunk, scratch)
            // The scratch holds the bound lz4_flex gives for the chunk's size.
            .expect("an LZ4 block fits its maximum output size");
        let start = body.len();
        body.resize(start + CHECKSUM_BYTES, 0);
        body.push(LZ4_METHOD);
        // A block is at most a megabyte: its sizes fit u32.
        body.extend_from_slice(&((HEADER_BYTES + compressed_len) as u32).to_le_bytes());
        body.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        body.extend_from_slice(&scratch[..compressed_len]);
        let checksum = cityhash_rs::cityhash_102_128(&body[start + CHECKSUM_BYTES..]);
        // The hash's low 64 bits first, each half little-endian.
        let checksum = checksum.rotate_right(64).to_le_bytes();
        body[start..start + CHECKSUM_BYTES].copy_from_slice(&checksum);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the blocks back the way a server does: each checksum verified, each block
    /// decompressed to its stated size.
    fn decompress(mut body: &[u8]) -> Vec<u8> {
        let mut rows = Vec::new();
        while !body.is_empty() {
            let (checksum, rest) = body.split_at(CHECKSUM_BYTES);
            assert_eq!(rest[0], LZ4_METHOD);
            let block_len = u32::from_le_bytes(rest[1..5].try_into().unwrap()) as usize;
            let raw_len = u32::from_le_bytes(rest[5..9].try_into().unwrap()) as usize;
            let (block, next) = rest.split_at(block_len);
            let expected = cityhash_rs::cityhash_102_128(block).rotate_right(64);
            assert_eq!(checksum, expected.to_le_bytes(), "checksum");
            rows.extend(lz4_flex::block::decompress(&block[HEADER_BYTES..], raw_len).unwrap());
            body = next;
        }
        rows
    }

    #[test]
    fn lz4_bodies_hold_the_rows_in_checksummed_blocks_of_a_megabyte() {
        let rows: Vec<u8> = (0..BLOCK_BYTES * 2 + 1234)
            .map(|index| (index % 251) as u8 ^ (index / 4096) as u8)
            .collect();
        let bodies = InsertBodies::new(InsertCompression::Lz4);
        let body = bodies.build(Bytes::from(rows.clone()));
        assert!(body.len() < rows.len() / 2, "compressed: {}", body.len());
        assert_eq!(decompress(&body), rows);
        // A second body reuses the first one's buffer once that is dropped, and is built
        // afresh, not appended to what the buffer held.
        drop(body);
        let again = bodies.build(Bytes::from(rows.clone()));
        assert_eq!(decompress(&again), rows);
    }

    #[test]
    fn uncompressed_bodies_are_the_rows() {
        let rows = Bytes::from_static(b"rows");
        let body = InsertBodies::new(InsertCompression::None).build(rows.clone());
        assert_eq!(body, rows);
    }
}
