# The R58's U-Boot: mainline's generic RK3588 board, with Rockchip's DDR init
# and BL31 from rockchip-rkbin, the environment where fw_env.config and the
# wks expect it (r58-env.cfg), and the commands the A/B boot script uses.
DEPENDS:append:r58x = " rockchip-rkbin"

FILESEXTRAPATHS:prepend:r58x := "${THISDIR}/files:"
SRC_URI:append:r58x = " file://r58-env.cfg file://fw_env.config"
EXTRA_OEMAKE:append:r58x = " BL31=${STAGING_DATADIR}/rkbin/bl31.elf ROCKCHIP_TPL=${STAGING_DATADIR}/rkbin/ddr.bin"
