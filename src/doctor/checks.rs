//! The doctor's judgement, without I/O: facts in, one line per check out.
//! Kept pure so golden tests can pin the exact screen a technician sees.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use crate::config::Config;
use crate::shapes::{self, PathFacts};
use crate::vocab::PathState;

/// 2026-01-01T00:00:00Z. A clock before this is wrong (no RTC battery, no
/// NTP yet), and TLS to the tunnel server will fail certificate checks.
pub const CLOCK_FLOOR_UNIX: u64 = 1_767_225_600;

/// What the doctor found out; gathered by `doctor::gather`.
pub struct Facts {
    pub config_file: String,
    pub config: Result<Config, String>,
    pub config_present: bool,
    pub api: SocketAddr,
    /// `/v3/info`, or why the daemon did not answer.
    pub info: Result<Value, String>,
    /// `/v3/paths/list` items.
    pub paths: Vec<Value>,
    pub self_test: SelfTest,
    pub interfaces: Vec<IpAddr>,
    /// ICE server hosts that did not resolve.
    pub unresolved: Vec<String>,
    pub now_unix: u64,
    pub disk: Option<Disk>,
}

pub enum SelfTest {
    Skipped(String),
    Passed {
        path: String,
        ms: u64,
        candidates: usize,
    },
    Failed {
        path: String,
        why: String,
    },
}

pub struct Disk {
    pub path: String,
    pub avail: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Ok,
    Warn,
    Fail,
    Skip,
}

pub struct Check {
    pub mark: Mark,
    pub name: &'static str,
    pub detail: String,
    pub hint: Option<String>,
    /// Counts for `--boot-check` (A/B rollback): a broken daemon, not a
    /// missing cable or a wrong clock.
    pub critical: bool,
    /// Still settling (daemon starting, path starting): boot-check waits.
    pub pending: bool,
}

impl Check {
    pub(super) fn new(mark: Mark, name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            mark,
            name,
            detail: detail.into(),
            hint: None,
            critical: false,
            pending: false,
        }
    }
    pub(super) fn hint(mut self, h: impl Into<String>) -> Check {
        self.hint = Some(h.into());
        self
    }
    fn critical(mut self) -> Check {
        self.critical = true;
        self
    }
    fn pending(mut self) -> Check {
        self.pending = true;
        self
    }
}

pub fn evaluate(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(
        match &f.config {
            Ok(c) => {
                let names: Vec<&str> = c.paths.keys().map(String::as_str).collect();
                let file = match f.config_present {
                    true => f.config_file.clone(),
                    false => format!("{} absent, built-in defaults", f.config_file),
                };
                Check::new(
                    Mark::Ok,
                    "config",
                    format!(
                        "{file}: {} ({})",
                        plural(names.len(), "path"),
                        names.join(", ")
                    ),
                )
            }
            Err(e) => Check::new(Mark::Fail, "config", e.clone())
                .hint(format!("r58 config check {} shows the line", f.config_file)),
        }
        .critical(),
    );
    out.extend(daemon(f));
    out.extend(ice(f));
    out.extend(super::tunnel::checks(f));
    out.extend(super::forward::checks(f));
    out.push(clock(f.now_unix));
    if let Some(d) = &f.disk {
        out.push(disk(d));
    }
    out
}

fn daemon(f: &Facts) -> Vec<Check> {
    let info = match &f.info {
        Ok(i) => i,
        Err(e) => {
            // Pending too: at boot it may still be starting or restarting.
            return vec![
                Check::new(Mark::Fail, "daemon", format!("not running: {e}"))
                    .hint("systemctl status r58; journalctl -u r58 -b -n 50")
                    .critical()
                    .pending(),
            ];
        }
    };
    let mut out = vec![Check::new(
        Mark::Ok,
        "daemon",
        format!(
            "r58 {} running for {}, API {}",
            info["version"].as_str().unwrap_or("?"),
            crate::status::duration(info["uptimeSeconds"].as_u64().unwrap_or(0)),
            f.api
        ),
    )];
    let h: crate::health::Snapshot = shapes::read(&info["r58"]["health"]);
    let status = h.status.as_str();
    out.push(
        if !h.checked {
            Check::new(Mark::Warn, "health", "not judged yet (starting)").pending()
        } else if h.healthy {
            Check::new(Mark::Ok, "health", format!("healthy: {status}"))
        } else {
            Check::new(Mark::Fail, "health", status).hint(
                "r58 withholds the watchdog now; systemd will restart it. \
                 journalctl -u r58 -b | grep -i health",
            )
        }
        .critical(),
    );
    for p in &f.paths {
        out.push(path(p));
    }
    out.push(
        match &f.self_test {
            SelfTest::Passed {
                path,
                ms,
                candidates,
            } => Check::new(
                Mark::Ok,
                "whep",
                format!("local viewer on {path}: answer in {ms} ms, {candidates} candidates"),
            ),
            SelfTest::Failed { path, why } => {
                Check::new(Mark::Fail, "whep", format!("local viewer on {path}: {why}"))
                    .hint("the WebRTC engine refused a viewer; journalctl -u r58 -b")
            }
            SelfTest::Skipped(why) => Check::new(Mark::Skip, "whep", why.clone()),
        }
        .critical(),
    );
    out
}

fn path(p: &Value) -> Check {
    let name = p["name"].as_str().unwrap_or("?");
    // A state this doctor does not know: the daemon is newer or older.
    let said = p["r58"]["state"].as_str().unwrap_or("?");
    if said.parse::<PathState>().is_err() {
        return Check::new(Mark::Fail, "path", format!("{name}: {said}"))
            .hint("this r58 and its doctor disagree on path states: mixed versions?")
            .critical();
    }
    let r: PathFacts = shapes::read(&p["r58"]);
    let detail = r.detail.as_deref().unwrap_or("");
    let format = if r.format.is_empty() { "?" } else { &r.format };
    let published = r.source == "publisher";
    match r.state {
        // A guest slot: fed by WHIP when someone publishes, idle otherwise.
        PathState::Streaming if published => Check::new(
            Mark::Ok,
            "path",
            format!("{name}: publisher sending {format}"),
        ),
        PathState::Idle if published => Check::new(Mark::Ok, "path", format!("{name}: {detail}")),
        PathState::Streaming => {
            let kbps = r.bitrate / 1000;
            let from = r
                .signal
                .as_deref()
                .map(|s| format!(" from {s}"))
                .unwrap_or_default();
            let sound = r
                .audio
                .as_deref()
                .map(|a| format!(", {a}"))
                .unwrap_or_default();
            let what = format!(
                "{name}: streaming {format}{from} {} {kbps} kbit/s, {} frames{sound}",
                r.encoder.as_deref().unwrap_or("?"),
                r.frames
            );
            if r.audio_missing {
                return Check::new(Mark::Warn, "path", what)
                    .hint("arecord -l lists the sound cards; audio = \"off\" sends video only");
            }
            Check::new(Mark::Ok, "path", what)
        }
        PathState::NoSignal | PathState::Idle => {
            Check::new(Mark::Warn, "path", format!("{name}: no signal: {detail}"))
                .hint(signal_hint(detail))
        }
        // Pipelines time out their first frame (15 s) and retry, so a path
        // starting for longer is held in the driver: a slow or stuck device.
        PathState::Starting if r.since_seconds > SLOW_START => Check::new(
            Mark::Warn,
            "path",
            format!(
                "{name}: starting for {}: the device is slow or stuck",
                crate::status::duration(r.since_seconds)
            ),
        )
        .hint("dmesg | tail -20; fuser -v /dev/video*"),
        PathState::Starting => {
            Check::new(Mark::Warn, "path", format!("{name}: starting")).pending()
        }
        PathState::Error => Check::new(Mark::Fail, "path", format!("{name}: error: {detail}"))
            .hint(format!("journalctl -u r58 -b | grep {name}"))
            .critical(),
    }
}

/// Seconds a path may be starting before the doctor calls it stuck.
const SLOW_START: u64 = 30;

/// What a technician does about each way an input has no signal.
fn signal_hint(detail: &str) -> &'static str {
    if detail.contains("no HDMI-RX device") {
        "the HDMI-RX driver is not loaded: dmesg | grep -i hdmirx"
    } else if detail.starts_with("opening ") {
        "the node in the path's config is missing or busy: fuser -v /dev/video*"
    } else if detail.contains("no lock") {
        "a cable but no stable picture: try another cable or set the source to 1080p60"
    } else if detail.starts_with("invalid signal") || detail.contains("range") {
        "the source sends a mode r58 cannot use: set it to 1080p or 720p"
    } else {
        "check the cable and that the source is switched on"
    }
}

fn ice(f: &Facts) -> Vec<Check> {
    let Ok(cfg) = &f.config else {
        return Vec::new();
    };
    let w = &cfg.webrtc;
    let mut out = Vec::new();
    if w.tcp_port == 0 {
        out.push(
            Check::new(Mark::Warn, "ice", "ICE-TCP is off (webrtc.tcp_port = 0)").hint(
                "viewers behind UDP-blocking firewalls or the tunnel cannot connect; \
                 set webrtc.tcp_port = 8190",
            ),
        );
    }
    for h in &w.additional_hosts {
        if let Ok(ip) = h.host.parse::<IpAddr>()
            && f.interfaces.contains(&ip)
        {
            out.push(
                Check::new(
                    Mark::Warn,
                    "ice",
                    format!("additional host {ip} is also an interface address"),
                )
                .hint("it is advertised once; remove it from webrtc.additional_hosts"),
            );
        }
    }
    for host in &f.unresolved {
        out.push(
            Check::new(
                Mark::Warn,
                "ice",
                format!("ICE server {host} does not resolve"),
            )
            .hint("viewers outside the LAN may fail to connect; check DNS and the name"),
        );
    }
    // The running daemon knows which public names (the tunnel's server
    // among them) it cannot resolve.
    let live: shapes::NetworkFacts = f
        .info
        .as_ref()
        .map(|i| shapes::read(&i["r58"]["webrtc"]))
        .unwrap_or_default();
    for u in &live.unresolved {
        out.push(
            Check::new(
                Mark::Warn,
                "ice",
                format!("public address {} does not resolve", u.host),
            )
            .hint("LAN viewers are served; remote ones get no public candidate until DNS works (r58 retries)"),
        );
    }
    if out.is_empty() {
        let tcp = match w.tcp_port {
            0 => "off".to_string(),
            p => p.to_string(),
        };
        out.push(Check::new(
            Mark::Ok,
            "ice",
            format!(
                "UDP {}, TCP {tcp}, {}, {}",
                w.udp_port,
                plural(w.additional_hosts.len(), "public address"),
                plural(w.ice_servers.len(), "ICE server")
            ),
        ));
    }
    out
}

fn clock(now: u64) -> Check {
    let text = crate::api::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now));
    let shown = format!("{} {} UTC", &text[..10], &text[11..16]);
    if now < CLOCK_FLOOR_UNIX {
        Check::new(Mark::Fail, "clock", format!("reads {shown}, before 2026"))
            .hint("timedatectl status; TLS to the tunnel server needs the right time")
    } else {
        Check::new(Mark::Ok, "clock", shown)
    }
}

fn disk(d: &Disk) -> Check {
    let mib = |b: u64| b / (1 << 20);
    let pct = (d.avail * 100).checked_div(d.total).unwrap_or(0);
    let detail = format!(
        "{} MiB free of {} MiB ({pct}%) on {}",
        mib(d.avail),
        mib(d.total),
        d.path
    );
    let hint = "du -xsh /var/log/journal /data; journalctl --vacuum-size=50M";
    if pct < 5 || d.avail < 64 << 20 {
        Check::new(Mark::Fail, "disk", detail).hint(hint)
    } else if pct < 15 {
        Check::new(Mark::Warn, "disk", detail).hint(hint)
    } else {
        Check::new(Mark::Ok, "disk", detail)
    }
}

fn plural(n: usize, what: &str) -> String {
    match (n, what.ends_with('s')) {
        (1, _) => format!("1 {what}"),
        (n, true) => format!("{n} {what}es"),
        (n, false) => format!("{n} {what}s"),
    }
}

/// `--boot-check` verdict: Some(true/false) once settled, None while waiting.
pub fn boot_verdict(checks: &[Check]) -> Option<bool> {
    let broken = checks
        .iter()
        .any(|c| c.critical && c.mark == Mark::Fail && !c.pending);
    if broken {
        return Some(false);
    }
    (!checks.iter().any(|c| c.pending)).then_some(true)
}

/// The screen: one line per check, hints indented under it, all within
/// 80 columns. `ascii` for terminals without UTF-8.
pub fn render(checks: &[Check], ascii: bool) -> String {
    let failed = checks.iter().filter(|c| c.mark == Mark::Fail).count();
    let mut out = match failed {
        0 => "r58 doctor: no problems found\n".to_string(),
        1 => "r58 doctor: 1 problem\n".to_string(),
        n => format!("r58 doctor: {n} problems\n"),
    };
    for c in checks {
        let mark = match (c.mark, ascii) {
            (Mark::Ok, false) => "✓",
            (Mark::Fail, false) => "✗",
            (Mark::Warn, false) => "!",
            (Mark::Skip, false) => "-",
            (Mark::Ok, true) => "ok",
            (Mark::Fail, true) => "XX",
            (Mark::Warn, true) => "!!",
            (Mark::Skip, true) => "--",
        };
        let lead = format!("{mark:<2} {:<7} ", c.name);
        wrap_into(&mut out, &lead, &c.detail);
        if let Some(h) = &c.hint {
            wrap_into(&mut out, "           hint: ", h);
        }
    }
    out
}

/// Word-wrap `text` after `lead`, continuation lines indented to match.
/// A word longer than a line (a path, an error) is cut, not lost.
fn wrap_into(out: &mut String, lead: &str, text: &str) {
    let indent = lead.chars().count();
    let room = crate::status::WIDTH - indent;
    let pieces = text.split_whitespace().flat_map(|w| {
        let chars: Vec<char> = w.chars().collect();
        chars
            .chunks(room)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
    });
    let mut line = lead.to_string();
    let mut used = 0;
    for word in pieces {
        let len = word.chars().count();
        if used > 0 && used + 1 + len > room {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            used = 0;
        }
        if used > 0 {
            line.push(' ');
            used += 1;
        }
        line.push_str(&word);
        used += len;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn an_idle_publisher_slot_is_not_a_missing_signal() {
        let p = |state: &str, detail: &str, format: &str| {
            json!({"name": "guest1", "r58": {"source": "publisher", "state": state,
                   "detail": detail, "format": format}})
        };
        let waiting = super::path(&p("idle", "waiting for a WHIP publisher", ""));
        assert_eq!(waiting.mark, super::Mark::Ok);
        assert_eq!(waiting.detail, "guest1: waiting for a WHIP publisher");
        let live = super::path(&p("streaming", "", "H264+Opus"));
        assert_eq!(live.detail, "guest1: publisher sending H264+Opus");
    }

    #[test]
    fn an_hdmi_input_says_its_signal_and_what_to_do_without_one() {
        let p = |state: &str, detail: &str, signal: &str| {
            json!({"name": "cam1", "r58": {"source": "hdmi", "state": state, "detail": detail,
                   "signal": signal, "format": "1280x720@30", "encoder": "mpph264enc",
                   "bitrate": 4000000, "frames": 900}})
        };
        let live = super::path(&p("streaming", "", "1920x1080@60"));
        assert_eq!(
            live.detail,
            "cam1: streaming 1280x720@30 from 1920x1080@60 mpph264enc 4000 kbit/s, 900 frames"
        );
        let mut slow = p("starting", "signal 1920x1080@60", "1920x1080@60");
        slow["r58"]["sinceSeconds"] = json!(95);
        let c = super::path(&slow);
        assert_eq!(
            c.detail,
            "cam1: starting for 1m35s: the device is slow or stuck"
        );
        assert!(
            !c.pending,
            "a stuck device must not hold the boot check forever"
        );
        slow["r58"]["sinceSeconds"] = json!(3);
        assert!(super::path(&slow).pending);
        for (detail, hint) in [
            ("no cable", "check the cable"),
            ("cable in, no lock", "try another cable"),
            ("invalid signal 720x240@60", "set it to 1080p"),
            ("no HDMI-RX device", "driver is not loaded"),
            ("opening /dev/video0: Permission denied", "fuser"),
        ] {
            let c = super::path(&p("no_signal", detail, detail));
            assert_eq!(c.mark, super::Mark::Warn, "{detail}");
            assert!(
                c.hint.as_deref().unwrap_or("").contains(hint),
                "{detail}: {:?}",
                c.hint
            );
        }
    }
}
