//! Runs `tests/browser/view.mjs` (headless Chromium via playwright-core) and
//! returns what it printed: per viewer, frames decoded and the WebRTC stats.

use std::path::Path;
use std::process::Command;

/// Repeated joins in one Chromium page (`ttff.mjs`): milliseconds from
/// WHEP POST to first decoded frame, sorted; empty when nothing ran.
pub fn time_to_first_frame(base: &str, path: &str, joins: usize, netns: Option<&str>) -> Vec<u64> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let out = node(netns)
        .current_dir(&dir)
        .args(["ttff.mjs", base, path])
        .arg(joins.to_string())
        .output();
    let Ok(out) = out else { return vec![] };
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_default();
    let mut ms: Vec<u64> = v["ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    ms.sort();
    ms
}

/// "p50 … ms   p95 … ms   min … ms   max … ms" for sorted samples.
pub fn summary(sorted: &[u64]) -> String {
    if sorted.is_empty() {
        return "no samples (is Chromium installed? run `make bench`)".into();
    }
    let pct = |p| super::percentile(sorted, p);
    format!(
        "p50 {} ms   p95 {} ms   min {} ms   max {} ms",
        pct(50),
        pct(95),
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

/// `node`, inside `netns` when given.
fn node(netns: Option<&str>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "node"]);
            c
        }
        None => Command::new("node"),
    }
}

/// Open `viewers` pages of `base/path/` for `secs` seconds. `netns` runs
/// the browser inside that namespace; `env` adds variables (VIEW_QUERY, …).
pub fn view(
    base: &str,
    path: &str,
    viewers: usize,
    secs: u32,
    env: &[(&str, &str)],
    netns: Option<&str>,
) -> Result<serde_json::Value, String> {
    let (n, s) = (viewers.to_string(), secs.to_string());
    script("view.mjs", &[base, path, &n, &s], env, netns)
}

/// Run `tests/browser/SCRIPT ARGS…` and parse the JSON line it prints last.
pub fn script(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    netns: Option<&str>,
) -> Result<serde_json::Value, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && Path::new("/usr/bin/chromium").exists(),
        "browser tests need Chromium and playwright-core: run `make test` (it installs both)"
    );
    let out = node(netns)
        .current_dir(&dir)
        .arg(name)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{name} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .map_err(|e| format!("{name} printed no JSON ({e}):\n{stdout}"))
}

/// Frames one viewer decoded during the measured window.
pub fn decoded(v: &serde_json::Value) -> u64 {
    v["after"].as_u64().unwrap_or(0) - v["before"].as_u64().unwrap_or(0)
}
