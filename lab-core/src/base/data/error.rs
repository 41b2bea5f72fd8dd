//! What can be wrong with a data set's files, each error naming the file.

/// Why data could not be loaded. Each corrupt-input case has its own variant.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: not an IDX file of unsigned bytes (magic 0x{magic:08x})")]
    BadMagic { file: String, magic: u32 },
    #[error("{file}: truncated: expected {expected} bytes, found {actual}")]
    Truncated {
        file: String,
        expected: usize,
        actual: usize,
    },
    #[error("{file}: {actual} bytes but the header describes {expected}: trailing garbage")]
    TrailingBytes {
        file: String,
        expected: usize,
        actual: usize,
    },
    #[error("{file}: corrupt gzip stream: {reason}")]
    Gzip { file: String, reason: String },
    #[error("{file}: checksum mismatch: md5 {actual}, expected {expected}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{images} has {image_count} images but {labels} has {label_count} labels")]
    CountMismatch {
        images: String,
        labels: String,
        image_count: usize,
        label_count: usize,
    },
    #[error("{file}: expected 28x28 images, found dimensions {dims:?}")]
    BadShape { file: String, dims: Vec<usize> },
    #[error("{file}: label {label} is not a class 0-9")]
    BadLabel { file: String, label: u8 },
    #[error("{0}")]
    Io(String),
    #[error("data set not found; looked in: {searched}. {hint}")]
    NotFound { searched: String, hint: String },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
}
