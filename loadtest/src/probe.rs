//! What the bridge itself spends: CPU time and memory of its process from
//! `/proc` (Linux, same host), and Confab's forwarded-packet counter from
//! its Prometheus `/metrics`.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The Prometheus counter of RTP packets the sfu forwarded.
pub const FORWARDED_METRIC: &str = "confab_sfu_rtp_forwarded_total";

/// A process's CPU time (user + system, all threads) and resident memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// user + system time.
    pub cpu: Duration,
    /// Resident set size, bytes.
    pub rss: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields are
    // counted after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = clock_ticks_per_second();
    let ticks = utime + stime;
    let cpu = Duration::from_micros(ticks * 1_000_000 / hz);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample {
        cpu,
        rss: rss_kb * 1024,
    })
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// The pid of the only process whose name (`/proc/<pid>/comm`) is `name`.
pub fn find_pid(name: &str) -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim_end() == name {
            if found.is_some() {
                return None; // ambiguous: the user must say which
            }
            found = Some(pid);
        }
    }
    found
}

/// The sum of `metric` over its label sets in Prometheus text at `url`.
pub async fn scrape(url: &str, metric: &str) -> Result<f64, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let res = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| format!("{url}: timed out"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("{url}: HTTP {}", res.status()));
    }
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    sum_metric(&text, metric).ok_or_else(|| format!("{url} has no {metric}"))
}

/// Sums every sample of `metric` in Prometheus text exposition format.
pub fn sum_metric(text: &str, metric: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // another metric sharing the prefix
        }
        let value = rest
            .rsplit('}')
            .next()
            .unwrap_or(rest)
            .split_whitespace()
            .next();
        if let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// `/metrics` on the host of a `ws://host:port/...` URL.
pub fn metrics_url_for(xmpp: &str) -> Option<String> {
    let rest = xmpp.strip_prefix("ws://")?;
    let host = rest.split('/').next()?;
    Some(format!("http://{host}/metrics"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_counter_over_labels() {
        let text = "# TYPE confab_sfu_rtp_forwarded_total counter\n\
                    confab_sfu_rtp_forwarded_total{worker=\"0\"} 10\n\
                    confab_sfu_rtp_forwarded_total{worker=\"1\"} 32\n\
                    confab_sfu_rtp_forwarded_total_other 5\n";
        assert_eq!(sum_metric(text, FORWARDED_METRIC), Some(42.0));
        assert_eq!(sum_metric("x 1\n", FORWARDED_METRIC), None);
        assert_eq!(
            sum_metric("confab_sfu_rtp_forwarded_total 7\n", FORWARDED_METRIC),
            Some(7.0)
        );
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).expect("/proc/self");
        assert!(s.rss > 0);
        assert_eq!(
            metrics_url_for("ws://127.0.0.1:8080/xmpp-websocket").as_deref(),
            Some("http://127.0.0.1:8080/metrics")
        );
    }
}
