"""Writes a hostile import file to stdout: bench/hostile_file.py KIND [ROWS].

  huge      NDJSON customers: rows of ~1 MB each (just under the row limit) that fail on a bad
            email, rows over the 1 MiB limit, and good rows between them (ROWS in all, 60).
  failures  CSV customers each failing (ROWS rows, 300000): an unknown kind, and a bad email
            and region behind it (a type error stops a row's reading, so one is reported);
            every failed row is kept for the error file.
  zeros     plain zeros (ROWS MiB, 1024), to gzip into a bomb.
"""
import base64
import json
import random
import sys

kind = sys.argv[1]
out = sys.stdout
random.seed(18)


def noise(n):
    """n characters that compress as real text does (not 1 000 times, as a run of one letter
    would, which the inflation limit refuses before any row is read)."""
    return base64.b64encode(random.randbytes(n * 3 // 4 + 3)).decode()[:n]

if kind == "huge":
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    for i in range(rows):
        if i % 3 == 0:
            out.write(json.dumps({"external_id": f"h-{i}", "name": f"Good {i}"}) + "\n")
        elif i % 3 == 1:
            notes = noise(1_000_000)
            out.write(json.dumps({"external_id": f"h-{i}", "name": f"Huge {i}",
                                  "email": "not an email", "attributes": {"notes": notes}}) + "\n")
        else:
            notes = noise(1_500_000)
            out.write(json.dumps({"external_id": f"h-{i}", "name": f"Over {i}",
                                  "attributes": {"notes": notes}}) + "\n")
elif kind == "failures":
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 300_000
    out.write("external_id,name,email,kind,region_type,occupation\n")
    for i in range(rows):
        out.write(f"f-{i},Failing {i},not-an-email-{i},robot,nowhere,{noise(150)}\n")
elif kind == "zeros":
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    block = b"0" * (1 << 20)
    for _ in range(mib):
        sys.stdout.buffer.write(block)
else:
    sys.exit(f"unknown kind {kind!r}")
