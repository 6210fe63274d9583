#!/usr/bin/env python3
"""The R58's A/B layout as meta-r58 states it, read from the layer's files,
and a check that they agree.

Five files describe one disk and one update scheme: the wks (partitions),
U-Boot's config fragment (where its environment lives), fw_env.config (where
Linux looks for it), the boot script (which slot boots from which
partition), RAUC's system.conf (slots, bootnames) and the bundle recipe
(which image type it ships). A partition renamed in one of them and not the
others gives an image that boots once and never updates; this says so at
lint time.

    ablayout.py [LAYER_DIR]     check; exit 1 listing every disagreement
"""
import configparser
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

WKS = "files/wic/r58-ab.wks.in"
UBOOT_CFG = "recipes-bsp/u-boot/files/r58-env.cfg"
FW_ENV = "recipes-bsp/u-boot/files/fw_env.config"
BOOT_CMD = "recipes-bsp/r58-boot/files/boot.cmd"
SYSTEM_CONF = "dynamic-layers/rauc/recipes-core/rauc/files/system.conf"
BUNDLE = "dynamic-layers/rauc/recipes-core/bundles/r58-bundle_1.0.bb"
MACHINE = "conf/machine/r58x.conf"
DATA_MOUNT = "recipes-core/r58-system/files/data.mount"

UNITS = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def size(text: str) -> int:
    """A wks size ('32K', '8M', '3G'; bare numbers are MiB, as in wic)."""
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        raise ValueError(f"not a wks size: {text!r}")
    return int(m.group(1)) * UNITS.get(m.group(2) or "M")


@dataclass
class Partition:
    name: str
    offset: int | None
    size: int | None
    fstype: str | None
    source: str | None
    mountpoint: str | None


@dataclass
class Layout:
    partitions: list[Partition]
    env_offset: int
    env_size: int
    uboot_sector: int
    fw_env: list[tuple[str, int, int]]
    boot_cmd: str
    slots: dict[str, str]           # bootname -> partition label, from the boot script
    system: configparser.ConfigParser
    bundle: dict[str, str]
    fstypes: list[str]
    data_what: str | None = None
    problems: list[str] = field(default_factory=list)

    @staticmethod
    def read(layer: Path) -> "Layout":
        parts = []
        for line in (layer / WKS).read_text().splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] != "part":
                continue
            opts, mount = {}, None
            i = 1
            while i < len(words):
                w = words[i]
                if w.startswith("--"):
                    key, _, val = w[2:].partition("=")
                    if not val and i + 1 < len(words) and not words[i + 1].startswith("--"):
                        val, i = words[i + 1], i + 1
                    opts[key] = val
                else:
                    mount = w
                i += 1
            parts.append(Partition(
                name=opts.get("part-name", ""),
                offset=size(opts["offset"]) if "offset" in opts else None,
                size=size(opts.get("fixed-size") or opts.get("size")) if ("fixed-size" in opts or "size" in opts) else None,
                fstype=opts.get("fstype"), source=opts.get("source"), mountpoint=mount))
        cfg = dict(re.findall(r"^(CONFIG_\w+)=(\S+)$", (layer / UBOOT_CFG).read_text(), re.M))
        fw_env = []
        for line in (layer / FW_ENV).read_text().splitlines():
            line = line.split("#")[0].split()
            if line:
                fw_env.append((line[0], int(line[1], 0), int(line[2], 0)))
        boot_cmd = (layer / BOOT_CMD).read_text()
        slots = dict(re.findall(r"setenv r58_slot (\w+)\s+setenv r58_label (\S+)", boot_cmd))
        system = configparser.ConfigParser(interpolation=None)
        system.read_string((layer / SYSTEM_CONF).read_text())
        bundle_text = (layer / BUNDLE).read_text()
        bundle = dict(re.findall(r'^(RAUC_\w+(?:\[\w+\])?)\s*=\s*"([^"]*)"', bundle_text, re.M))
        machine = (layer / MACHINE).read_text()
        fstypes = " ".join(re.findall(r'^IMAGE_FSTYPES\s*\+?=\s*"([^"]*)"', machine, re.M)).split()
        data = layer / DATA_MOUNT
        what = re.search(r"^What=(\S+)", data.read_text(), re.M).group(1) if data.exists() else None
        return Layout(parts, int(cfg.get("CONFIG_ENV_OFFSET", "-1"), 0), int(cfg.get("CONFIG_ENV_SIZE", "-1"), 0),
                      int(cfg.get("CONFIG_SYS_MMCSD_RAW_MODE_U_BOOT_SECTOR", "-1"), 0),
                      fw_env, boot_cmd, slots, system, bundle, fstypes, what)

    def part(self, label: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == label), None)

    def by_partlabel(self, device: str, what: str) -> Partition | None:
        prefix = "/dev/disk/by-partlabel/"
        if not device.startswith(prefix):
            self.problems.append(f"{what}: {device} is not a /dev/disk/by-partlabel/ path")
            return None
        p = self.part(device[len(prefix):])
        if p is None:
            self.problems.append(f"{what}: no partition named {device[len(prefix):]!r} in {WKS}")
        return p

    def check(self) -> list[str]:
        p = self.problems
        # Rockchip boot area: the boot ROM reads idbloader at sector 64; SPL
        # reads u-boot.itb at the configured sector.
        loader1 = self.part("loader1")
        if not loader1 or loader1.offset != 64 * 512:
            p.append("wks: loader1 (idbloader) must sit at sector 64 (--offset 32K)")
        loader2 = self.part("loader2")
        if not loader2 or loader2.offset != self.uboot_sector * 512:
            p.append(f"wks: loader2 (u-boot.itb) must sit where SPL looks, sector "
                     f"{self.uboot_sector:#x} of {UBOOT_CFG}")
        env = self.part("uboot_env")
        if not env or env.offset != self.env_offset or (env.size or 0) < self.env_size:
            p.append(f"wks: uboot_env must start at CONFIG_ENV_OFFSET {self.env_offset:#x} and hold "
                     f"CONFIG_ENV_SIZE {self.env_size:#x} ({UBOOT_CFG})")
        if len(self.fw_env) != 1:
            p.append(f"{FW_ENV}: one environment copy expected (U-Boot has no redundant one), got {len(self.fw_env)}")
        for dev, off, sz in self.fw_env:
            part = self.by_partlabel(dev, FW_ENV)
            if part and part is not env:
                p.append(f"{FW_ENV}: {dev} is not the uboot_env partition")
            if off != 0 or sz != self.env_size:
                p.append(f"{FW_ENV}: offset {off:#x} size {sz:#x}, U-Boot has 0x0 {self.env_size:#x}")
        sysconf = self.system
        if sysconf.get("system", "bootloader", fallback="") != "uboot":
            p.append(f"{SYSTEM_CONF}: bootloader must be uboot")
        bootnames = {}
        for sect in sysconf.sections():
            if not sect.startswith("slot.rootfs."):
                continue
            dev = sysconf.get(sect, "device", fallback="")
            part = self.by_partlabel(dev, f"{SYSTEM_CONF} [{sect}]")
            slot_type = sysconf.get(sect, "type", fallback="")
            if part and part.fstype != slot_type:
                p.append(f"{SYSTEM_CONF} [{sect}]: type {slot_type}, but {part.name} is {part.fstype} in the wks")
            bootnames[sysconf.get(sect, "bootname", fallback="")] = dev.rsplit("/", 1)[-1]
        if bootnames != self.slots:
            p.append(f"boot script slots {self.slots} differ from {SYSTEM_CONF} bootnames {bootnames}")
        root = [x for x in self.partitions if x.mountpoint == "/"]
        if len(root) != 1 or root[0].name not in self.slots.values():
            p.append("wks: the image's root filesystem must be written to one of the slots")
        for slot in self.slots.values():
            if slot.upper()[-1] not in "AB" or self.part(slot) is None:
                p.append(f"boot script: slot partition {slot!r} is not in the wks")
        fstype = self.bundle.get("RAUC_SLOT_rootfs[fstype]")
        if fstype not in self.fstypes:
            p.append(f"{BUNDLE}: ships {fstype}, but {MACHINE} builds IMAGE_FSTYPES {' '.join(self.fstypes)}")
        compat = sysconf.get("system", "compatible", fallback="")
        if self.bundle.get("RAUC_BUNDLE_COMPATIBLE") != compat:
            p.append(f"{BUNDLE}: RAUC_BUNDLE_COMPATIBLE differs from system.conf's compatible={compat}")
        data_dir = sysconf.get("system", "data-directory", fallback="")
        if data_dir and self.data_what:
            self.by_partlabel(self.data_what, DATA_MOUNT)
        if not data_dir.startswith("/data/"):
            p.append(f"{SYSTEM_CONF}: data-directory should live on /data, which updates keep")
        return p


def main(argv):
    layer = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    problems = Layout.read(layer).check()
    for line in problems:
        print(f"ablayout: {line}", file=sys.stderr)
    if not problems:
        print("ablayout: wks, U-Boot env, fw_env.config, boot script, system.conf and bundle agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
