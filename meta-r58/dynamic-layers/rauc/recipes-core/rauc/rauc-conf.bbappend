# The R58's system.conf (slots matching files/wic/r58-ab.wks.in) and the
# keyring that verifies bundles: RAUC_KEYRING_FILE names the CA certificate
# in R58_RAUC_KEY_DIR, both set in local.conf (README: signing keys).
FILESEXTRAPATHS:prepend:r58x := "${THISDIR}/files:"
FILESEXTRAPATHS:prepend:r58x = "${R58_RAUC_KEY_DIR}:"
R58_RAUC_KEY_DIR ??= "${TOPDIR}/rauc-keys"
