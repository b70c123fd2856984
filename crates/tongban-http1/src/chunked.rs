//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally as bytes arrive.

use bytes::{Buf, BytesMut};

use crate::Error;

/// Longest chunk-size or trailer line accepted.
pub(crate) const MAX_LINE: usize = 4096;

/// Most trailer bytes accepted (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// A chunked body being decoded: fed the bytes received, it moves what is complete into the
/// body and leaves the rest for the next feed.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
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
                    let size = parse_chunk_size(&line)?;
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
                        if self.trailer_bytes > MAX_TRAILERS {
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
/// until a whole line has arrived.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, Error> {
    let Some(lf) = input.iter().position(|b| *b == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(Error::Malformed);
        }
        return Ok(None);
    };
    if lf > MAX_LINE || lf == 0 || input[lf - 1] != b'\r' {
        return Err(Error::Malformed);
    }
    let mut line = input.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// `1a`, `1A;name=value`: the hexadecimal size, extensions ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // 15 hex digits cannot overflow, and no answer the gateway accepts comes near it.
    if digits == 0 || digits > 15 {
        return Err(Error::Malformed);
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(Error::Malformed);
    }
    Ok(line[..digits].iter().fold(0, |n, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        n * 16 + u64::from(v)
    }))
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
            b"1000000000000000\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
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
