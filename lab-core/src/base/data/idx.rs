//! The IDX file format of MNIST-like data sets (LeCun et al.), raw or gzipped.
//!
//! Layout: two zero bytes, a type code (0x08 = u8), the number of dimensions, then one
//! big-endian u32 per dimension, then the data in row-major order.

use std::io::Read;

use md5::{Digest, Md5};

use super::error::DataError;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The number of items along the first dimension (images or labels).
    pub fn len(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per item (784 for a 28×28 image, 1 for a label).
    pub fn item_size(&self) -> usize {
        self.dims.iter().skip(1).product()
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const TYPE_U8: u8 = 0x08;

/// Decompresses `bytes` if they are gzipped, otherwise returns them unchanged.
pub fn maybe_gunzip(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut raw = Vec::with_capacity(bytes.len() * 5);
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut raw)
            .map_err(|source| DataError::Gzip {
                file: name.to_string(),
                reason: source.to_string(),
            })?;
        Ok(raw)
    } else {
        Ok(bytes)
    }
}

/// The md5 of `bytes` as lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses an IDX array of u8 from raw (already decompressed) bytes.
pub fn parse_idx(name: &str, raw: &[u8]) -> Result<IdxArray, DataError> {
    if raw.len() < 4 {
        return Err(DataError::Truncated {
            file: name.to_string(),
            expected: 4,
            actual: raw.len(),
        });
    }
    if raw[0] != 0 || raw[1] != 0 || raw[2] != TYPE_U8 {
        return Err(DataError::BadMagic {
            file: name.to_string(),
            magic: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        });
    }
    let rank = raw[3] as usize;
    if rank == 0 || rank > 4 {
        return Err(DataError::BadMagic {
            file: name.to_string(),
            magic: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        });
    }
    let header = 4 + 4 * rank;
    if raw.len() < header {
        return Err(DataError::Truncated {
            file: name.to_string(),
            expected: header,
            actual: raw.len(),
        });
    }
    let dims: Vec<usize> = raw[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = header + dims.iter().product::<usize>();
    if raw.len() < expected {
        return Err(DataError::Truncated {
            file: name.to_string(),
            expected,
            actual: raw.len(),
        });
    }
    if raw.len() > expected {
        return Err(DataError::TrailingBytes {
            file: name.to_string(),
            expected,
            actual: raw.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: raw[header..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_a_small_array() {
        let a = parse_idx(
            "t",
            &idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        )
        .unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.len(), 2);
        assert_eq!(a.item_size(), 6);
        assert_eq!(a.data[11], 12);
    }

    #[test]
    fn wrong_magic_truncation_and_trailing_bytes_are_distinct_errors() {
        let mut bad = idx(&[2], &[1, 2]);
        bad[2] = 0x0d; // float type: not ours
        assert!(matches!(
            parse_idx("t", &bad),
            Err(DataError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_idx("t", &idx(&[3], &[1, 2])),
            Err(DataError::Truncated {
                expected: 11,
                actual: 10,
                ..
            })
        ));
        assert!(matches!(
            parse_idx("t", &idx(&[1], &[1, 2])),
            Err(DataError::TrailingBytes { .. })
        ));
        assert!(matches!(
            parse_idx("t", &[0, 0]),
            Err(DataError::Truncated { .. })
        ));
    }

    #[test]
    fn gunzip_round_trip_and_corrupt_gzip() {
        use std::io::Write;
        let raw = idx(&[2], &[7, 9]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(maybe_gunzip("t", gz.clone()).unwrap(), raw);
        assert_eq!(maybe_gunzip("t", raw.clone()).unwrap(), raw);
        let cut = gz[..gz.len() / 2].to_vec();
        assert!(matches!(
            maybe_gunzip("t", cut),
            Err(DataError::Gzip { .. })
        ));
    }
}
