# R58 A/B boot (U-Boot script, compiled to boot.scr on the boot partition).
#
# Picks the first slot in BOOT_ORDER that has tries left, counts one try
# down, saves the environment and boots that slot's kernel with
# rauc.slot=<slot>. RAUC (bootloader=uboot) writes the same variables with
# fw_setenv: 'rauc install' puts the new slot first with 3 tries, and
# rauc-mark-good gives a slot its 3 tries back once boot-complete.target is
# reached, which needs r58-boot-check. A slot that never gets there is left
# after 3 boots; when no slot has tries left, both get 3 again (a box that
# keeps trying beats one that stops).
#
# Saving goes through one named step, r58_saveenv ('saveenv' unless set), so
# the boot test can point it at a file under QEMU.

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
test -n "${r58_saveenv}" || setenv r58_saveenv saveenv
# bootstd/distro boot say which disk this script came from.
test -n "${devtype}" || setenv devtype mmc
test -n "${devnum}" || setenv devnum 0

setenv r58_slot
for s in ${BOOT_ORDER}; do
  if test -z "${r58_slot}"; then
    if test "${s}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      setenv r58_slot A
      setenv r58_label rootfs_a
    elif test "${s}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      setenv r58_slot B
      setenv r58_label rootfs_b
    fi
  fi
done

if test -z "${r58_slot}"; then
  echo "r58: no slot has tries left (order ${BOOT_ORDER}); 3 tries each again, resetting"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  run r58_saveenv
  reset
fi

echo "r58: booting slot ${r58_slot} from ${devtype} ${devnum} ${r58_label} (tries left: A ${BOOT_A_LEFT}, B ${BOOT_B_LEFT})"
run r58_saveenv

part number ${devtype} ${devnum} ${r58_label} r58_part
part uuid ${devtype} ${devnum}:${r58_part} r58_uuid
# The kernel and device tree live in the slot's own /boot, so an update
# replaces them with the root filesystem.
if load ${devtype} ${devnum}:${r58_part} ${kernel_addr_r} /boot/Image && load ${devtype} ${devnum}:${r58_part} ${fdt_addr_r} /boot/@@R58_DTB@@; then
  setenv bootargs "earlycon=uart8250,mmio32,0xfeb50000 console=ttyFIQ0,1500000 irqchip.gicv3_pseudo_nmi=0 coherent_pool=2M root=PARTUUID=${r58_uuid} rootfstype=ext4 rootwait ro rauc.slot=${r58_slot}"
  booti ${kernel_addr_r} - ${fdt_addr_r}
fi
echo "r58: slot ${r58_slot} (${r58_label}) did not boot; resetting"
reset
