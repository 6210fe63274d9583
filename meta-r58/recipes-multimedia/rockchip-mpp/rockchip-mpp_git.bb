SUMMARY = "Rockchip Media Process Platform (VPU encoder/decoder library)"
DESCRIPTION = "librockchip_mpp: user-space driver for the RK3588's video \
               codecs through /dev/mpp_service; mpph264enc is built on it."
HOMEPAGE = "https://github.com/rockchip-linux/mpp"
BUGTRACKER = "https://github.com/rockchip-linux/mpp/issues"
SECTION = "libs"
CVE_PRODUCT = ""
LICENSE = "Apache-2.0 & MIT"
LIC_FILES_CHKSUM = "file://LICENSES/Apache-2.0;md5=7f43e699e0a26fae98c2938092f008d2 \
                    file://LICENSES/MIT;md5=e8f57dd048e186199433be2c41bd3d6d"

PV = "1.0.5+git"

SRC_URI = "git://github.com/rockchip-linux/mpp.git;protocol=https;branch=develop"
SRCREV = "ee946af015c350c926a0fca2f02da8e429f8b079"

inherit cmake pkgconfig

COMPATIBLE_MACHINE = "rk3588"
PACKAGE_ARCH = "${MACHINE_ARCH}"

# Shared library only; the test programs stay out of the image.
EXTRA_OECMAKE = "-DRKPLATFORM=ON -DHAVE_DRM=ON -DBUILD_TEST=OFF \
                 -DENABLE_SHARED=ON -DENABLE_STATIC=OFF"
