SUMMARY = "R58 image glue: /data, SSH key-only, the technician's sudo rule"
DESCRIPTION = "What both A/B root filesystems need beyond packages: the \
               /data mount (wic's fstab exists only in the flashed slot), \
               sshd without passwords or root, and sudo for group r58tech."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "base"
CVE_PRODUCT = ""
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://data.mount \
           file://50-r58.conf \
           file://r58-technician.sudoers \
           "
S = "${UNPACKDIR}"

inherit allarch systemd

SYSTEMD_SERVICE:${PN} = "data.mount"

do_install() {
    install -D -m 0644 ${UNPACKDIR}/data.mount ${D}${systemd_system_unitdir}/data.mount
    install -d ${D}/data
    install -D -m 0644 ${UNPACKDIR}/50-r58.conf ${D}${sysconfdir}/ssh/sshd_config.d/50-r58.conf
    install -D -m 0440 ${UNPACKDIR}/r58-technician.sudoers ${D}${sysconfdir}/sudoers.d/50-r58-technician
}

FILES:${PN} += "${systemd_system_unitdir}/data.mount /data"
RDEPENDS:${PN} = "sudo"
