//! Where experiment records live: a directory natively, memory in the browser.
//!
//! Keys are relative paths like `imp-1a2b3c4d/round-03/result.json`. A write is atomic: a
//! reader sees the old value or the new one, never half of a file, so a run killed at any
//! moment leaves only finished records.

use std::collections::BTreeMap;

/// Why a record could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{key} is missing")]
    Missing { key: String },
    #[error(
        "the records of {run} were made on the {recorded} backend, not {requested}: numbers \
         from two backends are not mixed in one run (use another output directory, or \
         --backend {recorded})"
    )]
    BackendMismatch {
        run: String,
        recorded: String,
        requested: String,
    },
}

/// Records of one run come from one backend: the first run names it in `<run>/backend`, and
/// a later run on another backend is refused rather than silently mixed in.
pub fn claim_backend(store: &mut dyn RunStore, run: &str, backend: &str) -> Result<(), StoreError> {
    let key = format!("{run}/backend");
    match store.read(&key) {
        Some(recorded) => {
            let recorded = String::from_utf8_lossy(&recorded).trim().to_string();
            if recorded.split(',').next_back() == Some(backend) {
                Ok(())
            } else if store.allows_backend_switch() {
                store.write(&key, format!("{recorded},{backend}").as_bytes())
            } else {
                Err(StoreError::BackendMismatch {
                    run: run.into(),
                    recorded,
                    requested: backend.into(),
                })
            }
        }
        None => store.write(&key, backend.as_bytes()),
    }
}

pub trait RunStore {
    fn read(&self, key: &str) -> Option<Vec<u8>>;
    fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    fn exists(&self, key: &str) -> bool {
        self.read(key).is_some()
    }

    /// Removes a record (a finished round's checkpoint); absent keys are fine.
    fn remove(&mut self, key: &str) -> Result<(), StoreError>;

    /// Whether a run may continue on another backend (the browser's documented fallback from a
    /// lost WebGPU device to the CPU); the backends used are then all recorded.
    fn allows_backend_switch(&self) -> bool {
        false
    }
}

/// Reads and parses a JSON record, if present.
pub fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn RunStore,
    key: &str,
) -> Option<Result<T, StoreError>> {
    store.read(key).map(|bytes| {
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            key: key.into(),
            source,
        })
    })
}

/// Writes a value as pretty JSON.
pub fn write_json<T: serde::Serialize>(
    store: &mut dyn RunStore,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let text = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
        key: key.into(),
        source,
    })?;
    store.write(key, &text)
}

/// Records kept in memory (browsers, tests).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    pub entries: BTreeMap<String, Vec<u8>>,
}

impl RunStore for MemoryStore {
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.entries.insert(key.to_string(), bytes.to_vec());
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        self.entries.remove(key);
        Ok(())
    }
}

#[cfg(feature = "native")]
pub use native::DirStore;

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place, so a
/// reader (or a run killed mid-write) sees the old file or the new one, never half of one.
#[cfg(feature = "native")]
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(feature = "native")]
mod native {
    use std::path::PathBuf;

    use super::{RunStore, StoreError};

    /// Records under a directory; each write goes to a temporary file that is synced and
    /// renamed into place.
    #[derive(Debug, Clone)]
    pub struct DirStore {
        pub root: PathBuf,
    }

    impl DirStore {
        pub fn new(root: impl Into<PathBuf>) -> Self {
            Self { root: root.into() }
        }

        pub fn path(&self, key: &str) -> PathBuf {
            self.root.join(key)
        }
    }

    impl RunStore for DirStore {
        fn read(&self, key: &str) -> Option<Vec<u8>> {
            std::fs::read(self.path(key)).ok()
        }

        fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
            let path = self.path(key);
            let io = |source| StoreError::Io {
                path: path.display().to_string(),
                source,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            crate::base::store::write_atomically(&path, bytes).map_err(io)
        }

        fn remove(&mut self, key: &str) -> Result<(), StoreError> {
            let path = self.path(key);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
                    path: path.display().to_string(),
                    source: e,
                }),
                _ => Ok(()),
            }
        }
    }
}
