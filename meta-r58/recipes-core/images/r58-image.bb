SUMMARY = "R58 camera box image"
DESCRIPTION = "A minimal systemd image running r58, with SSH for maintenance \
               and RAUC for A/B updates when meta-rauc is in the build."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "images"
CVE_PRODUCT = ""
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "ssh-server-openssh"

IMAGE_INSTALL:append = " packagegroup-r58 ${@bb.utils.contains('DISTRO_FEATURES', 'rauc', 'rauc', '', d)}"
