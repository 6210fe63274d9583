# The R58's slots and compatible string, from board/rauc/system.conf (the
# files/ entry is a link to it, so make install and Yocto share one file).
FILESEXTRAPATHS:prepend:r58x := "${THISDIR}/files:"
