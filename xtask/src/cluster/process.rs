//! The processes of a cluster: starting them, recording their pids, stopping them by pid.
//!
//! `up` records every process in `<state dir>/processes` as soon as it has started (one line
//! per process: name, pid, port, binary, log, tab-separated), so that `down` (or a failed `up`)
//! can stop exactly those processes. A pid is only signalled while `/proc/<pid>/cmdline` still
//! names the binary we started, so a recycled pid is never hit.

use std::{
    fs,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::Detach;

const STATE_FILE: &str = "processes";

/// What to start.
#[derive(Debug)]
pub struct Component {
    pub name: &'static str,
    pub binary: PathBuf,
    pub port: u16,
    pub log: PathBuf,
    pub args: Vec<String>,
}

/// One started process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub port: u16,
    pub binary: PathBuf,
    pub log: PathBuf,
    /// Set when this xtask started it (so that it can be reaped).
    child: Option<Child>,
}

/// The processes of one cluster, in start order.
#[derive(Debug)]
pub struct Processes {
    file: PathBuf,
    procs: Vec<Proc>,
}

impl Processes {
    /// An empty set, recorded in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            file: dir.join(STATE_FILE),
            procs: Vec::new(),
        }
    }

    /// The processes recorded in `dir`, if a cluster was started there.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let file = dir.join(STATE_FILE);
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
        };
        let procs = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                parse_line(line).with_context(|| format!("{}: bad line `{line}`", file.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Self { file, procs }))
    }

    /// Starts `c` with its output in its log, and records it.
    pub fn start(&mut self, c: &Component, detach: Detach) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&c.log)
            .with_context(|| format!("opening {}", c.log.display()))?;
        let mut cmd = Command::new(&c.binary);
        cmd.args(&c.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if detach == Detach::Yes {
            // Its own process group: a Ctrl-C in the terminal that ran `up` does not reach it.
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", c.name, c.binary.display()))?;
        self.procs.push(Proc {
            name: c.name.to_string(),
            pid: child.id(),
            port: c.port,
            binary: c.binary.clone(),
            log: c.log.clone(),
            child: Some(child),
        });
        self.save()
    }

    fn save(&self) -> Result<()> {
        let mut text = String::new();
        for p in &self.procs {
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                p.name,
                p.pid,
                p.port,
                p.binary.display(),
                p.log.display()
            ));
        }
        let tmp = self.file.with_extension("tmp");
        let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &self.file).with_context(|| format!("writing {}", self.file.display()))
    }

    pub fn get(&self, name: &str) -> Option<&Proc> {
        self.procs.iter().find(|p| p.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Proc> {
        self.procs.iter()
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// If the named process (started by this xtask) has exited: how.
    pub fn exited(&mut self, name: &str) -> Option<ExitStatus> {
        let proc = self.procs.iter_mut().find(|p| p.name == name)?;
        proc.child.as_mut()?.try_wait().ok().flatten()
    }

    /// `(name, pid)` of the recorded processes that still run.
    pub fn alive(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .filter(|p| alive(p.pid, &p.binary))
            .map(|p| (p.name.clone(), p.pid))
            .collect()
    }

    pub fn alive_count(&self) -> usize {
        self.alive().len()
    }

    /// Stops every process, last started first: SIGTERM, then SIGKILL after 15 s.
    pub fn stop_all(&mut self) {
        for proc in self.procs.iter_mut().rev() {
            stop(proc);
        }
    }
}

impl Drop for Processes {
    /// Reaps the children that have exited (no zombies while the xtask goes on running).
    fn drop(&mut self) {
        for proc in &mut self.procs {
            if let Some(child) = proc.child.as_mut() {
                let _ = child.try_wait();
            }
        }
    }
}

fn parse_line(line: &str) -> Result<Proc> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, pid, port, binary, log] = fields[..] else {
        bail!("expected 5 tab-separated fields");
    };
    Ok(Proc {
        name: name.to_string(),
        pid: pid.parse().context("pid")?,
        port: port.parse().context("port")?,
        binary: PathBuf::from(binary),
        log: PathBuf::from(log),
        child: None,
    })
}

/// Whether `pid` runs (and is not a zombie) and is still `binary`.
pub fn alive(pid: u32, binary: &Path) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state is the first field after the last `)`.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    argv0 == binary.as_os_str().as_encoded_bytes()
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Proc {
    /// Whether it still runs. A child of this xtask is asked directly (its pid cannot be
    /// reused while we hold it unreaped, and right after spawn it may not have exec'd yet);
    /// any other process by pid and command line.
    fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => alive(self.pid, &self.binary),
        }
    }
}

fn wait_gone(proc: &mut Proc, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if !proc.running() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    !proc.running()
}

fn stop(proc: &mut Proc) {
    if !proc.running() {
        return;
    }
    signal(proc.pid, "-TERM");
    if wait_gone(proc, Duration::from_secs(15)) {
        eprintln!("    stopped {} (pid {})", proc.name, proc.pid);
        return;
    }
    signal(proc.pid, "-KILL");
    if wait_gone(proc, Duration::from_secs(5)) {
        eprintln!(
            "    killed {} (pid {}): it ignored SIGTERM",
            proc.name, proc.pid
        );
    } else {
        eprintln!("    could not stop {} (pid {})", proc.name, proc.pid);
    }
}

/// The last `lines` lines of a log file, with a header naming it.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            format!(
                "--- last {} lines of {} ---\n{}",
                tail.len(),
                path.display(),
                tail.join("\n")
            )
        }
        Err(err) => format!("--- {} cannot be read: {err} ---", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn starts_records_and_stops_a_process() {
        let dir = temp_dir("procs");
        let sleep = PathBuf::from("/bin/sleep");
        let mut procs = Processes::new(&dir);
        procs
            .start(
                &Component {
                    name: "sleeper",
                    binary: sleep.clone(),
                    port: 1234,
                    log: dir.join("sleeper.log"),
                    args: vec!["300".into()],
                },
                Detach::Yes,
            )
            .unwrap();
        let pid = procs.get("sleeper").unwrap().pid;
        // Right after spawn the child may not have exec'd yet.
        let start = Instant::now();
        while !alive(pid, &sleep) && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(alive(pid, &sleep));
        // Another binary path with the same pid is not ours.
        assert!(!alive(pid, Path::new("/bin/true")));

        let mut loaded = Processes::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.len(), 1);
        let p = loaded.get("sleeper").unwrap();
        assert_eq!((p.pid, p.port), (pid, 1234));
        assert_eq!(loaded.alive(), vec![("sleeper".to_string(), pid)]);

        loaded.stop_all();
        assert!(!alive(pid, &sleep));
        // `alive` is false as soon as the process leaves its binary; the exit status can be
        // collected a moment later, once the kernel has made it a zombie.
        let start = Instant::now();
        let mut status = procs.exited("sleeper");
        while status.is_none() && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(20));
            status = procs.exited("sleeper");
        }
        assert!(status.is_some(), "the stopped process was not reaped");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_state_file_means_no_cluster() {
        let dir = temp_dir("nostate");
        assert!(Processes::load(&dir).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_state_lines_are_errors() {
        assert!(parse_line("etcd\t12\t34\t/bin/etcd\t/x.log").is_ok());
        assert!(parse_line("etcd\tx\t34\t/bin/etcd\t/x.log").is_err());
        assert!(parse_line("etcd 12 34").is_err());
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = temp_dir("logtail");
        let log = dir.join("a.log");
        fs::write(&log, "1\n2\n3\n4\n").unwrap();
        let tail = log_tail(&log, 2);
        assert!(tail.ends_with("3\n4"), "{tail}");
        assert!(log_tail(&dir.join("missing.log"), 2).contains("cannot be read"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
