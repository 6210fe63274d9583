//! Command line: `r58 run | status | doctor | config check | version`. Output is plain text
//! for an 80-column serial console; errors are one sentence, exit code 1
//! (2 for a usage mistake).

use std::path::PathBuf;

use crate::config::{self, Config};
use crate::error::{Error, Result};

const USAGE: &str = "\
usage: r58 <command>

commands:
  run [--config FILE]     run the daemon (default config /etc/r58/r58.toml)
  status [--json] [--config FILE]
                          what the running daemon is doing, one screen
  doctor [--boot-check] [--timeout SECS] [--ascii] [--config FILE]
                          check the box and say what is wrong, one line per
                          check with a hint; exit code = problems found.
                          --boot-check: wait for r58 to settle, exit 0 only
                          if this A/B slot works (RAUC mark-good)
  board [--tune]          what board this is; --tune sets the RK3588's CPU
                          governor (run as root, before r58 starts)
  support-bundle FILE.tar.gz [--config FILE]
                          config (secrets redacted), status, doctor, logs,
                          versions, V4L2 and board facts, for the office
  config check FILE       validate a config file and print a summary
  config import FILE      print an r58.toml made from a mediamtx.yml; the
                          keys it could not map are listed on stderr
  version                 print the version

`r58 COMMAND --help` shows one command. RUST_LOG sets the log level of `run`
(error, warn, info (default), debug, trace; per module: r58::tunnel=debug).
";

/// The lines of USAGE about one command.
fn usage_of(cmd: &str) -> String {
    let mut out = String::from("usage:\n");
    let mut inside = false;
    for line in USAGE.lines().skip(3) {
        if line.is_empty() {
            break;
        }
        let starts = line.starts_with(&format!("  {cmd}"));
        let continued = line.starts_with("        ");
        inside = starts || (inside && continued);
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub enum Usage {
    Help,
    Bad(String),
}

pub fn main(args: Vec<String>) -> i32 {
    let args: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.as_slice() {
        [] => {
            eprint!("{USAGE}");
            return 2;
        }
        [cmd, rest @ ..] if rest.iter().any(|a| *a == "--help" || *a == "-h") => {
            let text = usage_of(cmd);
            if text.lines().count() > 1 {
                print!("{text}");
                return 0;
            }
        }
        _ => {}
    }
    if let ["doctor", rest @ ..] = args.as_slice() {
        return match doctor_args(rest) {
            Ok((file, o)) => crate::doctor::run(&file, &o),
            Err(Usage::Bad(msg)) => {
                eprintln!("error: {msg}\n\n{USAGE}");
                2
            }
            Err(Usage::Help) => {
                print!("{USAGE}");
                0
            }
        };
    }
    match dispatch(&args) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            1
        }
        Err(Usage::Help) => {
            print!("{USAGE}");
            0
        }
        Err(Usage::Bad(msg)) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            2
        }
    }
}

fn dispatch(args: &[&str]) -> Result<Result<()>, Usage> {
    match args {
        [] | ["help"] | ["-h"] | ["--help"] => Err(Usage::Help),
        ["version"] | ["--version"] | ["-V"] => {
            println!("r58 {}", env!("CARGO_PKG_VERSION"));
            Ok(Ok(()))
        }
        ["run", rest @ ..] => {
            let file = match rest {
                [] => PathBuf::from(config::DEFAULT_PATH),
                // A file asked for by name must exist; only the default
                // may be missing (then the built-in defaults run).
                ["--config", f] | ["-c", f] if !std::path::Path::new(f).exists() => {
                    return Ok(Err(Error::new(format!(
                        "{f}: no such file (without --config, r58 runs on {} or built-in defaults)",
                        config::DEFAULT_PATH
                    ))));
                }
                ["--config", f] | ["-c", f] => PathBuf::from(f),
                _ => {
                    return Err(Usage::Bad(format!(
                        "unexpected arguments to run: {}",
                        rest.join(" ")
                    )));
                }
            };
            Ok(run(file))
        }
        ["board", rest @ ..] => {
            let tune = match rest {
                [] => false,
                ["--tune"] => true,
                _ => {
                    return Err(Usage::Bad(format!(
                        "unexpected arguments to board: {}",
                        rest.join(" ")
                    )));
                }
            };
            Ok(board(tune))
        }
        ["support-bundle", out] => Ok(crate::support_bundle::write(
            std::path::Path::new(config::DEFAULT_PATH),
            std::path::Path::new(out),
        )),
        ["support-bundle", out, "--config" | "-c", f] => Ok(crate::support_bundle::write(
            std::path::Path::new(f),
            std::path::Path::new(out),
        )),
        ["support-bundle", ..] => Err(Usage::Bad(
            "usage: r58 support-bundle FILE.tar.gz [--config FILE]".into(),
        )),
        ["config", "check", f] => Ok(check(PathBuf::from(f))),
        ["config", "import", f] => Ok(import(PathBuf::from(f))),
        ["status", rest @ ..] => {
            let (mut json, mut file) = (false, PathBuf::from(config::DEFAULT_PATH));
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match *a {
                    "--json" => json = true,
                    "--config" | "-c" => match it.next() {
                        Some(f) => file = PathBuf::from(f),
                        None => return Err(Usage::Bad("--config needs a FILE".into())),
                    },
                    other => {
                        return Err(Usage::Bad(format!(
                            "unexpected argument to status: {other}"
                        )));
                    }
                }
            }
            Ok(Config::load(&file).and_then(|cfg| crate::status::run(&cfg, json)))
        }
        ["config", ..] => Err(Usage::Bad(
            "usage: r58 config check FILE | r58 config import mediamtx.yml".into(),
        )),
        [other, ..] => Err(Usage::Bad(format!("unknown command '{other}'"))),
    }
}

fn board(tune: bool) -> Result<()> {
    let root = std::path::Path::new("/");
    let b = crate::board::detect(root);
    let model = if b.model.is_empty() {
        "no device tree model"
    } else {
        &b.model
    };
    println!(
        "{model}: {}",
        if b.rk3588 { "RK3588" } else { "not an RK3588" }
    );
    println!(
        "mpph264enc: {}",
        if crate::media::element_installed("mpph264enc") {
            "installed"
        } else {
            "missing"
        }
    );
    if tune && b.rk3588 {
        let changed = crate::board::set_performance_governor(root);
        println!(
            "cpu governor: performance ({} policies changed)",
            changed.len()
        );
    }
    Ok(())
}

fn doctor_args(rest: &[&str]) -> Result<(PathBuf, crate::doctor::Options), Usage> {
    let mut file = PathBuf::from(config::DEFAULT_PATH);
    let mut o = crate::doctor::Options {
        ascii: !crate::doctor::locale_is_utf8(),
        boot_check: false,
        timeout: std::time::Duration::from_secs(90),
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--ascii" => o.ascii = true,
            "--boot-check" => o.boot_check = true,
            "--config" | "-c" => match it.next() {
                Some(f) => file = PathBuf::from(f),
                None => return Err(Usage::Bad("--config needs a FILE".into())),
            },
            "--timeout" => match it.next().and_then(|t| t.parse::<u64>().ok()) {
                Some(t) => o.timeout = std::time::Duration::from_secs(t),
                None => return Err(Usage::Bad("--timeout needs whole SECONDS".into())),
            },
            "-h" | "--help" => return Err(Usage::Help),
            other => {
                return Err(Usage::Bad(format!(
                    "unexpected argument to doctor: {other}"
                )));
            }
        }
    }
    Ok((file, o))
}

fn run(file: PathBuf) -> Result<()> {
    if !file.exists() {
        log::info!("no {}, using built-in defaults", file.display());
    }
    let cfg = Config::load(&file)?;
    crate::daemon::run(cfg)
}

fn import(file: PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::new(format!("reading {}: {e}", file.display())))?;
    let (toml, skipped) = config::import::mediamtx(&text)
        .map_err(|e| Error::new(format!("{}: {e}", file.display())))?;
    print!("{toml}");
    if !skipped.is_empty() {
        eprintln!("not imported ({}):", skipped.len());
        for s in skipped {
            eprintln!("  {s}");
        }
    }
    Ok(())
}

fn check(file: PathBuf) -> Result<()> {
    if !file.exists() {
        return Err(Error::new(format!("{}: no such file", file.display())));
    }
    let cfg = Config::load(&file)?;
    let w = &cfg.webrtc;
    println!("{}: ok", file.display());
    println!(
        "  whep  http://{}   api http://{}",
        cfg.http.listen, cfg.api.listen
    );
    let tcp = match w.tcp_port {
        0 => "ICE-TCP off".to_string(),
        p => format!("tcp/{p}"),
    };
    println!("  media udp/{} {tcp}", w.udp_port);
    for h in &w.additional_hosts {
        let port = |n: Option<u16>, local: u16| match n.unwrap_or(local) {
            0 => "-".to_string(),
            n => n.to_string(),
        };
        // A name that does not resolve is not a config error: r58 starts
        // anyway and keeps trying (the box may boot before DNS works).
        let ip = crate::webrtc::resolve_now(&h.host).map_or_else(
            |e| format!("does not resolve now ({e})"),
            |ip| ip.to_string(),
        );
        println!(
            "  public {} = {ip} udp {} tcp {}",
            h.host,
            port(h.udp_port, w.udp_port),
            port(h.tcp_port, w.tcp_port)
        );
    }
    for (name, p) in &cfg.paths {
        println!(
            "  path {name:<14} {:<9} {}x{}@{} {} kbit/s, gop {}, encoder {}",
            crate::media::source_name(p.source),
            p.width,
            p.height,
            p.fps,
            p.bitrate / 1000,
            p.gop,
            p.encoder
        );
        if p.source == crate::config::Source::Hdmi {
            println!("       input {}", input_line(p));
        }
    }
    for f in &cfg.forward {
        println!("  {}", forward_line(f));
    }
    if let Some(d) = &cfg.watchdog.device {
        println!(
            "  watchdog {} ({} s) when not under systemd",
            d.display(),
            cfg.watchdog.timeout_secs
        );
    }
    if let Some(led) = &cfg.leds.status {
        println!("  status LED {}", cfg.leds.sysfs.join(led).display());
    }
    match cfg.tunnel_settings() {
        Ok(None) => {}
        Ok(Some((t, warnings))) => {
            println!(
                "  tunnel to {}:{} (tls {}, {}, wire {})",
                t.server_addr,
                t.server_port,
                crate::tunnel::tls_mode(&t).as_str(),
                if t.tcp_mux { "mux" } else { "no mux" },
                t.wire.as_str()
            );
            for p in &t.proxies {
                println!(
                    "    {} {} {}:{} -> {}",
                    p.name,
                    p.kind.as_str(),
                    p.local_ip,
                    p.local_port,
                    p.remote_port
                );
            }
            for w in warnings {
                println!("  warning: {w}");
            }
        }
        Err(e) => return Err(Error::new(format!("[tunnel]: {e}"))),
    }
    Ok(())
}

/// One `[[forward]]` for `config check`: where to, whether a token goes
/// with it (never the token), and a name that does not resolve yet.
fn forward_line(f: &crate::config::forward::Forward) -> String {
    let url = crate::forward::shown(&f.url);
    let mut line = format!("forward {} -> {url}", f.path);
    let Ok(u) = crate::config::forward::Url::parse(&f.url) else {
        return line; // Config::load refused it already
    };
    line += match (&f.token, u.https) {
        (Some(_), true) => " (token set)",
        (Some(_), false) => " (token set; sent in clear over http)",
        (None, _) => " (no token)",
    };
    // Like public hosts: the box may boot before DNS works, so a name
    // that does not resolve now is said, not refused.
    if let Err(e) = crate::webrtc::resolve_now(&u.host) {
        line += &format!("; {} does not resolve now ({e})", u.host);
    }
    line
}

/// Where an HDMI path's picture comes from, for `config check`.
fn input_line(p: &crate::config::PathConfig) -> String {
    let node = p.device.as_deref().unwrap_or("stream_hdmirx (by name)");
    match (&p.subdev, &p.edid) {
        (Some(sd), _) => format!(
            "LT6911 bridge: {node}, signal from {sd}, {}",
            p.pixel_format
                .as_deref()
                .unwrap_or(crate::media::hdmi::BRIDGE_FORMAT)
        ),
        (None, Some(e)) => format!(
            "{node}, EDID {}{}",
            e.display(),
            if e.exists() {
                ""
            } else {
                " (not on this host)"
            }
        ),
        (None, None) => format!("{node}, the driver's own EDID"),
    }
}
