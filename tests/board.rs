//! `board/`: the files that go onto the device. The default config must
//! load, the units must be ones systemd accepts without a warning, and
//! `make install` must put everything where the units and r58 look.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("r58-board-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn default_device_config_checks_and_captures_hdmi() {
    let o = support::r58_command()
        .args(["config", "check"])
        .arg(repo().join("board/r58.toml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("path cam0") && out.contains("hdmi"), "{out}");
    // cam0 loads the EDID from where the install puts it (see the layout test).
    assert!(
        out.contains("input stream_hdmirx (by name), EDID /usr/share/r58/edid/r58-1080p60.bin"),
        "{out}"
    );
}

#[test]
fn systemd_accepts_the_unit_without_warnings() {
    let unit = std::fs::read_to_string(repo().join("board/systemd/r58.service")).unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=/dev/watchdog0 rw",
    ] {
        assert!(unit.contains(needed), "r58.service lacks {needed}");
    }
    let check =
        std::fs::read_to_string(repo().join("board/systemd/r58-boot-check.service")).unwrap();
    for needed in [
        "Before=boot-complete.target",
        "RequiredBy=boot-complete.target",
        "ExecStart=/usr/bin/r58 doctor --boot-check",
    ] {
        assert!(
            check.contains(needed),
            "r58-boot-check.service lacks {needed}"
        );
    }
    // systemd-analyze wants the ExecStart binary to exist: point it at ours.
    let dir = scratch("unit");
    let bin = support::bin();
    for (name, text) in [("r58.service", &unit), ("r58-boot-check.service", &check)] {
        std::fs::write(
            dir.join(name),
            text.replace("/usr/bin/r58", bin.to_str().unwrap()),
        )
        .unwrap();
    }
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("r58.service"))
        .arg(dir.join("r58-boot-check.service"))
        .output()
        .expect("systemd-analyze (package systemd)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.trim().is_empty(),
        "systemd-analyze verify:\n{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_edid_is_conformant_and_rebuilt_from_its_script() {
    let edid = repo().join("board/edid/r58-1080p60.bin");
    let o = Command::new("edid-decode")
        .arg("--check")
        .arg(&edid)
        .output()
        .expect("edid-decode (package edid-decode)");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("EDID conformity: PASS"), "{out}");
    for mode in [
        "DTD 1:  1920x1080   60.000000 Hz",
        "VIC  31:  1920x1080   50",
        "VIC   4:  1280x720",
    ] {
        assert!(out.contains(mode), "EDID lacks {mode}:\n{out}");
    }
    let dir = scratch("edid");
    let fresh = dir.join("fresh.bin");
    let o = Command::new(repo().join("board/edid/mkedid"))
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&fresh).unwrap(),
        std::fs::read(&edid).unwrap(),
        "board/edid/r58-1080p60.bin differs from what mkedid builds: rerun it"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn make_install_puts_files_where_they_are_used() {
    let dest = scratch("install");
    let o = Command::new("make")
        .current_dir(repo())
        .args(["-s", "install"])
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("BIN={}", support::bin().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "usr/bin/r58",
        "etc/r58/r58.toml",
        "usr/lib/systemd/system/r58.service",
        "usr/lib/systemd/system/r58-boot-check.service",
        "usr/share/r58/edid/r58-1080p60.bin",
        "usr/lib/systemd/system/serial-getty@ttyFIQ0.service.d/r58-baud.conf",
        "usr/lib/udev/rules.d/90-r58-hdmirx.rules",
    ] {
        assert!(dest.join(f).is_file(), "{f} not installed");
    }
    // RAUC's slots describe meta-r58's disk layout, not a vendor image's:
    // rauc-conf installs them in the R58 image, make install does not.
    assert!(!dest.join("etc/rauc").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dest.join("usr/bin/r58"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    std::fs::remove_dir_all(dest).unwrap();
}
