#!/usr/bin/env python3
"""The README's table of supported clients, from the interop cells that
passed (target/tmp/interop/*.json, written by tests/interop.rs).

    table.py            print the table
    table.py --write    also replace it in README.md between the markers
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[2]
cells = [json.loads(p.read_text()) for p in sorted((root / "target/tmp/interop").glob("*.json"))]
if not cells:
    sys.exit("no interop results: run `make interop` first")
rows = ["| client | version tested | role | transport | media seen |", "|---|---|---|---|---|"]
for c in sorted(cells, key=lambda c: (c["peer"], c["role"], c["transport"])):
    rows.append(f"| {c['peer']} | {c['version']} | {c['role']} | {c['transport']} | {c['media']} |")
table = "\n".join(rows)
print(table)
if "--write" in sys.argv:
    readme = root / "README.md"
    text = readme.read_text()
    begin, end = "<!-- interop:begin -->", "<!-- interop:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
