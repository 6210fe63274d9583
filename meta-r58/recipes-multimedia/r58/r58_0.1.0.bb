SUMMARY = "R58 camera daemon: capture, hardware H.264, WebRTC"
DESCRIPTION = "One binary that puts the Mekotronics R58's inputs in front of \
               browsers: HDMI-RX and V4L2 capture, Rockchip MPP H.264 through GStreamer, \
               WHEP with ICE-TCP, health, systemd watchdog and the technician's console."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "multimedia"
CVE_PRODUCT = "r58"
LICENSE = "MIT | Apache-2.0"
LIC_FILES_CHKSUM = "file://Cargo.toml;beginline=7;endline=7;md5=86b31c7756a1a7962f28b62856ed4f05"

# openssl: libssl does the WebRTC DTLS handshakes (openssl-sys finds it
# through pkg-config in the sysroot).
DEPENDS = "glib-2.0 gstreamer1.0 gstreamer1.0-plugins-base openssl"

# r58 builds from the repository this layer lives in (R58_REPO_DIR, set by
# layer.conf), at a pinned commit whose Cargo.lock r58-crates.inc was made
# from ('make lint-layer' checks that). A fleet build may point
# R58_GIT_URL at a hosted copy of the same repository in local.conf; a
# working tree is built with externalsrc (README).
R58_GIT_URL ??= "git://${R58_REPO_DIR};protocol=file"
SRC_URI = "${R58_GIT_URL};branch=main"
SRCREV = "21f3aa189ffcbf5947858cf33aa7ff0d23632f3b"

require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates pkgconfig systemd

# Cargo.toml's release profile strips; Yocto strips itself and keeps the
# symbols in r58-dbg (otherwise QA fails with already-stripped).
export CARGO_PROFILE_RELEASE_STRIP = "false"

SYSTEMD_SERVICE:${PN} = "r58.service r58-boot-check.service"

# The units, udev rule, EDID, getty drop-in and default config come from
# board/, installed by the same make target a Debian image uses. RAUC's
# system.conf belongs to rauc-conf (see dynamic-layers/rauc).
do_install:append() {
    oe_runmake -C ${S} install-board DESTDIR=${D} \
        UNITDIR=${systemd_system_unitdir} \
        UDEVDIR=${nonarch_base_libdir}/udev/rules.d \
        DATADIR=${datadir} SYSCONFDIR=${sysconfdir}
}

FILES:${PN} += "${systemd_system_unitdir} ${nonarch_base_libdir}/udev/rules.d"
CONFFILES:${PN} = "${sysconfdir}/r58/r58.toml"

# The elements r58's pipelines use: test pattern, v4l2src, videoconvert/
# scale/rate, h264parse, appsink.
RDEPENDS:${PN} = "gstreamer1.0-plugins-bad-videoparsersbad \
                  gstreamer1.0-plugins-base-app \
                  gstreamer1.0-plugins-base-videoconvertscale \
                  gstreamer1.0-plugins-base-videorate \
                  gstreamer1.0-plugins-base-videotestsrc \
                  gstreamer1.0-plugins-good-video4linux2"
# The software fallback; packagegroup-r58 adds the MPP plugin on the R58.
RRECOMMENDS:${PN} = "gstreamer1.0-plugins-ugly-x264"
