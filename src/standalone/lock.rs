//! One process per data directory: an exclusive lock on `curio.lock` there, held for the life
//! of the process, with the holder's PID written in it for the message a second process gets.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

pub const LOCK_FILE: &str = "curio.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another curio standalone (PID {holder}) is using {dir}; stop it, or give this one another --data-dir"
    )]
    Held { dir: PathBuf, holder: String },
    #[error("locking {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the process runs; the lock goes with the process (or on drop).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    holder: match holder.trim() {
                        "" => "unknown".to_owned(),
                        pid => pid.to_owned(),
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let second = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            second.contains(&format!("PID {}", std::process::id())),
            "{second}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the first is gone");
    }
}
