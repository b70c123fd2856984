//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally as bytes arrive.
//!
//! Read as strictly as hyper reads it, and no less: a line hyper would refuse (a bare CR,
//! whitespace other than SP and HTAB, a trailer that is no field) is refused here too, so
//! that no body ends in a different place for us than for the reader we replaced.

use bytes::{Buf, BytesMut};

use crate::Error;

/// Longest chunk-size or trailer line accepted.
pub(crate) const MAX_LINE: usize = 4096;

/// Most chunk-extension bytes a body may carry in all (hyper's limit): extensions are read
/// and dropped, and one-byte chunks with long extensions would cost a line per byte.
const MAX_EXTENSIONS: usize = 16 * 1024;

/// Most trailer bytes accepted, counted as hyper counts them: the trailer lines with their
/// CRLFs and the CRLF that ends them (trailers are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// Most trailer fields accepted (hyper's limit, its limit for header fields).
const MAX_TRAILER_FIELDS: usize = 100;

/// A chunked body being decoded: fed the bytes received, it moves what is complete into the
/// body and leaves the rest for the next feed.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    extension_bytes: usize,
    trailer_bytes: usize,
    trailer_fields: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    Done,
}

impl Chunked {
    /// Consumes from `input` what can be decoded, appending data to `body` (at most `max`
    /// bytes in all). `Ok(true)` once the body has ended; `Ok(false)` needs more input.
    pub fn feed(
        &mut self,
        input: &mut BytesMut,
        body: &mut BytesMut,
        max: usize,
    ) -> Result<bool, Error> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(input)? else {
                        return Ok(false);
                    };
                    let (size, extension) = parse_chunk_size(&line)?;
                    self.extension_bytes += extension;
                    if self.extension_bytes >= MAX_EXTENSIONS {
                        return Err(Error::Malformed);
                    }
                    if size == 0 {
                        self.state = ChunkState::Trailer;
                    } else {
                        let total = u64::try_from(body.len())
                            .ok()
                            .and_then(|l| l.checked_add(size));
                        if total.is_none_or(|t| t > u64::try_from(max).unwrap_or(u64::MAX)) {
                            return Err(Error::TooLarge);
                        }
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    body.extend_from_slice(&input[..n]);
                    input.advance(n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(Error::Malformed);
                    }
                    input.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(input)? else {
                        return Ok(false);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    } else {
                        self.trailer_bytes += line.len() + 2;
                        self.trailer_fields += 1;
                        // The 2: the CRLF that will end the trailers.
                        if self.trailer_bytes + 2 >= MAX_TRAILERS
                            || self.trailer_fields > MAX_TRAILER_FIELDS
                            || !is_field_line(&line)
                        {
                            return Err(Error::Malformed);
                        }
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

/// The next CRLF-terminated line of `input` without its CRLF, taken out of `input`; `None`
/// until a whole line has arrived. A CR anywhere else in the line is refused: some readers
/// end lines at a bare CR.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, Error> {
    let Some(lf) = input.iter().position(|b| *b == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(Error::Malformed);
        }
        return Ok(None);
    };
    if lf > MAX_LINE || lf == 0 || input[lf - 1] != b'\r' || input[..lf - 1].contains(&b'\r') {
        return Err(Error::Malformed);
    }
    let mut line = input.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// `1a`, `001A ;name=value`: the hexadecimal size, and how many bytes of extensions follow
/// it (read and ignored).
fn parse_chunk_size(line: &[u8]) -> Result<(u64, usize), Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Error::Malformed);
    }
    // Whitespace before the extensions is SP or HTAB only (RFC 9112 §7.1.1's BWS).
    let after = &line[digits..];
    let blank = after
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let extension = match after[blank..].split_first() {
        None => 0,
        Some((b';', ext)) => ext.len(),
        Some(_) => return Err(Error::Malformed),
    };
    // Leading zeros are allowed, a size past `u64` is not.
    let size = line[..digits].iter().try_fold(0u64, |n, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        n.checked_mul(16)?.checked_add(u64::from(v))
    });
    Ok((size.ok_or(Error::Malformed)?, extension))
}

/// A trailer line is a field line (RFC 9112 §5): a token, a colon, then a value of visible
/// characters, spaces, tabs and obs-text; obs-fold is refused as in a head.
fn is_field_line(line: &[u8]) -> bool {
    let name = line.iter().take_while(|b| is_tchar(**b)).count();
    name > 0
        && line.get(name) == Some(&b':')
        && line[name + 1..]
            .iter()
            .all(|b| matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff))
}

/// RFC 9110 §5.6.2's `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `raw` fed in pieces of `step` bytes; also returns what followed the body.
    fn decode(raw: &[u8], step: usize, max: usize) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let mut c = Chunked::default();
        let mut input = BytesMut::new();
        let mut body = BytesMut::new();
        let mut fed = 0;
        loop {
            if c.feed(&mut input, &mut body, max)? {
                let mut rest = input.to_vec();
                rest.extend_from_slice(&raw[fed..]);
                return Ok((body.to_vec(), rest));
            }
            if fed == raw.len() {
                return Err(Error::Malformed);
            }
            let end = (fed + step).min(raw.len());
            input.extend_from_slice(&raw[fed..end]);
            fed = end;
        }
    }

    #[test]
    fn chunked_bodies_decode_however_they_arrive() {
        let raw =
            b"5\r\nhello\r\n1;ext=\"x\"\r\n,\r\nA \r\n world!!!!\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for step in 1..=raw.len() {
            let (body, rest) = decode(raw, step, 1024).expect("decodes");
            assert_eq!(body, b"hello, world!!!!", "step {step}");
            assert_eq!(rest, b"NEXT", "step {step}");
        }
    }

    #[test]
    fn broken_or_oversized_chunked_bodies_are_refused() {
        for bad in [
            &b"5\r\nhelloXX0\r\n\r\n"[..],
            b"g\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            // Past u64.
            b"10000000000000000\r\n",
            // Whitespace other than SP and HTAB, and CRs that do not end a line: hyper refuses
            // them all, and a reader that ends lines at a bare CR would see other chunks.
            b"5\x0c\r\nhello\r\n0\r\n\r\n",
            b"5\x0b;a\r\nhello\r\n0\r\n\r\n",
            b"5\r\rhello\r\n0\r\n\r\n",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"0\r\nx-t: 1\rx-u: 2\r\n\r\n",
            // Trailers that are no field lines.
            b"0\r\nnot a field\r\n\r\n",
            b"0\r\n: v\r\n\r\n",
            b"0\r\nx-t : 1\r\n\r\n",
            b"0\r\nx-t: 1\r\n 2\r\n\r\n",
            b"0\r\nx-t: 1\x00\r\n\r\n",
            b"0\r\nx-t: 1\x7f\r\n\r\n",
        ] {
            assert_eq!(
                decode(bad, 64, 1024).err(),
                Some(Error::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode(b"5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 64, 10).err(),
            Some(Error::TooLarge)
        );
        let endless = [b'1'; MAX_LINE + 1];
        assert_eq!(decode(&endless, 64, 10).err(), Some(Error::Malformed));
        // A size that fits u64 but not the limit.
        assert_eq!(
            decode(b"1000000000000000\r\n", 64, 1024).err(),
            Some(Error::TooLarge)
        );
    }

    #[test]
    fn leading_zeros_whitespace_and_valid_trailers_are_read() {
        let zeros = format!(
            "{}5 \t;a=b\r\nhello\r\n000\r\nx-t:\tv\u{80}\r\n\r\n",
            "0".repeat(40)
        );
        let (body, rest) = decode(zeros.as_bytes(), 7, 1024).expect("decodes");
        assert_eq!((&body[..], &rest[..]), (&b"hello"[..], &b""[..]));
    }

    #[test]
    fn extensions_and_trailers_are_bounded_in_all() {
        // Each line is short enough; five lines' extensions stay under the 16 KiB that a
        // body may carry (hyper's limit too), six pass it.
        let line = format!("1;{}\r\nx\r\n", "e".repeat(3000));
        let mut flood = line.repeat(5);
        flood.push_str("0\r\n\r\n");
        assert!(decode(flood.as_bytes(), 512, 1024).is_ok());
        let mut flood = line.repeat(6);
        flood.push_str("0\r\n\r\n");
        assert_eq!(
            decode(flood.as_bytes(), 512, 1024).err(),
            Some(Error::Malformed)
        );
        let trailers = |n: usize, value: usize| {
            let mut raw = "0\r\n".to_owned();
            for i in 0..n {
                raw.push_str(&format!("t{i:03}: {}\r\n", "v".repeat(value)));
            }
            raw.push_str("\r\n");
            decode(raw.as_bytes(), 512, 1024).map(|_| ())
        };
        assert_eq!(trailers(MAX_TRAILER_FIELDS, 1), Ok(()));
        assert_eq!(trailers(MAX_TRAILER_FIELDS + 1, 1), Err(Error::Malformed));
        // Four lines of 4 KiB with their CRLFs, and the final CRLF: past 16 KiB. A byte
        // shorter each: under.
        assert_eq!(trailers(4, 4096 - 9), Ok(()));
        assert_eq!(trailers(4, 4096 - 8), Err(Error::Malformed));
    }

    proptest! {
        #[test]
        fn any_body_in_any_chunks_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(1usize..100, 0..12),
            step in 1usize..64,
        ) {
            let mut raw = Vec::new();
            let mut at = 0usize;
            for c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                let end = at.saturating_add(*c).min(body.len());
                if end > at {
                    raw.extend_from_slice(format!("{:x}\r\n", end - at).as_bytes());
                    raw.extend_from_slice(&body[at..end]);
                    raw.extend_from_slice(b"\r\n");
                }
                at = end;
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            let (got, rest) = decode(&raw, step, 600).expect("decodes");
            prop_assert_eq!(got, body);
            prop_assert!(rest.is_empty());
        }
    }
}
