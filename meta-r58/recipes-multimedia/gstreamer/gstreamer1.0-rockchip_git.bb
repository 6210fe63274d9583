SUMMARY = "GStreamer elements for Rockchip's MPP codecs (mpph264enc)"
DESCRIPTION = "mpph264enc, mpph265enc and the MPP decoders for GStreamer; \
               r58's pipelines use mpph264enc where it is present."
HOMEPAGE = "https://github.com/JeffyCN/mirrors/tree/gstreamer-rockchip"
BUGTRACKER = "https://github.com/JeffyCN/mirrors/issues"
SECTION = "multimedia"
CVE_PRODUCT = ""
LICENSE = "LGPL-2.1-or-later"
LIC_FILES_CHKSUM = "file://COPYING;md5=4fbd65380cdd255951079008b364516c"

DEPENDS = "gstreamer1.0 gstreamer1.0-plugins-base rockchip-mpp"

PV = "1.14+git"

# Rockchip's plugin lives on the gstreamer-rockchip branch of this mirror.
SRC_URI = "git://github.com/JeffyCN/mirrors.git;protocol=https;branch=gstreamer-rockchip"
SRCREV = "dc737f6e4cb27cb8c309049bb269e89b1509e8a5"

inherit meson pkgconfig

# No X11 sink on a headless box; RGA for format conversion before MPP.
PACKAGECONFIG ??= "rga"
PACKAGECONFIG[rga] = "-Drga=enabled,-Drga=disabled,rockchip-librga"

COMPATIBLE_MACHINE = "rk3588"
PACKAGE_ARCH = "${MACHINE_ARCH}"
EXTRA_OEMESON = "-Drockchipmpp=enabled -Drkximage=disabled"

FILES:${PN} += "${libdir}/gstreamer-1.0/*.so"
FILES:${PN}-dev += "${libdir}/gstreamer-1.0/*.la"
