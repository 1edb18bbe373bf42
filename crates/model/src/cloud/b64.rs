//! Base64 decoding (RFC 4648), for Pub/Sub message `data` and CloudWatch subscription blobs.
//!
//! Accepts the standard and the URL-safe alphabets, with or without `=` padding, ignoring ASCII
//! whitespace.

/// Decodes `s`, or says at which byte it is not base64.
pub(super) fn decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => {
                return Err(format!(
                    "not base64: unexpected {:?} at byte {i}",
                    c as char
                ));
            }
        };
        if padding > 0 {
            return Err(format!("not base64: data after padding at byte {i}"));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("not base64: a lone trailing character".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_padded_unpadded_and_url_safe() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode("aGVs\nbG8h").unwrap(), b"hell\x6f!");
        assert_eq!(decode("-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode("").unwrap(), b"");
        assert!(decode("aGV*").is_err());
        assert!(decode("a").is_err());
        assert!(decode("aG=V").is_err());
    }
}
