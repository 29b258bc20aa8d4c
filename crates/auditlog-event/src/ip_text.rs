//! An IP address as text, the way `Display` writes it, without the formatting machinery:
//! the Avro encoding and the stored row both write every event's address, and `write!`
//! cost more than the rest of an event's fixed fields together.

use std::net::Ipv4Addr;

/// Appends `ip` as dotted decimal, byte for byte what `ip.to_string()` gives.
pub fn put_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    for (index, octet) in ip.octets().into_iter().enumerate() {
        if index > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_octet_width_is_written_as_display_writes_it() {
        for ip in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(9, 10, 99, 100),
            Ipv4Addr::new(203, 0, 113, 7),
            Ipv4Addr::new(255, 255, 255, 255),
        ] {
            let mut out = Vec::new();
            put_ipv4(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }
}
