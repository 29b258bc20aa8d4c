//! Gzip (RFC 1952) members around raw deflate: what every S3 reader, `zcat` and Athena-like
//! engines open as `.gz`.

/// `data` as one gzip member.
pub(crate) fn gzip(data: &[u8], level: u8) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, level);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    // Magic, deflate, no flags, no mtime (so a retried batch is byte-identical), unknown OS.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// The content of a gzip member written by [`gzip`] (no optional header fields), its CRC
/// and length checked.
pub(crate) fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 18 || data[..3] != [0x1f, 0x8b, 8] || data[3] != 0 {
        return Err("not a plain gzip member".into());
    }
    let body = &data[10..data.len() - 8];
    let content = miniz_oxide::inflate::decompress_to_vec(body)
        .map_err(|error| format!("inflate: {error:?}"))?;
    let trailer = &data[data.len() - 8..];
    let crc = u32::from_le_bytes(trailer[..4].try_into().expect("four bytes"));
    let size = u32::from_le_bytes(trailer[4..].try_into().expect("four bytes"));
    if crc != crc32(&content) || size != content.len() as u32 {
        return Err("gzip trailer does not match the content".into());
    }
    Ok(content)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as gzip's trailer carries it.
/// Eight bytes a step through eight tables ("slicing by 8"): a table lookup per byte with
/// each depending on the last was a tenth of the archive's CPU.
fn crc32(data: &[u8]) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        let mut tables = [[0_u32; 256]; 8];
        for (index, slot) in tables[0].iter_mut().enumerate() {
            let mut value = index as u32;
            for _ in 0..8 {
                value = if value & 1 == 1 {
                    0xEDB8_8320 ^ (value >> 1)
                } else {
                    value >> 1
                };
            }
            *slot = value;
        }
        for slice in 1..8 {
            let (done, rest) = tables.split_at_mut(slice);
            for (entry, previous) in rest[0].iter_mut().zip(done[slice - 1]) {
                *entry = (previous >> 8) ^ done[0][(previous & 0xff) as usize];
            }
        }
        tables
    });
    let mut crc = !0_u32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = tables[7][(low & 0xff) as usize]
            ^ tables[6][((low >> 8) & 0xff) as usize]
            ^ tables[5][((low >> 16) & 0xff) as usize]
            ^ tables[4][(low >> 24) as usize]
            ^ tables[3][(high & 0xff) as usize]
            ^ tables[2][((high >> 8) & 0xff) as usize]
            ^ tables[1][((high >> 16) & 0xff) as usize]
            ^ tables[0][(high >> 24) as usize];
    }
    for byte in chunks.remainder() {
        crc = tables[0][((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Every length around the eight-byte steps, against the bit-at-a-time definition.
        let text: Vec<u8> = (0..100_u32).map(|i| (i * 37 % 251) as u8).collect();
        for len in 0..text.len() {
            let mut slow = !0_u32;
            for byte in &text[..len] {
                slow ^= u32::from(*byte);
                for _ in 0..8 {
                    slow = if slow & 1 == 1 {
                        0xEDB8_8320 ^ (slow >> 1)
                    } else {
                        slow >> 1
                    };
                }
            }
            assert_eq!(crc32(&text[..len]), !slow, "length {len}");
        }
    }

    #[test]
    fn round_trips_and_rejects_a_flipped_byte() {
        let text = b"{\"id\":1}\n{\"id\":2}\n".repeat(50);
        let packed = gzip(&text, 3);
        assert_eq!(gunzip(&packed).unwrap(), text);
        assert_eq!(gzip(&text, 3), packed, "same input, same bytes");
        let mut altered = packed.clone();
        let at = altered.len() - 12;
        altered[at] ^= 1;
        assert!(gunzip(&altered).is_err());
    }
}
