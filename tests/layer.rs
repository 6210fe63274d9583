//! meta-r58, checked offline: the generated crates list matches Cargo.lock,
//! the recipe matches the crate (version, license checksum, units, pinned
//! source), and the A/B layout's files agree (scripts/ablayout.py, which is
//! shown to catch a disagreement). `make lint-layer` runs oelint-adv;
//! `make boot-test` runs the boot script in U-Boot; `.ci/run` parses the
//! layer with bitbake against the real upstream layers.

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
    assert!(bb.contains("RRECOMMENDS:${PN} = \"gstreamer1.0-plugins-ugly-x264"));
    // The R58 gets the MPP plugin, and x264 for real, through the packagegroup.
    let group = read("meta-r58/recipes-core/packagegroups/packagegroup-r58.bb");
    assert!(group.contains("RDEPENDS:${PN}:append:r58x = \" gstreamer1.0-rockchip\""));
    assert!(group.contains("RDEPENDS:${PN} = \"gstreamer1.0-plugins-ugly-x264 r58 "));
    // The source is the repository that holds the layer, not a made-up URL.
    assert!(bb.contains("R58_GIT_URL ??= \"git://${R58_REPO_DIR};protocol=file\""));
    assert!(read("meta-r58/conf/layer.conf").contains("R58_REPO_DIR := "));
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

fn ablayout(layer: &Path) -> std::process::Output {
    Command::new("python3")
        .arg(repo().join("meta-r58/scripts/ablayout.py"))
        .arg(layer)
        .output()
        .unwrap()
}

/// A copy of the layer's files that ablayout reads, with one edit.
fn edited_layer(name: &str, file: &str, from: &str, to: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("r58-ablayout-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = Command::new("cp")
        .arg("-r")
        .arg(repo().join("meta-r58"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(o.success());
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
}

#[test]
fn the_ab_layout_agrees_and_the_check_catches_each_kind_of_drift() {
    let o = ablayout(&repo().join("meta-r58"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cases = [
        (
            "env",
            "recipes-bsp/u-boot/files/fw_env.config",
            "0x8000",
            "0x4000",
            "fw_env.config",
        ),
        (
            "slot",
            "dynamic-layers/rauc/recipes-core/rauc/files/system.conf",
            "by-partlabel/rootfs_b",
            "by-partlabel/rootfs_c",
            "rootfs_c",
        ),
        (
            "script",
            "recipes-bsp/r58-boot/files/boot.cmd",
            "setenv r58_label rootfs_b",
            "setenv r58_label rootfsB",
            "boot script",
        ),
        (
            "bundle",
            "dynamic-layers/rauc/recipes-core/bundles/r58-bundle_1.0.bb",
            "[fstype] = \"ext4\"",
            "[fstype] = \"squashfs\"",
            "IMAGE_FSTYPES",
        ),
        (
            "offset",
            "files/wic/r58-ab.wks.in",
            "--offset 4064K",
            "--offset 4096K",
            "CONFIG_ENV_OFFSET",
        ),
        (
            "uboot",
            "files/wic/r58-ab.wks.in",
            "--part-name loader2 --offset 8M",
            "--part-name loader2 --offset 9M",
            "u-boot.itb",
        ),
    ];
    for (name, file, from, to, said) in cases {
        let dir = edited_layer(name, file, from, to);
        let o = ablayout(&dir);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(said), "{name}: {err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn the_image_has_what_the_box_needs() {
    let layer = read("meta-r58/conf/layer.conf");
    assert!(layer.contains("LAYERSERIES_COMPAT_r58 = \"wrynose\""));
    assert!(layer.contains("LAYERDEPENDS_r58 = \"core\""));
    let image = read("meta-r58/recipes-core/images/r58-image.bb");
    assert!(image.contains("packagegroup-r58"));
    assert!(image.contains("bbfatal \"r58-image: no way in for the technician"));
    assert!(image.contains(
        "virtual/bootloader:do_deploy virtual/kernel:do_deploy r58-bootscript:do_deploy"
    ));
    let distro = read("meta-r58/conf/distro/r58.conf");
    assert!(distro.contains("DISTRO_FEATURES_OPTED_OUT += \"x11 wayland opengl vulkan"));
    // A real file in the layer (a symlink dangles in any copy of it).
    let system = repo().join("meta-r58/dynamic-layers/rauc/recipes-core/rauc/files/system.conf");
    assert!(
        std::fs::symlink_metadata(system)
            .unwrap()
            .file_type()
            .is_file()
    );
    let dts = read("meta-r58/recipes-kernel/linux/files/rk3588-r58x.dts");
    assert!(dts.contains("&wdt {\n\tstatus = \"okay\";"));
}
