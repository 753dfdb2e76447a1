//! A throwaway PostgreSQL server of the harness's own (so a fault can restart it), made with
//! Debian's `initdb` and `pg_ctl` as `scripts/test.sh` does; or a server given by URL, which
//! the harness cannot restart.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, bail};

pub enum Postgres {
    Own {
        data: PathBuf,
        bin: PathBuf,
        port: u16,
    },
    Given {
        url: String,
    },
}

fn pg_bin() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install Debian's postgresql, or pass --database-url")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .context("no PostgreSQL server binaries under /usr/lib/postgresql")
}

/// Runs `program` as the `postgres` user when we are root (initdb refuses root).
fn as_postgres(program: &std::path::Path) -> Command {
    // Our uid, from /proc/self/status (no libc call needed).
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command.output().with_context(|| what.to_owned())?;
    if !output.status.success() {
        bail!(
            "{what}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

impl Postgres {
    /// A new cluster in a fresh folder under `parent`, listening on `port` (loopback only).
    pub fn start_own(parent: &std::path::Path, port: u16) -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        let data = parent.join("pgdata");
        std::fs::create_dir_all(&data)?;
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(parent)
            .status();
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"]);
        run(initdb, "initdb")?;
        let pg = Self::Own { data, bin, port };
        pg.start()?;
        Ok(pg)
    }

    pub fn given(url: &str) -> Self {
        Self::Given {
            url: url.to_owned(),
        }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        match self {
            Self::Own { port, .. } => format!("postgres://postgres@127.0.0.1:{port}/{name}"),
            Self::Given { url } => match url.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => url.clone(),
            },
        }
    }

    pub fn can_restart(&self) -> bool {
        matches!(self, Self::Own { .. })
    }

    pub fn start(&self) -> anyhow::Result<()> {
        let Self::Own { data, bin, port } = self else {
            return Ok(());
        };
        let mut start = as_postgres(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(data)
            .arg("-l")
            .arg(data.join("server.log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
                data.display()
            ))
            .arg("start");
        run(start, "pg_ctl start")
    }

    /// Stops the server (fast: open sessions are ended), as a crash or failover would.
    pub fn stop(&self) -> anyhow::Result<()> {
        let Self::Own { data, bin, .. } = self else {
            bail!("the harness cannot stop a server it did not start");
        };
        let mut stop = as_postgres(&bin.join("pg_ctl"));
        stop.arg("-D").arg(data).args(["-m", "fast", "-w", "stop"]);
        run(stop, "pg_ctl stop")
    }

    /// Runs SQL against the `postgres` database.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(self.url("postgres")).await?;
        db.execute_unprepared(sql).await?;
        db.close().await?;
        Ok(())
    }

    /// Waits until the server answers.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        loop {
            if self.execute("SELECT 1").await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("PostgreSQL did not answer within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Self::Own { .. } = self {
            let _ = self.stop();
        }
    }
}
