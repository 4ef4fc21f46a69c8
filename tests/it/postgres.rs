//! A real PostgreSQL server for one test: `initdb` on a temporary folder (password
//! authentication, a superuser `app`), `pg_ctl start` on a free loopback port, stopped when
//! dropped. As root (PostgreSQL refuses to run as root) the server runs as the `postgres` user
//! the Debian package creates. `scripts/test` installs the server when it is missing.

use std::path::PathBuf;
use std::process::Command;

/// A running server.
pub struct Postgres {
    /// Its loopback port.
    pub port: u16,
    password: String,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts a server whose user `app` has `password`.
    pub fn start(password: &str) -> Postgres {
        let bin = server_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).unwrap();
        if is_root() {
            let (uid, gid) = (id("-u"), id("-g"));
            for path in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            }
        }
        let port = crate::harness::free_port();
        let initdb = as_server_user(bin.join("initdb"))
            .args(["-A", "scram-sha-256", "-U", "app", "--no-sync", "-D"])
            .arg(&data)
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(initdb.status.success(), "initdb: {initdb:?}");
        let options = format!("-h 127.0.0.1 -p {port} -k {} -F", dir.path().display());
        let start = as_server_user(bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .arg("-D")
            .arg(&data)
            .arg("start")
            .output()
            .unwrap();
        assert!(start.status.success(), "pg_ctl start: {start:?}");
        Postgres {
            port,
            password: password.to_string(),
            bin,
            data,
            _dir: dir,
        }
    }

    /// The JDBC URL of its `postgres` database.
    pub fn jdbc_url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` with psql; its unaligned, tuples-only output.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "app",
                "-d",
                "postgres",
                "-tA",
                "-c",
                sql,
            ])
            .arg(format!("--port={}", self.port))
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The columns of every table in `public`, as `table.column type` lines.
    pub fn schema(&self) -> String {
        self.query(
            "select table_name || '.' || column_name || ' ' || data_type from information_schema.columns \
             where table_schema = 'public' order by table_name, ordinal_position",
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_server_user(self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

/// The server's programs: the newest `/usr/lib/postgresql/<version>/bin`.
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test installs it)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server with initdb").1
}

/// Whether this process runs as root (the owner of `/proc/self` is its effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The `postgres` user's id (`-u`) or group (`-g`); the Debian package makes the user.
fn id(which: &str) -> u32 {
    let out = Command::new("id")
        .args([which, "postgres"])
        .output()
        .unwrap();
    assert!(out.status.success(), "no postgres user: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `program`, run as the `postgres` user when this process is root.
fn as_server_user(program: PathBuf) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
