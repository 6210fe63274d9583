SUMMARY = "Everything an R58 camera box runs"
DESCRIPTION = "The r58 daemon and the tools a field technician uses on the serial console."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "base"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "r58 v4l-utils"
