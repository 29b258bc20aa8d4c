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
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0_u32; 256];
        for (index, slot) in table.iter_mut().enumerate() {
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
        table
    });
    !data.iter().fold(!0_u32, |crc, byte| {
        table[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
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
