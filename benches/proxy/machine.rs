//! What the benchmark reads from the kernel: the machine's shape, and the CPU
//! time and resident memory of a process, from `/proc`.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// The hardware the numbers were measured on.
pub struct Machine {
    pub cpus: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
}

impl Machine {
    /// Reads `/proc/cpuinfo` and `/proc/meminfo`; unknown fields stay blank.
    pub fn read() -> Machine {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gib = field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = field(&cpuinfo, "model name")
            .unwrap_or("unknown")
            .to_string();
        Machine {
            cpus,
            memory_gib,
            cpu_model,
        }
    }
}

/// The value of the first `name: value` line of a `/proc` text file.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// Clock ticks per second, the unit of the CPU times in `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system CPU time of all threads of process `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces;
    // the fields after it start with the state (field 3). utime and stime
    // are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("{path}: no command name");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path}: field {n} missing"))
    };
    Ok(tick(14)? + tick(15)?)
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` shows them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The number of threads of process `pid`.
pub fn threads(pid: u32) -> Result<u64> {
    status_number(pid, "Threads")
}

/// Resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_number(pid, "VmRSS")
}

/// The leading number of a `/proc/PID/status` field.
fn status_number(pid: u32, name: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    field(&status, name)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{path}: no {name}"))
}
