//! `r58 support-bundle FILE.tar.gz`: everything the office needs to
//! diagnose a box, in one file a technician can send: the config with
//! secrets redacted, status JSON, the doctor's screen, recent logs,
//! versions, V4L2 devices and board facts. Secrets are redacted from every
//! file, not only the config, since logs and status may quote config lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::client;
use crate::config::{Config, Source};
use crate::error::{Context, Result};
use crate::vocab::route;

/// Keys whose values never leave the box.
const SECRET_KEYS: &[&str] = &[
    "secret",
    "credential",
    "token",
    "password",
    "auth_token",
    "privilege_key",
];

pub fn write(config_file: &Path, out: &Path) -> Result<()> {
    let stage = std::env::temp_dir().join(format!("r58-support-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).with_context(|| format!("creating {}", stage.display()))?;
    let result = collect(config_file, &stage).and_then(|names| {
        pack(&stage, out, &names)?;
        Ok(names)
    });
    let _ = std::fs::remove_dir_all(&stage);
    let names = result?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({} KiB): {}",
        out.display(),
        size.div_ceil(1024),
        names.join(" ")
    );
    Ok(())
}

fn collect(config_file: &Path, stage: &Path) -> Result<Vec<String>> {
    let mut files: Vec<(&str, String)> = Vec::new();
    let config_text = std::fs::read_to_string(config_file)
        .unwrap_or_else(|e| format!("# {}: {e}\n", config_file.display()));
    files.push(("config.toml", config_text));
    let cfg = Config::load(config_file).unwrap_or_default();
    let api = client::loopback(cfg.api.listen);
    let status = [route::INFO, route::PATHS, route::SESSIONS]
        .iter()
        .map(|p| {
            let v = client::get_json(api, p)
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
            format!("\"{p}\": {v}")
        })
        .collect::<Vec<_>>()
        .join(",\n");
    files.push(("status.json", format!("{{\n{status}\n}}\n")));
    files.push(("doctor.txt", crate::doctor::report(config_file, true)));
    files.push((
        "journal.txt",
        run(
            "journalctl",
            &[
                "-u",
                "r58",
                "-b",
                "--no-pager",
                "-n",
                "3000",
                "-o",
                "short-iso",
            ],
        ),
    ));
    let mut versions = format!("r58 {}\n", env!("CARGO_PKG_VERSION"));
    versions += &run("uname", &["-a"]);
    versions += &std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    versions += &run("gst-inspect-1.0", &["--version"]);
    versions += &run("gst-inspect-1.0", &["mpph264enc"])
        .lines()
        .take(12)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    files.push(("versions.txt", versions));
    files.push(("v4l2.txt", v4l2_facts(&cfg)));
    files.push(("board.txt", board_facts()));
    let mut names = Vec::new();
    for (name, text) in files {
        let p = stage.join(name);
        std::fs::write(&p, redact(&text)).with_context(|| format!("writing {}", p.display()))?;
        names.push(name.to_string());
    }
    Ok(names)
}

fn pack(stage: &Path, out: &Path, names: &[String]) -> Result<()> {
    let out_abs: PathBuf = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(out)
    };
    let o = Command::new("tar")
        .arg("czf")
        .arg(&out_abs)
        .arg("-C")
        .arg(stage)
        .args(names)
        .output()
        .context("running tar")?;
    if !o.status.success() {
        return Err(crate::error::Error::new(format!(
            "writing {}: {}",
            out.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// A command's output, or a line saying why there is none.
fn run(cmd: &str, args: &[&str]) -> String {
    match Command::new(cmd).args(args).output() {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s += &String::from_utf8_lossy(&o.stderr);
            s
        }
        Err(e) => format!("({cmd}: {e})\n"),
    }
}

fn v4l2_facts(cfg: &Config) -> String {
    let mut out = String::new();
    let devs = crate::media::source::Sysfs::default();
    for (name, p) in cfg.paths.iter().filter(|(_, p)| p.source == Source::Hdmi) {
        out += &crate::media::hdmi::inspect(name, p, &devs);
    }
    // The drivers' last words about the inputs (locks, resets, bridges).
    let dmesg = run("dmesg", &[]);
    let lines: Vec<&str> = dmesg
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            ["hdmirx", "lt6911", "rkcif"].iter().any(|k| l.contains(k))
        })
        .collect();
    for l in &lines[lines.len().saturating_sub(80)..] {
        out += l;
        out.push('\n');
    }
    if let Ok(rd) = std::fs::read_dir("/sys/class/video4linux") {
        let mut nodes: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        nodes.sort();
        for n in nodes {
            let name = std::fs::read_to_string(n.join("name")).unwrap_or_default();
            out += &format!(
                "{}: {}\n",
                n.file_name().unwrap_or_default().to_string_lossy(),
                name.trim()
            );
        }
    }
    out + &run("v4l2-ctl", &["--list-devices"])
}

fn board_facts() -> String {
    let b = crate::board::detect(Path::new("/"));
    let mut out = format!("model: {}\nrk3588: {}\n", b.model, b.rk3588);
    for f in [
        "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor",
        "/sys/devices/system/cpu/cpufreq/policy4/scaling_governor",
        "/sys/class/watchdog/watchdog0/identity",
        "/sys/class/watchdog/watchdog0/bootstatus",
        "/sys/class/watchdog/watchdog0/timeout",
    ] {
        if let Ok(v) = std::fs::read_to_string(f) {
            out += &format!("{f}: {}\n", v.trim());
        }
    }
    out
}

/// Replace the value of every `key = "..."` (or `'...'`, or `key: value`
/// in YAML/INI-ish logs) whose key names a secret.
pub fn redact(text: &str) -> String {
    text.lines().map(redact_line).collect::<Vec<_>>().join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

fn redact_line(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let mut out = String::new();
    let mut rest_at = 0;
    let mut search = 0;
    while let Some((pos, key)) = SECRET_KEYS
        .iter()
        .filter_map(|k| lower[search..].find(k).map(|p| (search + p, *k)))
        .min()
    {
        let after = pos + key.len();
        let tail = &line[after..];
        let sep = tail.len() - tail.trim_start().len();
        let Some(op) = tail[sep..]
            .chars()
            .next()
            .filter(|c| *c == '=' || *c == ':')
        else {
            search = after;
            continue;
        };
        let value_at = after + sep + op.len_utf8();
        let value = &line[value_at..];
        let lead = value.len() - value.trim_start().len();
        let v = &value[lead..];
        let len = match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].find(q).map(|e| e + 2).unwrap_or(v.len()),
            _ => v.find([',', '}', ' ']).unwrap_or(v.len()),
        };
        if len == 0 {
            search = after;
            continue;
        }
        out.push_str(&line[rest_at..value_at + lead]);
        out.push_str("\"<redacted>\"");
        rest_at = value_at + lead + len;
        search = rest_at;
    }
    out.push_str(&line[rest_at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_redacted_in_every_shape() {
        let t = "\
ice_servers = [{ urls = \"turn:x\", secret = \"s3cr3t\", user = \"r58\" }]
credential='pa55'
[tunnel]
token = \"tok-123\"
auth.token: tok-yaml
webrtcICEServers2: [{username: u, password: hunter2}]
tokens_left = 5
";
        let r = redact(t);
        for s in ["s3cr3t", "pa55", "tok-123", "tok-yaml", "hunter2"] {
            assert!(!r.contains(s), "{s} leaked:\n{r}");
        }
        assert!(r.contains("user = \"r58\" }]"), "{r}");
        assert!(r.contains("urls = \"turn:x\""), "{r}");
        assert!(r.contains("tokens_left = 5"), "not a secret key: {r}");
        assert!(r.ends_with('\n'));
    }
}
