"""callgrind_objects.py FILE CALLS: instructions per call by object (shared
library or executable), from a callgrind output file: self cost summed per
object, so tfauth's own code and libcurl's are told apart."""
import collections
import os
import sys

path, calls = sys.argv[1], int(sys.argv[2])
names, cost = {}, collections.Counter()
current, skip = None, False


def resolve(spec):
    spec = spec.strip()
    if spec.startswith("("):
        ident, _, name = spec.partition(")")
        if name.strip():
            names[ident] = name.strip()
        return names.get(ident, ident)
    return spec


with open(path) as f:
    for line in f:
        if line.startswith("ob="):
            current = resolve(line[3:])
        elif line.startswith("cob="):
            resolve(line[4:])
        elif line.startswith("calls="):
            skip = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                cost[current] += int(parts[1])

LABELS = [("tfauth/core.so", "tfauth (C core)"), ("libcurl", "libcurl"), ("cjson", "lua-cjson"),
          ("liblua", "Lua interpreter"), ("lua5.4", "Lua interpreter"), ("libc.so", "libc"),
          ("ld-linux", "dynamic loader")]
grouped = collections.Counter()
for obj, ir in cost.items():
    label = next((l for key, l in LABELS if key in (obj or "")), "other: " + os.path.basename(obj or "?"))
    grouped[label] += ir
total = sum(grouped.values())
for label, ir in grouped.most_common(8):
    print("%-22s %10.0f instructions/call  %5.1f%%" % (label, ir / calls, 100.0 * ir / total))
print("%-22s %10.0f instructions/call" % ("total", total / calls))
