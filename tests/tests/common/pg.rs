//! A PostgreSQL server for end-to-end tests: Debian's `postgresql` binaries, `initdb` and
//! `pg_ctl` in a temporary directory on a free loopback port. Without the binaries the tests
//! that need it fail, saying what to install: they never skip silently.
use super::{free_port, temp_dir};
use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL server of Debian's `postgresql` binaries in a temporary directory on a free
/// port (run as user `postgres` when we are root, as initdb requires); stopped on drop.
pub struct Pg {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    root: bool,
}

impl Pg {
    pub fn start() -> Pg {
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("pg_ctl").is_file())
            .collect();
        bins.sort();
        let bin = bins.pop().expect(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install Debian's postgresql package",
        );
        let dir = temp_dir("pg");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0\n"))
            .unwrap();
        if root {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let pg = Pg {
            dir,
            bin,
            port: free_port(),
            root,
        };
        let data = pg.dir.join("data").display().to_string();
        pg.run(&[
            "initdb",
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "sipcore",
            "--no-sync",
        ]);
        pg.start_again();
        pg
    }

    /// Start the server (again, after [`Pg::stop`]) on the same port and data; returns when
    /// it accepts connections.
    pub fn start_again(&self) {
        let data = self.dir.join("data").display().to_string();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("pg.log").display().to_string();
        self.run(&[
            "pg_ctl", "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "120", "start",
        ]);
    }

    /// Stop the server (fast shutdown: connections are cut); returns when it is down.
    pub fn stop(&self) {
        let data = self.dir.join("data").display().to_string();
        self.run(&[
            "pg_ctl", "-D", &data, "-m", "fast", "-w", "-t", "120", "stop",
        ]);
    }

    pub fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut c = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(&self.dir);
        c
    }

    pub fn run(&self, args: &[&str]) {
        let out = self.command(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
