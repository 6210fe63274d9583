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
R58_HW_ENCODER = ""
R58_HW_ENCODER:rk3588 = "gstreamer1.0-rockchip"

# x264 is the encoder of last resort (the distro accepts its license flag).
RDEPENDS:${PN} = "r58 r58-system v4l-utils gstreamer1.0-plugins-ugly-x264 ${R58_HW_ENCODER}"
