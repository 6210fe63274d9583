//! `r58 status`: one screen for a technician on an 80-column serial console,
//! read from the running daemon's API. `--json` gives the same facts to
//! scripts. No colour, no box drawing: it must survive any terminal.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::client::get_json;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::shapes::{self, ForwardFacts, NetworkFacts, PathFacts, TunnelFacts};
use crate::vocab::{ForwardState, route};

pub const WIDTH: usize = 80;

pub fn run(cfg: &Config, as_json: bool) -> Result<()> {
    let api = crate::client::loopback(cfg.api.listen);
    let down = |e: Error| {
        Error::new(format!(
            "r58 is not running (no answer from the API on {api}: {e})"
        ))
    };
    let info = get_json(api, route::INFO).map_err(down)?;
    let paths = get_json(api, route::PATHS).map_err(down)?;
    let sessions = get_json(api, route::SESSIONS).map_err(down)?;
    if as_json {
        println!(
            "{}",
            json!({"info": info, "paths": paths["items"], "sessions": sessions["items"]})
        );
    } else {
        print!("{}", render(&info, &paths["items"], api));
        print!("{}", viewers(&sessions["items"]));
    }
    Ok(())
}

/// The screen, every line at most `WIDTH` columns.
pub fn render(info: &Value, items: &Value, api: SocketAddr) -> String {
    let mut out = String::new();
    let up = info["uptimeSeconds"].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "r58 {}   up {}   api {api}\n",
        info["version"].as_str().unwrap_or("?"),
        duration(up)
    ));
    let h: crate::health::Snapshot = shapes::read(&info["r58"]["health"]);
    let verdict = match (h.checked, h.healthy) {
        (true, true) => "healthy".to_string(),
        (true, false) => format!("UNHEALTHY: {}", h.status),
        _ => "starting".to_string(),
    };
    out.push_str(&clip(
        &format!("health {verdict}   watchdog {}", h.watchdog),
        WIDTH,
    ));
    out.push_str("\n\n");
    out.push_str(&format!(
        "{:<10} {:<6} {:<12} {:<9} {:<9} {:>3} {:<10} {:>6} {:>5}\n",
        "PATH", "SOURCE", "SIGNAL", "STATE", "OUTPUT", "FPS", "ENCODER", "KBIT/S", "VIEW"
    ));
    let empty = vec![];
    let items = items.as_array().unwrap_or(&empty);
    let mut notes = Vec::new();
    for it in items {
        let r: PathFacts = shapes::read(&it["r58"]);
        let name = it["name"].as_str().unwrap_or("?");
        let kbps = match r.bitrate {
            0 => "-".to_string(),
            b => (b / 1000).to_string(),
        };
        // The mode when there is one; why there is none is in the notes.
        let signal = match r.signal.as_deref() {
            Some(s) if s.starts_with(|c: char| c.is_ascii_digit()) => short_mode(s),
            Some(_) => "none".into(),
            None => "-".into(),
        };
        let source = match r.source.as_str() {
            "publisher" => "whip",
            "" => "-",
            s => s,
        };
        // Measured, not configured: what viewers actually get.
        let fps = if r.fps > 0.0 {
            format!("{:.0}", r.fps)
        } else {
            "-".into()
        };
        let output = r.format.as_str();
        out.push_str(&format!(
            "{:<10} {:<6} {:<12} {:<9} {:<9} {:>3} {:<10} {:>6} {:>5}\n",
            clip(name, 10),
            clip(source, 6),
            clip(&signal, 12),
            clip(r.state.as_str(), 9),
            clip(output.split('@').next().unwrap_or(output), 9),
            fps,
            clip(r.encoder.as_deref().unwrap_or("-"), 10),
            kbps,
            it["readers"].as_array().map(|a| a.len()).unwrap_or(0)
        ));
        if let Some(d) = &r.detail {
            notes.push(clip(&format!("  {name}: {d}"), WIDTH));
        }
        if let Some(a) = &r.audio {
            notes.push(clip(&format!("  {name}: audio {a}"), WIDTH));
        }
    }
    if items.is_empty() {
        out.push_str("(no paths configured)\n");
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out.push('\n');
    let w = &info["r58"]["webrtc"];
    out.push_str(&if w.is_null() {
        "webrtc starting\n".to_string()
    } else {
        webrtc(&shapes::read(w))
    });
    out.push_str(&tunnel(
        &shapes::read(&info["r58"]["tunnel"]),
        crate::wallclock::unix_now(),
    ));
    out.push_str(&forwards(&shapes::read::<Vec<ForwardFacts>>(
        &info["r58"]["forwards"],
    )));
    out.push_str(&errors(&info["r58"]["errors"]));
    out
}

/// One line per forward (path, relay, state, rate), and its last error
/// under it while it is not forwarding.
fn forwards(list: &[ForwardFacts]) -> String {
    let mut out = String::new();
    for f in list {
        let relay = f
            .url
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let state = match f.state {
            ForwardState::Forwarding => format!(
                "forwarding {}   {:.1} Mbit/s{}",
                duration(f.since_seconds),
                f.bitrate_bps as f64 / 1e6,
                f.rtt_ms
                    .map(|r| format!("   rtt {r} ms"))
                    .unwrap_or_default()
            ),
            ForwardState::Retrying => format!(
                "RETRYING in {}s ({} tries)",
                f.retry_in_seconds.unwrap_or(0),
                f.attempts
            ),
            s => s.as_str().to_string(),
        };
        // The state is what a technician looks for: the relay gives way.
        let room = WIDTH.saturating_sub(8 + f.path.len() + 4 + 3 + state.len());
        out.push_str(&clip(
            &format!(
                "forward {} -> {}   {state}",
                f.path,
                clip(relay, room.max(12))
            ),
            WIDTH,
        ));
        out.push('\n');
        if let (Some(e), false) = (&f.last_error, f.state == ForwardState::Forwarding) {
            out.push_str(&clip(&format!("  {e}"), WIDTH));
            out.push('\n');
        }
    }
    out
}

/// "1920x1080@59.94" in 12 columns: the rate rounded when it must be.
fn short_mode(s: &str) -> String {
    match s.split_once('@') {
        Some((size, hz)) if s.len() > 12 => match hz.parse::<f64>() {
            Ok(f) => format!("{size}@{}", f.round()),
            Err(_) => s.into(),
        },
        _ => s.into(),
    }
}

/// Where media flows: ports, the addresses clients are told, sessions.
fn webrtc(w: &NetworkFacts) -> String {
    let port = |p: u16| match p {
        0 => "off".to_string(),
        p => p.to_string(),
    };
    let plural = |k: usize, one: &str| format!("{k} {one}{}", if k == 1 { "" } else { "s" });
    let mut out = format!(
        "webrtc udp {}   tcp {}   {}, {}\n",
        port(w.udp_port),
        port(w.tcp_port),
        plural(w.viewers, "viewer"),
        plural(w.publishers, "publisher"),
    );
    let hosts = if w.hosts.is_empty() {
        "none (no interface is up)".to_string()
    } else {
        w.hosts.join(" ")
    };
    out.push_str(&clip(&format!("  hosts  {hosts}"), WIDTH));
    out.push('\n');
    for p in &w.public {
        let line = format!(
            "  public {} udp {} tcp {}",
            p.ip,
            port(p.udp_port),
            port(p.tcp_port)
        );
        out.push_str(&clip(&line, WIDTH));
        out.push('\n');
    }
    for u in &w.unresolved {
        let line = format!("  public {} does not resolve: {}", u.host, u.error);
        out.push_str(&clip(&line, WIDTH));
        out.push('\n');
    }
    out
}

/// Viewers at most listed one per line; the rest are counted.
const VIEWER_LINES: usize = 12;

/// One line per viewer: its path, the layer it gets and how its link is.
/// Empty when nobody watches.
fn viewers(sessions: &Value) -> String {
    let list: Vec<(&Value, shapes::ViewerFacts)> = sessions
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| !s["r58"].is_null())
        .map(|s| (s, shapes::read(&s["r58"])))
        .collect();
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nviewers\n");
    for (s, v) in list.iter().take(VIEWER_LINES) {
        let id = s["id"].as_str().unwrap_or("?");
        let over = s["localCandidate"]
            .as_str()
            .and_then(|c| c.split('/').nth(1))
            .unwrap_or("-");
        let est = v
            .estimate_bps
            .map_or("-".into(), |b| format!("{}k", b / 1000));
        let rtt = v.rtt_ms.map_or("-".into(), |r| format!("{r:.0}ms"));
        let loss = v.loss.map_or("-".into(), |l| format!("{:.0}%", l * 100.0));
        let line = format!(
            "  {:<10} {} {:<4} {:<20} {:<3} est {:>5} rtt {:>6} loss {:>4}",
            clip(s["path"].as_str().unwrap_or("?"), 10),
            &id[id.len().saturating_sub(6)..],
            v.rendition,
            clip(&v.format, 20),
            over,
            est,
            rtt,
            loss
        );
        out.push_str(&clip(&line, WIDTH));
        out.push('\n');
    }
    if list.len() > VIEWER_LINES {
        out.push_str(&format!("  … and {} more\n", list.len() - VIEWER_LINES));
    }
    out
}

/// The daemon's last warnings and errors, newest last, times in UTC.
fn errors(e: &Value) -> String {
    let list = e.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nlast warnings and errors (UTC)\n");
    for x in list {
        let t = x["time"].as_u64().unwrap_or(0) % 86400;
        let line = format!(
            "  {:02}:{:02}:{:02} {:<5} {}",
            t / 3600,
            t % 3600 / 60,
            t % 60,
            x["level"].as_str().unwrap_or("?"),
            x["text"].as_str().unwrap_or("")
        );
        out.push_str(&clip(&line, WIDTH));
        out.push('\n');
    }
    out
}

/// The tunnel block: state, server, then one line per proxy.
fn tunnel(t: &TunnelFacts, now: u64) -> String {
    if !t.enabled {
        return "tunnel off\n".into();
    }
    let t = &t.status;
    let since = duration(now.saturating_sub(t.since));
    let rtt = t
        .rtt_ms
        .map(|r| format!("   rtt {r:.0} ms"))
        .unwrap_or_default();
    let state = if t.connected {
        format!("up {since}")
    } else {
        format!("DOWN {since}")
    };
    let wire = match t.wire_text() {
        w if w.is_empty() => w,
        w => format!(", {w}"),
    };
    let mut out = clip(
        &format!(
            "tunnel {state}   {} (tls {}{wire}){rtt}",
            t.server,
            t.tls.as_str()
        ),
        WIDTH,
    );
    out.push('\n');
    for p in &t.proxies {
        let state = match &p.error {
            Some(e) => format!("{}: {e}", p.state.as_str()),
            None => p.state.as_str().to_string(),
        };
        let line = format!(
            "  {:<14} {:<4} {:<21} -> {:<5} {state}",
            clip(&p.name, 14),
            p.kind.as_str(),
            clip(&p.local, 21),
            p.remote_port,
        );
        out.push_str(&clip(&line, WIDTH));
        out.push('\n');
    }
    if let Some(e) = &t.last_error {
        out.push_str(&clip(&format!("  last error: {e}"), WIDTH));
        out.push('\n');
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('~');
        c
    }
}

pub fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_screen_fits_80_columns() {
        let info = json!({"version": "0.1.0", "uptimeSeconds": 7385,
            "r58": {"health": {"checked": true, "healthy": true, "watchdog": "systemd (30 s)"},
                    "webrtc": {"udpPort": 8189, "tcpPort": 8190, "viewers": 2, "publishers": 1,
                               "hosts": ["192.168.1.50", "100.101.102.103"],
                               "public": [{"ip": "65.109.32.111", "udpPort": 0, "tcpPort": 18190}]},
                    "errors": [{"time": 1_764_000_000u64 + 3723, "level": "WARN",
                                "text": "cam1: no frame for 15 s while the source is present; restarting the pipeline (attempt 3)"}]}});
        let items = json!([
            {"name": "cam0", "source": {"id": "hdmi"}, "readers": [{"id": "a"}, {"id": "b"}],
             "r58": {"source": "hdmi", "state": "streaming", "format": "1280x720@30", "encoder": "mpph264enc", "bitrate": 4000000,
                     "signal": "1920x1080@59.94", "fps": 29.8}},
            {"name": "speaker_program_long", "source": null, "readers": [],
             "r58": {"source": "hdmi", "state": "no_signal", "format": "1280x720@30", "encoder": "mpph264enc", "bitrate": 2000000,
                     "signal": "no HDMI-RX device",
                     "detail": "no HDMI-RX device; checked /sys/class/video4linux for stream_hdmirx and found nothing at all"}},
            {"name": "guest1", "source": null, "readers": [],
             "r58": {"source": "publisher", "state": "idle", "format": "", "bitrate": 0,
                     "detail": "waiting for a WHIP publisher"}}
        ]);
        let screen = render(&info, &items, "127.0.0.1:9997".parse().unwrap());
        let want = "\
r58 0.1.0   up 2h03m   api 127.0.0.1:9997
health healthy   watchdog systemd (30 s)

PATH       SOURCE SIGNAL       STATE     OUTPUT    FPS ENCODER    KBIT/S  VIEW
cam0       hdmi   1920x1080@60 streaming 1280x720   30 mpph264enc   4000     2
speaker_p~ hdmi   none         no_signal 1280x720    - mpph264enc   2000     0
guest1     whip   -            idle                  - -               -     0

  speaker_program_long: no HDMI-RX device; checked /sys/class/video4linux for s~
  guest1: waiting for a WHIP publisher

webrtc udp 8189   tcp 8190   2 viewers, 1 publisher
  hosts  192.168.1.50 100.101.102.103
  public 65.109.32.111 udp off tcp 18190
tunnel off

last warnings and errors (UTC)
  17:02:03 WARN  cam1: no frame for 15 s while the source is present; restartin~
";
        assert_eq!(screen, want);
        assert!(screen.lines().all(|l| l.chars().count() <= WIDTH));
    }

    #[test]
    fn one_line_per_forward_and_its_error_while_it_retries() {
        let list: Vec<ForwardFacts> = shapes::read(&json!([
            {"path": "cam0", "url": "https://vps.example.no/cam0/whip", "state": "forwarding",
             "sinceSeconds": 302, "bitrateBps": 2_104_000, "rttMs": 23},
            {"path": "cam1", "url": "https://a-very-long-relay-name.example.no:8443/live/cam1/whip?…",
             "state": "retrying", "retryInSeconds": 8, "attempts": 3,
             "lastError": "HTTP 401: wrong or missing token: bad token"},
        ]));
        let screen = forwards(&list);
        // The relay gives way, never the state.
        let want = [
            "forward cam0 -> vps.example.no/cam0~   forwarding 5m02s   2.1 Mbit/s   rtt 23 ms",
            "forward cam1 -> a-very-long-relay-name.example.no:84~   RETRYING in 8s (3 tries)",
            "  HTTP 401: wrong or missing token: bad token",
        ];
        assert_eq!(screen.lines().collect::<Vec<_>>(), want);
        assert!(
            screen.lines().all(|l| l.chars().count() <= WIDTH),
            "{screen}"
        );
    }

    #[test]
    fn tunnel_block_fits_and_explains() {
        let t = json!({"enabled": true, "server": "vps.example.net:7000", "tls": "pinned",
            "connected": false, "since": 1000, "rttMs": null,
            "lastError": "frps refused the login: token in login doesn't match token from configuration",
            "proxies": [
                {"name": "ssh", "type": "tcp", "local": "127.0.0.1:22", "remotePort": 10022,
                 "state": "running", "error": null},
                {"name": "r58-ice-tcp", "type": "tcp", "local": "127.0.0.1:8190",
                 "remotePort": 18190, "state": "rejected", "error": "port already used"}]});
        let screen = tunnel(&shapes::read(&t), 1090);
        assert_eq!(
            screen,
            "\
tunnel DOWN 1m30s   vps.example.net:7000 (tls pinned)
  ssh            tcp  127.0.0.1:22          -> 10022 running
  r58-ice-tcp    tcp  127.0.0.1:8190        -> 18190 rejected: port already used
  last error: frps refused the login: token in login doesn't match token from c~
"
        );
        assert!(screen.lines().all(|l| l.chars().count() <= WIDTH));
        assert_eq!(
            tunnel(&shapes::read(&json!({"enabled": false})), 0),
            "tunnel off\n"
        );
        let up = json!({"enabled": true, "server": "vps.example.net:7000", "tls": "pinned",
            "connected": true, "since": 1000, "rttMs": 3.2, "wire": "v2", "aead": "aes-256-gcm"});
        assert_eq!(
            tunnel(&shapes::read(&up), 1090),
            "tunnel up 1m30s   vps.example.net:7000 (tls pinned, v2 aes-256-gcm)   rtt 3 ms\n"
        );
    }

    #[test]
    fn one_line_per_viewer_with_its_layer_and_link() {
        let s = json!([
            {"id": "00000000000000a3", "path": "cam0", "localCandidate": "host/udp/10.0.0.2/8189",
             "r58": {"layer": 1, "rendition": "r1", "format": "640x360 500 kbit/s",
                     "estimateBps": 612000, "rttMs": 41.7, "loss": 0.02}},
            {"id": "00000000000000a4", "path": "cam0", "localCandidate": "host/tcp/10.0.0.2/8190",
             "r58": {"layer": 0, "rendition": "main", "format": "1280x720 2500 kbit/s"}},
            {"id": "00000000000000a5", "path": "guest1", "state": "publish", "r58": null}
        ]);
        let screen = viewers(&s);
        assert_eq!(
            screen,
            "
viewers
  cam0       0000a3 r1   640x360 500 kbit/s   udp est  612k rtt   42ms loss   2%
  cam0       0000a4 main 1280x720 2500 kbit/s tcp est     - rtt      - loss    -
"
        );
        assert!(screen.lines().all(|l| l.chars().count() <= WIDTH));
        assert_eq!(viewers(&json!([])), "");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m05s");
        assert_eq!(duration(90000), "1d01h");
    }
}
