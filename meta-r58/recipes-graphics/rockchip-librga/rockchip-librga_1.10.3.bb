SUMMARY = "Rockchip RGA 2D accelerator library (im2d)"
DESCRIPTION = "Rockchip's prebuilt librga for aarch64 and its headers, with a \
               pkg-config file so gstreamer-rockchip finds it: colour \
               conversion and scaling on the RGA before the MPP encoder."
HOMEPAGE = "https://github.com/airockchip/librga"
BUGTRACKER = "https://github.com/airockchip/librga/issues"
SECTION = "libs"
CVE_PRODUCT = ""
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://COPYING;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "git://github.com/airockchip/librga.git;protocol=https;branch=main"
SRCREV = "31e5e71729422e93ce37b073ec3457ee58994302"

COMPATIBLE_MACHINE = "rk3588"
PACKAGE_ARCH = "${MACHINE_ARCH}"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -D -m 0755 ${S}/libs/Linux/gcc-aarch64/librga.so ${D}${libdir}/librga.so
    install -d ${D}${includedir}/rga
    install -m 0644 ${S}/include/*.h ${S}/include/*.hpp ${D}${includedir}/rga/
    install -d ${D}${libdir}/pkgconfig
    printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: librga\nDescription: Rockchip RGA 2D accelerator\nVersion: %s\nLibs: -L${libdir} -lrga\nCflags: -I${includedir}/rga\n' \
        "${prefix}" "${libdir}" "${includedir}" "${PV}" > ${D}${libdir}/pkgconfig/librga.pc
}

# The vendor library's SONAME is librga.so itself: it is the runtime file.
FILES_SOLIBSDEV = ""
FILES:${PN} += "${libdir}/librga.so"
