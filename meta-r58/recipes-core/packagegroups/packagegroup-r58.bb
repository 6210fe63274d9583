SUMMARY = "Everything an R58 camera box runs"
DESCRIPTION = "The r58 daemon, the hardware encoder where the machine has one, \
               and the tools a field technician uses on the serial console."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "base"
LICENSE = "MIT"

PACKAGE_ARCH = "${MACHINE_ARCH}"

inherit packagegroup

# The MPP plugin on machines with the RK3588's VPU; r58 falls back to x264.
# x264 is the encoder of last resort (the distro accepts its license flag).
RDEPENDS:${PN} = "gstreamer1.0-plugins-ugly-x264 r58 r58-system"
RDEPENDS:${PN}:append:r58x = " gstreamer1.0-rockchip"
# v4l2-ctl for the technician, where meta-oe is in the build (it is not a
# dependency of this layer).
RRECOMMENDS:${PN} = "${@bb.utils.contains('BBFILE_COLLECTIONS', 'openembedded-layer', 'v4l-utils', '', d)}"
