//! Who runs an entry: a lock file in the entry's directory, made atomically with a hard link
//! (which fails if the file exists, on local disks and NFS alike) and kept fresh by a
//! heartbeat. A lock whose holder died (its process is gone, on this host) or whose heartbeat
//! stopped (another host) is stale, and the next worker takes the entry over: the run then
//! resumes from its records and checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// How often a holder refreshes its lock.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A lock not refreshed for this long is stale, whoever holds it.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// The holder named in a lock file: `host pid since-unix-seconds nonce`.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub since: u64,
    pub text: String,
    /// Time since the last heartbeat.
    pub quiet_for: Duration,
}

impl Holder {
    /// Dead: gone from this host's process table, or silent past `STALE_AFTER`.
    pub fn is_stale(&self) -> bool {
        if self.quiet_for > STALE_AFTER {
            return true;
        }
        self.host == host_name() && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The lock's holder, if there is a lock.
pub fn holder(path: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(path).ok()?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let mut words = text.split_whitespace();
    let host = words.next()?.to_string();
    let pid = words.next()?.parse().ok()?;
    let since = words.next()?.parse().ok()?;
    Some(Holder {
        host,
        pid,
        since,
        quiet_for: SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default(),
        text,
    })
}

/// A held lock: refreshed in the background, removed when dropped.
pub struct Claim {
    path: PathBuf,
    text: String,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.heartbeat.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
        // Only our own lock: a taker may have replaced it after our heartbeat stalled.
        if std::fs::read_to_string(&self.path).is_ok_and(|text| text == self.text) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Takes the lock at `path`, taking over a stale one; `None` while a live worker holds it.
pub fn try_claim(path: &Path) -> Result<Option<Claim>> {
    let text = format!(
        "{} {} {} {:x}\n",
        host_name(),
        std::process::id(),
        unix_now(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let mut draft = path.as_os_str().to_owned();
    draft.push(format!(".{}.draft", std::process::id()));
    let draft = PathBuf::from(draft);
    std::fs::write(&draft, &text).with_context(|| format!("writing {}", draft.display()))?;
    let result = claim_with(path, &draft, &text);
    let _ = std::fs::remove_file(&draft);
    result
}

fn claim_with(path: &Path, draft: &Path, text: &str) -> Result<Option<Claim>> {
    for _ in 0..5 {
        match std::fs::hard_link(draft, path) {
            Ok(()) => return Ok(Some(start_heartbeat(path, text))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        let Some(stale) = holder(path) else {
            continue; // Released in between: try again.
        };
        if !stale.is_stale() {
            return Ok(None);
        }
        // Move the stale lock aside and check it is the one judged stale: a faster taker may
        // already have replaced it with a live lock, which then goes back.
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".{}.stale", std::process::id()));
        let aside = PathBuf::from(aside);
        if std::fs::rename(path, &aside).is_err() {
            continue;
        }
        let moved = std::fs::read_to_string(&aside).unwrap_or_default();
        if moved != stale.text {
            let _ = std::fs::hard_link(&aside, path);
            let _ = std::fs::remove_file(&aside);
            return Ok(None);
        }
        let _ = std::fs::remove_file(&aside);
    }
    Ok(None)
}

fn start_heartbeat(path: &Path, text: &str) -> Claim {
    let stop = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let stop = stop.clone();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(HEARTBEAT);
                if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
            }
        })
    };
    Claim {
        path: path.to_path_buf(),
        text: text.to_string(),
        stop,
        heartbeat: Some(heartbeat),
    }
}
