//! Where experiment records live: a directory natively, memory in the browser.
//!
//! Keys are relative paths like `imp-1a2b3c4d/round-03/result.json`. A write is atomic: a
//! reader sees the old value or the new one, never half of a file, so a run killed at any
//! moment leaves only finished records.

use std::collections::BTreeMap;

pub trait RunStore {
    fn read(&self, key: &str) -> Option<Vec<u8>>;
    fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), String>;

    fn exists(&self, key: &str) -> bool {
        self.read(key).is_some()
    }
}

/// Reads and parses a JSON record, if present.
pub fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn RunStore,
    key: &str,
) -> Option<Result<T, String>> {
    store
        .read(key)
        .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| format!("{key}: {e}")))
}

/// Writes a value as pretty JSON.
pub fn write_json<T: serde::Serialize>(
    store: &mut dyn RunStore,
    key: &str,
    value: &T,
) -> Result<(), String> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
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

    fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), String> {
        self.entries.insert(key.to_string(), bytes.to_vec());
        Ok(())
    }
}

#[cfg(feature = "native")]
pub use native::DirStore;

#[cfg(feature = "native")]
mod native {
    use std::io::Write;
    use std::path::PathBuf;

    use super::RunStore;

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

        fn write(&mut self, key: &str, bytes: &[u8]) -> Result<(), String> {
            let path = self.path(key);
            let parent = path.parent().ok_or("a key names a file")?;
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            let temporary = path.with_extension("partial");
            let result = (|| {
                let mut file = std::fs::File::create(&temporary)?;
                file.write_all(bytes)?;
                file.sync_all()?;
                std::fs::rename(&temporary, &path)
            })();
            result.map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}
