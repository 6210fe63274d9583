SUMMARY = "Rockchip 6.1 BSP kernel for the R58"
DESCRIPTION = "Rockchip's 6.1 vendor kernel as kept by Armbian (MPP/VPU \
               service, RGA, HDMI-RX with its CMA pool, LT6911 on rkcif, FIQ \
               debugger console), with the R58X device tree: the BlueBerry \
               Edge v1.2 board's plus the hardware watchdog."
HOMEPAGE = "https://github.com/armbian/linux-rockchip"
BUGTRACKER = "https://github.com/armbian/linux-rockchip/issues"
SECTION = "kernel"
CVE_PRODUCT = "linux_kernel"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://COPYING;md5=6bc538ed5bd9a7fc9398086aedcd7e46"

DEPENDS = "openssl-native"

LINUX_VERSION = "6.1.43"
PV = "${LINUX_VERSION}+git"

# A commit of the rk-6.1-rkr5.1 line that carries
# rk3588-blueberry-edge-v12{.dtsi,-linux.dts}; pinned by commit (nobranch),
# since vendor branches are rebased.
SRC_URI = "git://github.com/armbian/linux-rockchip.git;protocol=https;nobranch=1 \
           file://rk3588-r58x.dts \
           file://r58.cfg \
           "
SRCREV = "45b93eb8dd75e66712c0abb67fd70230c93601dc"

inherit kernel

COMPATIBLE_MACHINE = "r58x"

# The vendor defconfig, then r58.cfg on top (watchdog, HDMI-RX, what RAUC's
# verity bundles and systemd need); kernel.bbclass runs olddefconfig after.
do_configure:prepend() {
    install -m 0644 ${UNPACKDIR}/rk3588-r58x.dts ${S}/arch/arm64/boot/dts/rockchip/
    grep -q 'rk3588-r58x.dtb' ${S}/arch/arm64/boot/dts/rockchip/Makefile || \
        echo 'dtb-$(CONFIG_ARCH_ROCKCHIP) += rk3588-r58x.dtb' >> ${S}/arch/arm64/boot/dts/rockchip/Makefile
    oe_runmake -C ${S} O=${B} rockchip_linux_defconfig
    ${S}/scripts/kconfig/merge_config.sh -m -O ${B} ${B}/.config ${UNPACKDIR}/r58.cfg
}
