//! Native-only data access: finding the files on disk and the checksummed download.

use std::path::{Path, PathBuf};

use super::{Checksums, DataError, DatasetKind, FILE_NAMES, Mnist};

/// Where to look for a data set, in order.
#[derive(Debug, Clone, Default)]
pub struct DataSource {
    /// `--data DIR`: only this directory is used.
    pub explicit_dir: Option<PathBuf>,
    /// Download into the cache when no local copy is found.
    pub allow_download: bool,
}

/// Mirrors serving the original MNIST gz files.
const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];
const FASHION_MIRRORS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// The per-user cache: `$LTH_CACHE`, else `$XDG_CACHE_HOME/lth-lab`, else `~/.cache/lth-lab`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LTH_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("lth-lab"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("lth-lab"))
}

/// Directories searched for `kind`, in order: explicit, `$LTH_DATA`, `data/<name>` and
/// `shared/<name>` in the current directory and its ancestors (so a checkout's sibling
/// `../shared/mnist` is found from any crate in it), the system package's directory, the cache.
pub fn candidate_dirs(kind: DatasetKind, source: &DataSource) -> Vec<PathBuf> {
    if let Some(dir) = &source.explicit_dir {
        return vec![dir.clone()];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("LTH_DATA") {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for ancestor in cwd.ancestors().take(4) {
            dirs.push(ancestor.join("data").join(kind.name()));
            dirs.push(ancestor.join("shared").join(kind.name()));
        }
    }
    if kind == DatasetKind::FashionMnist {
        dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
    }
    if let Some(cache) = cache_dir() {
        dirs.push(cache.join(kind.name()));
    }
    dirs
}

/// The path of a file in `dir`, gzipped or raw, if present.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|file| dir.join(file))
        .find(|path| path.is_file())
}

fn has_all_files(dir: &Path) -> bool {
    FILE_NAMES.iter().all(|name| find_file(dir, name).is_some())
}

/// Loads the data set from the first directory holding all four files, downloading into the
/// cache if allowed and none does. Checksums are always verified.
pub fn load(
    kind: DatasetKind,
    source: &DataSource,
    progress: &mut dyn FnMut(&str, u64, Option<u64>),
) -> Result<(Mnist, PathBuf), DataError> {
    let candidates = candidate_dirs(kind, source);
    if let Some(dir) = candidates.iter().find(|dir| has_all_files(dir)) {
        return Ok((load_dir(kind, dir)?, dir.clone()));
    }
    if source.allow_download && source.explicit_dir.is_none() {
        let dir = cache_dir()
            .ok_or_else(|| DataError::Io("no cache directory: set LTH_CACHE".into()))?
            .join(kind.name());
        download(kind, &dir, progress)?;
        return Ok((load_dir(kind, &dir)?, dir));
    }
    Err(DataError::NotFound {
        searched: candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hint:
            "Pass --data DIR (the four IDX files, .gz or raw), set LTH_DATA, or allow the download."
                .into(),
    })
}

/// Loads the four files from `dir`, verifying checksums.
pub fn load_dir(kind: DatasetKind, dir: &Path) -> Result<Mnist, DataError> {
    let mut files: [Vec<u8>; 4] = Default::default();
    for (slot, name) in files.iter_mut().zip(FILE_NAMES) {
        let path = find_file(dir, name).ok_or_else(|| DataError::NotFound {
            searched: dir.display().to_string(),
            hint: format!("{name}(.gz) is missing"),
        })?;
        *slot =
            std::fs::read(&path).map_err(|e| DataError::Io(format!("{}: {e}", path.display())))?;
    }
    Mnist::from_file_bytes(kind, files, Checksums::Verify)
}

/// Downloads the four gz files into `dir`; each is written as `.part`, checked, then renamed,
/// so an interrupted or corrupt download never leaves a file that looks complete.
pub fn download(
    kind: DatasetKind,
    dir: &Path,
    progress: &mut dyn FnMut(&str, u64, Option<u64>),
) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::Io(format!("{}: {e}", dir.display())))?;
    // `LTH_MIRROR` (a base URL ending in `/`) replaces the public mirrors, e.g. for a local
    // copy on an offline network.
    let custom = std::env::var("LTH_MIRROR").ok();
    let mirrors: Vec<&str> = match (&custom, kind) {
        (Some(url), _) => vec![url.as_str()],
        (None, DatasetKind::Mnist) => MNIST_MIRRORS.to_vec(),
        (None, DatasetKind::FashionMnist) => FASHION_MIRRORS.to_vec(),
    };
    for (index, name) in FILE_NAMES.iter().enumerate() {
        let target = dir.join(format!("{name}.gz"));
        if target.is_file() {
            continue;
        }
        let mut last_error = None;
        for mirror in &mirrors {
            let url = format!("{mirror}{name}.gz");
            match fetch_checked(kind, index, &url, progress) {
                Ok(bytes) => {
                    let part = dir.join(format!("{name}.gz.part"));
                    std::fs::write(&part, &bytes)
                        .and_then(|_| std::fs::rename(&part, &target))
                        .map_err(|e| DataError::Io(format!("{}: {e}", target.display())))?;
                    last_error = None;
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        if let Some(error) = last_error {
            return Err(error);
        }
    }
    Ok(())
}

#[cfg(not(feature = "download"))]
fn fetch_checked(
    _kind: DatasetKind,
    _index: usize,
    url: &str,
    _progress: &mut dyn FnMut(&str, u64, Option<u64>),
) -> Result<Vec<u8>, DataError> {
    Err(DataError::Download {
        url: url.to_string(),
        reason: "lab-core was built without its `download` feature; pass the data directory".into(),
    })
}

#[cfg(feature = "download")]
fn fetch_checked(
    kind: DatasetKind,
    index: usize,
    url: &str,
    progress: &mut dyn FnMut(&str, u64, Option<u64>),
) -> Result<Vec<u8>, DataError> {
    use super::{maybe_gunzip, verify_checksum};
    use std::io::Read;
    let fail = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let mut response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut reader = response.body_mut().as_reader();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut chunk).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        progress(FILE_NAMES[index], bytes.len() as u64, total);
    }
    let raw = maybe_gunzip(FILE_NAMES[index], bytes.clone())?;
    verify_checksum(kind, index, &raw)?;
    Ok(bytes)
}
