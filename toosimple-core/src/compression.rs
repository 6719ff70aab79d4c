//! Compressed arguments (django-q's `Q_COMPRESSED`): with compression on, arguments whose
//! JSON text is longer than a threshold are stored zstd-compressed, as `zstd:` and base64 in
//! the same text column. Everything that reads them (workers, [`TaskExec`](crate::TaskExec),
//! the admin, the CLI's `show` and `status`, [`TaskHandle`](crate::TaskHandle)) sees the
//! plain JSON: compression is transparent.
//!
//! Turned on by [`COMPRESS_ENV`] when a [`Store`](crate::Store) connects (the threshold from
//! [`COMPRESS_ABOVE_ENV`], default [`DEFAULT_COMPRESS_ABOVE`] bytes), or by
//! [`Store::set_compression`](crate::Store::set_compression). A signature covers the plain
//! JSON, so compressing changes nothing of what a worker checks.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The environment variable turning compression on: `1` (or `true`, `yes`, `on`).
pub const COMPRESS_ENV: &str = "TOOSIMPLE_COMPRESS";

/// The environment variable holding the size in bytes of JSON above which arguments are
/// compressed, when [`COMPRESS_ENV`] is on.
pub const COMPRESS_ABOVE_ENV: &str = "TOOSIMPLE_COMPRESS_ABOVE";

/// Arguments longer than this (bytes of JSON) are compressed unless told otherwise.
pub const DEFAULT_COMPRESS_ABOVE: usize = 1024;

/// What starts a compressed value; JSON text never starts with `z`.
const PREFIX: &str = "zstd:";

/// zstd's level: its default, fast, and most of the gain on JSON.
const LEVEL: i32 = 3;

/// The threshold the environment asks for, `None` when compression is off.
pub(crate) fn from_env() -> Option<usize> {
    let on = std::env::var(COMPRESS_ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    if !on {
        return None;
    }
    let above = std::env::var(COMPRESS_ABOVE_ENV).ok();
    Some(match above.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_COMPRESS_ABOVE,
        Some(text) => text.parse().unwrap_or_else(|_| {
            tracing::warn!(
                "{COMPRESS_ABOVE_ENV}={text:?} is not a number of bytes: compressing arguments above {DEFAULT_COMPRESS_ABOVE} bytes"
            );
            DEFAULT_COMPRESS_ABOVE
        }),
    })
}

/// `args` compressed, when longer than `above` and when compressing makes it shorter.
pub(crate) fn compress(args: &str, above: usize) -> Option<String> {
    if args.len() <= above {
        return None;
    }
    let packed = zstd::encode_all(args.as_bytes(), LEVEL).ok()?;
    let stored = format!("{PREFIX}{}", STANDARD.encode(packed));
    (stored.len() < args.len()).then_some(stored)
}

/// The plain JSON of stored arguments: compressed ones decompressed, others as they are. A
/// compressed value that does not decode is returned as stored, for the JSON decoding that
/// follows to report (the execution becomes `Invalid`).
pub fn decompress(stored: &str) -> Cow<'_, str> {
    let Some(encoded) = stored.strip_prefix(PREFIX) else {
        return Cow::Borrowed(stored);
    };
    STANDARD
        .decode(encoded)
        .ok()
        .and_then(|packed| zstd::decode_all(packed.as_slice()).ok())
        .and_then(|plain| String::from_utf8(plain).ok())
        .map_or(Cow::Borrowed(stored), Cow::Owned)
}

/// Decompresses a claimed row's arguments in place.
pub(crate) fn inflate(exec: &mut crate::store::ClaimedExec) {
    if let Cow::Owned(plain) = decompress(&exec.args) {
        exec.args = plain;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_arguments_round_trip_small_ones_stay() {
        let large = format!(r#"{{"text":"{}"}}"#, "abc".repeat(1_000));
        let stored = compress(&large, 100).expect("compressed");
        assert!(stored.starts_with("zstd:") && stored.len() < large.len() / 10);
        assert_eq!(decompress(&stored), large);
        assert_eq!(compress(r#"{"a":1}"#, 100), None, "under the threshold");
        assert_eq!(decompress(r#"{"a":1}"#), r#"{"a":1}"#);
    }

    #[test]
    fn a_corrupt_compressed_value_is_returned_as_stored() {
        assert_eq!(decompress("zstd:!!!"), "zstd:!!!");
        assert_eq!(decompress("zstd:AAAA"), "zstd:AAAA");
    }
}
