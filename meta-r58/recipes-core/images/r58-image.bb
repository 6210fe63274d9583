SUMMARY = "R58 camera box image"
DESCRIPTION = "A headless systemd image running r58: A/B root filesystems for \
               RAUC, the boot script, SSH by key and a serial login for the \
               field technician, whose credentials come from local.conf."
HOMEPAGE = "https://github.com/r58/r58"
BUGTRACKER = "https://github.com/r58/r58/issues"
SECTION = "images"
CVE_PRODUCT = ""
LICENSE = "MIT"

inherit core-image extrausers

IMAGE_FEATURES += "ssh-server-openssh"

IMAGE_INSTALL:append = " \
    packagegroup-r58 \
    u-boot-env \
    ${@bb.utils.contains('DISTRO_FEATURES', 'rauc', 'rauc rauc-mark-good', '', d)} \
"

# wic writes the bootloader, the boot script and the kernel's slot.
# nooelint: oelint.vars.mispell.unknown - image_types_wic's task
do_image_wic[depends] += "virtual/bootloader:do_deploy virtual/kernel:do_deploy r58-bootscript:do_deploy"

# The field technician (serial console at 1.5 Mbaud, SSH by key only).
# Set in local.conf; the image refuses to build with neither, and never
# ships a default password:
#   R58_TECH_PASSWORD_HASH = "$6$..."   (mkpasswd -m sha-512), serial login
#   R58_TECH_SSH_KEYS = "ssh-ed25519 AAAA... tech@laptop"   (';' between keys)
R58_TECH_USER ?= "tech"
R58_TECH_PASSWORD_HASH ?= ""
R58_TECH_SSH_KEYS ?= ""
R58_TECH_PASSWORD_ARG = "${@"-p '%s'" % d.getVar('R58_TECH_PASSWORD_HASH').replace('$', '\\$') if d.getVar('R58_TECH_PASSWORD_HASH') else ''}"
EXTRA_USERS_PARAMS = "\
    groupadd r58tech; \
    useradd -m -s /bin/sh -g r58tech -G video,systemd-journal ${R58_TECH_PASSWORD_ARG} ${R58_TECH_USER}; \
"

ROOTFS_POSTPROCESS_COMMAND += "r58_technician_access"
# nooelint: oelint.task.docstrings - a rootfs post-process function, not a task
r58_technician_access() {
    if [ -z "${R58_TECH_PASSWORD_HASH}" ] && [ -z "${R58_TECH_SSH_KEYS}" ]; then
        bbfatal "r58-image: no way in for the technician. Set R58_TECH_PASSWORD_HASH (serial login) and/or R58_TECH_SSH_KEYS (SSH) in local.conf; see the README."
    fi
    home=${IMAGE_ROOTFS}/home/${R58_TECH_USER}
    if [ -n "${R58_TECH_SSH_KEYS}" ]; then
        install -d -m 0700 $home/.ssh
        echo "${R58_TECH_SSH_KEYS}" | tr ';' '\n' | sed 's/^ *//' > $home/.ssh/authorized_keys
        chmod 0600 $home/.ssh/authorized_keys
        ids=$(awk -F: -v u="${R58_TECH_USER}" '$1 == u { print $3 ":" $4 }' ${IMAGE_ROOTFS}${sysconfdir}/passwd)
        chown -R "$ids" $home/.ssh
    fi
}
