# The R58's system.conf: slots matching files/wic/r58-ab.wks.in. The
# keyring that verifies bundles is RAUC_KEYRING_FILE, set in local.conf to
# the fleet's CA certificate (README: signing keys).
FILESEXTRAPATHS:prepend:r58x := "${THISDIR}/files:"
