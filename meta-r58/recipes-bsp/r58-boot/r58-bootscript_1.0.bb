SUMMARY = "R58 A/B boot script for U-Boot"
DESCRIPTION = "boot.scr for the image's boot partition: picks the RAUC slot \
               with tries left, counts it down and boots that slot's kernel."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "bootloaders"
CVE_PRODUCT = ""
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

DEPENDS = "u-boot-mkimage-native"

SRC_URI = "file://boot.cmd"
S = "${UNPACKDIR}"

inherit deploy nopackages

COMPATIBLE_MACHINE = "r58x"
PACKAGE_ARCH = "${MACHINE_ARCH}"

# The device tree's file name in each slot's /boot (kernel-devicetree
# installs it there without the vendor directory).
R58_DTB = "${@os.path.basename(d.getVar('KERNEL_DEVICETREE').split()[0])}"

do_compile() {
    sed -e 's|@@R58_DTB@@|${R58_DTB}|g' ${UNPACKDIR}/boot.cmd > ${B}/boot.cmd
    uboot-mkimage -A arm64 -O linux -T script -C none -n "r58 A/B boot" -d ${B}/boot.cmd ${B}/boot.scr
}

do_deploy() {
    install -D -m 0644 ${B}/boot.scr ${DEPLOYDIR}/boot.scr
}
addtask deploy after do_compile before do_build
