//! Runs `tests/browser/view.mjs` (headless Chromium via playwright-core) and
//! returns what it printed: per viewer, frames decoded and the WebRTC stats.

use std::path::Path;
use std::process::Command;

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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && Path::new("/usr/bin/chromium").exists(),
        "browser tests need Chromium and playwright-core: run `make test` (it installs both)"
    );
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "node"]);
            c
        }
        None => Command::new("node"),
    };
    let out = cmd
        .current_dir(&dir)
        .args(["view.mjs", base, path])
        .arg(viewers.to_string())
        .arg(secs.to_string())
        .envs(env.iter().copied())
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "view.mjs failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .map_err(|e| format!("view.mjs printed no JSON ({e}):\n{stdout}"))
}

/// Frames one viewer decoded during the measured window.
pub fn decoded(v: &serde_json::Value) -> u64 {
    v["after"].as_u64().unwrap_or(0) - v["before"].as_u64().unwrap_or(0)
}
