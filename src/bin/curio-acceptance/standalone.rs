//! Standalone mode: one `curio standalone` process reading a folder of manifests, restarted
//! by the harness for the empty-database fault.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use anyhow::{Context, bail};

/// A running `curio standalone`.
struct Process {
    child: std::process::Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Standalone {
    pub binary: PathBuf,
    pub folder: PathBuf,
    pub tokens: PathBuf,
    pub database_url: String,
    pub port: u16,
    pub log: PathBuf,
    process: Mutex<Option<Process>>,
}

impl Standalone {
    pub fn new(
        binary: PathBuf,
        folder: PathBuf,
        tokens: PathBuf,
        database_url: String,
        port: u16,
        log: PathBuf,
    ) -> Self {
        Self {
            binary,
            folder,
            tokens,
            database_url,
            port,
            log,
            process: Mutex::new(None),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes `content` to `relative` in the folder so Curio never reads half of it.
    pub fn put(&self, relative: &str, content: &str) -> anyhow::Result<()> {
        write_atomically(&self.folder, relative, content)
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = std::process::Command::new(&self.binary)
            .arg("standalone")
            .arg("--manifests")
            .arg(&self.folder)
            .args(["--database-url", &self.database_url])
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--token-file")
            .arg(&self.tokens)
            .args(["--poll-interval", "1s", "--allow-url-cidrs", "127.0.0.1/32"])
            .args(["--log-format", "json"])
            .env(
                "RUST_LOG",
                std::env::var("ACCEPTANCE_CURIO_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let mut process = Process { child };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if http
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                if let Ok(mut slot) = self.process.lock() {
                    *slot = Some(process);
                }
                return Ok(());
            }
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "curio standalone exited: {status} (see {})",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("curio standalone did not become ready")
    }

    pub fn stop(&self) {
        if let Ok(mut slot) = self.process.lock() {
            slot.take();
        }
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.process
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.child.id()))
            .map(|pid| vec![("curio standalone".to_owned(), pid)])
            .unwrap_or_default()
    }
}

/// Writes `content` to `folder/relative` so a reader never sees half of it.
pub fn write_atomically(folder: &Path, relative: &str, content: &str) -> anyhow::Result<()> {
    let path = folder.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("tmp~");
    std::fs::write(&temporary, content)?;
    std::fs::rename(&temporary, &path)?;
    Ok(())
}
