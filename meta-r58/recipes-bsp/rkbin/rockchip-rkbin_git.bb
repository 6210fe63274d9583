SUMMARY = "Rockchip's RK3588 DDR init and BL31 blobs for U-Boot"
DESCRIPTION = "The closed first-stage DDR init (U-Boot's ROCKCHIP_TPL) and \
               the Arm Trusted Firmware BL31 that Rockchip's 6.1 BSP kernel \
               expects, staged for U-Boot's binman; nothing goes on the target."
HOMEPAGE = "https://github.com/rockchip-linux/rkbin"
BUGTRACKER = "https://github.com/rockchip-linux/rkbin/issues"
SECTION = "bootloaders"
CVE_PRODUCT = ""
LICENSE = "Proprietary"
LIC_FILES_CHKSUM = "file://LICENSE;md5=11e3673115959bf596feaaa6ea7ce9a5"

PV = "2025.01+git"

SRC_URI = "git://github.com/rockchip-linux/rkbin.git;protocol=https;branch=master"
SRCREV = "f43a462e7a1429a9d407ae52b4745033034a6cf9"

COMPATIBLE_MACHINE = "rk3588"
PACKAGE_ARCH = "${MACHINE_ARCH}"
INHIBIT_DEFAULT_DEPS = "1"

# Firmware for the boot ROM and EL3, staged for U-Boot only: no packages.
inherit nopackages

R58_RKBIN_DDR ??= ""
R58_RKBIN_BL31 ??= ""

do_configure[noexec] = "1"
do_compile[noexec] = "1"

# Staged under datadir for U-Boot's build (its DEPENDS), under fixed names
# so the U-Boot append does not repeat the versions.
do_install() {
    install -D -m 0644 ${S}/bin/rk35/${R58_RKBIN_DDR} ${D}${datadir}/rkbin/ddr.bin
    install -D -m 0644 ${S}/bin/rk35/${R58_RKBIN_BL31} ${D}${datadir}/rkbin/bl31.elf
}
