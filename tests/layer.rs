//! meta-r58, checked offline: the generated crates list matches Cargo.lock,
//! the recipe matches the crate (version, license checksum, units, pinned
//! source), and the image, wks, RAUC system.conf and bundle agree on slot
//! names and the compatible string. `make lint-layer` runs oelint-adv.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The value of `VAR = "..."` (first assignment, one line).
fn var(text: &str, name: &str) -> String {
    let prefix = format!("{name} = \"");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{name} not set"))
        .to_string()
}

const RECIPE: &str = concat!(
    "meta-r58/recipes-multimedia/r58/r58_",
    env!("CARGO_PKG_VERSION"),
    ".bb"
);

#[test]
fn crates_inc_matches_cargo_lock_and_the_check_catches_drift() {
    let script = repo().join("meta-r58/scripts/crates-inc");
    let o = Command::new(&script).arg("--check").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inc = read("meta-r58/recipes-multimedia/r58/r58-crates.inc");
    let lock = read("Cargo.lock");
    for needed in [
        "crate://crates.io/str0m/0.25.0",
        "crate://crates.io/gstreamer/",
    ] {
        assert!(inc.contains(needed), "crates.inc lacks {needed}");
    }
    assert!(
        !inc.contains("crates.io/r58/"),
        "the crate itself is not fetched"
    );
    // A lock with one more crate must make --check fail.
    let dir = std::env::temp_dir().join(format!("r58-layer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let drifted = dir.join("Cargo.lock");
    std::fs::write(
        &drifted,
        format!(
            "{lock}\n[[package]]\nname = \"itoa\"\nversion = \"1.0.15\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
             checksum = \"4a5f13b858c8d314ee3e8f639011f7ccefe71f97f96e50151fb991f267928e2c\"\n"
        ),
    )
    .unwrap();
    let o = Command::new(&script)
        .arg("--check")
        .arg(&drifted)
        .arg(repo().join("meta-r58/recipes-multimedia/r58/r58-crates.inc"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("make crates-inc"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn recipe_matches_the_crate() {
    let bb = read(RECIPE); // named after Cargo.toml's version
    assert!(bb.contains("require ${BPN}-crates.inc"));
    assert!(bb.contains("inherit cargo cargo-update-recipe-crates pkgconfig systemd"));
    // The license checksum is of the Cargo.toml lines it names.
    let lic = var(&bb, "LIC_FILES_CHKSUM");
    let param = |key: &str| -> usize {
        let v = lic.split(&format!("{key}=")).nth(1).expect(key);
        v.split(';').next().unwrap().parse().expect(key)
    };
    let (begin, end) = (param("beginline"), param("endline"));
    let md5 = lic.split("md5=").nth(1).unwrap();
    let lines: String = read("Cargo.toml")
        .split_inclusive('\n')
        .skip(begin - 1)
        .take(end - begin + 1)
        .collect();
    assert!(lines.contains("license = \"MIT OR Apache-2.0\""), "{lines}");
    assert!(var(&bb, "LICENSE") == "MIT | Apache-2.0");
    let o = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(lines.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).split(' ').next(),
        Some(md5)
    );
    // Every unit the recipe enables is in board/.
    for unit in var(&bb, "SYSTEMD_SERVICE:${PN}").split_whitespace() {
        assert!(repo().join("board/systemd").join(unit).is_file(), "{unit}");
    }
    assert!(bb.contains("RRECOMMENDS:${PN} = \"${R58_HW_ENCODER}"));
    assert_eq!(
        var(&read("meta-r58/conf/machine/r58x.conf"), "R58_HW_ENCODER"),
        "gstreamer1.0-rockchip"
    );
}

#[test]
fn the_pinned_source_has_this_lock_file_and_install_target() {
    let srcrev = var(&read(RECIPE), "SRCREV");
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(repo())
            .args(args)
            .output()
            .unwrap()
    };
    if !git(&["cat-file", "-e", &format!("{srcrev}^{{commit}}")])
        .status
        .success()
    {
        let shallow = git(&["rev-parse", "--is-shallow-repository"]);
        assert_eq!(
            String::from_utf8_lossy(&shallow.stdout).trim(),
            "true",
            "SRCREV {srcrev} is not a commit of this repository"
        );
        eprintln!("shallow clone without {srcrev}: pinned-source check not possible here");
        return;
    }
    let at = |file: &str| git(&["show", &format!("{srcrev}:{file}")]).stdout;
    assert_eq!(
        at("Cargo.lock"),
        read("Cargo.lock").into_bytes(),
        "Cargo.lock changed since SRCREV {srcrev}: bump SRCREV with the crates list"
    );
    assert!(String::from_utf8_lossy(&at("Makefile")).contains("\ninstall-board:"));
}

#[test]
fn image_wks_rauc_and_bundle_agree() {
    let layer = read("meta-r58/conf/layer.conf");
    assert!(layer.contains("LAYERSERIES_COMPAT_r58 = \"wrynose\""));
    let system = read("board/rauc/system.conf");
    // The layer's copy is the board file itself.
    assert_eq!(
        read("meta-r58/dynamic-layers/rauc/recipes-core/rauc/files/system.conf"),
        system
    );
    let machine = read("meta-r58/conf/machine/r58x.conf");
    let wks_name = var(&machine, "WKS_FILE");
    let wks = read(&format!("meta-r58/files/wic/{wks_name}"));
    for slot in system
        .lines()
        .filter_map(|l| l.strip_prefix("device=/dev/disk/by-partlabel/"))
    {
        assert!(
            wks.contains(&format!("--part-name {slot} ")),
            "system.conf slot {slot} has no partition in {wks_name}"
        );
    }
    assert!(system.contains("data-directory=/data/") && wks.contains("part /data "));
    let compatible = system
        .lines()
        .find_map(|l| l.strip_prefix("compatible="))
        .unwrap();
    let bundle = read("meta-r58/dynamic-layers/rauc/recipes-core/bundles/r58-bundle_1.0.bb");
    assert_eq!(var(&bundle, "RAUC_BUNDLE_COMPATIBLE"), compatible);
    assert_eq!(var(&bundle, "RAUC_SLOT_rootfs"), "r58-image");
    assert!(read("meta-r58/recipes-core/images/r58-image.bb").contains("packagegroup-r58"));
    assert!(
        read("meta-r58/recipes-core/packagegroups/packagegroup-r58.bb")
            .contains("RDEPENDS:${PN} = \"r58 ")
    );
}
