//! Base64 payloads (Pub/Sub message `data`, CloudWatch subscription blobs) into JSON text,
//! with the `base64` crate. Accepts the standard and URL-safe alphabets, with or without `=`
//! padding, ignoring ASCII whitespace (line-wrapped exports).

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::decode::ErrorKind;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes `s`, or says why it is not base64.
pub(super) fn decode(s: &str) -> Result<Vec<u8>, String> {
    let compact: String;
    let s = if s.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        &compact
    } else {
        s
    };
    let engine = if s.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    engine.decode(s).map_err(|e| match e {
        base64::DecodeError::InvalidByte(i, b) => {
            format!("not base64: unexpected {:?} at byte {i}", b as char)
        }
        base64::DecodeError::InvalidLength(_) => "not base64: a lone trailing character".into(),
        e => format!("not base64: {e}"),
    })
}

/// Decodes the base64 field `field` into text. A gzip payload is refused with `gzip_hint`
/// (what it is and what to do); so is anything that is not UTF-8.
pub(super) fn text(field: &str, s: &str, gzip_hint: &str) -> Result<String, (ErrorKind, String)> {
    let bytes = decode(s).map_err(|m| (ErrorKind::InvalidField, format!("{field}: {m}")))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err((ErrorKind::Encoding, format!("{field}: {gzip_hint}")));
    }
    String::from_utf8(bytes).map_err(|e| {
        (
            ErrorKind::Encoding,
            format!(
                "{field}: decoded data is not UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
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
