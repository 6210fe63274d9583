SUMMARY = "RAUC update bundle for the R58"
DESCRIPTION = "The r58-image root filesystem as a signed verity bundle, \
               installed with 'rauc install' into the inactive A/B slot."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "images"
CVE_PRODUCT = ""
LICENSE = "MIT"

# Everything comes from the image the slot names.
SRC_URI = ""

inherit bundle

RAUC_BUNDLE_COMPATIBLE = "r58x"
RAUC_BUNDLE_FORMAT = "verity"
RAUC_BUNDLE_SLOTS = "rootfs"
# nooelint: oelint.vars.mispell.unknown - meta-rauc reads RAUC_SLOT_<slot>
RAUC_SLOT_rootfs = "r58-image"
# nooelint: oelint.vars.mispell.unknown
RAUC_SLOT_rootfs[fstype] = "ext4"

# The signing key and certificate stay out of the layer: set
# RAUC_KEY_FILE and RAUC_CERT_FILE in local.conf (README).
