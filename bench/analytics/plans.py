"""Prints the auto_explain plans one request left in a PostgreSQL log (a slice of it): every
statement run meanwhile with its time (the same text once, with its count: the background
jobs' polls run beside the request too), then the plans of those that took at least
--min-ms (the slowest always), Buffers lines kept; of statements with the same text (an
export's batches), the plans of the first and the slowest.

    python3 plans.py LOG DATABASE LABEL [--min-ms 1]
"""
import re
import sys

args = sys.argv[1:]
min_ms = 1.0
if "--min-ms" in args:
    i = args.index("--min-ms")
    min_ms = float(args[i + 1])
    del args[i:i + 2]
log_path, database, label = args

COST = re.compile(r"\((cost=\d|actual time=|actual rows=)")
statements, current = [], None
for line in open(log_path, encoding="utf-8", errors="replace"):
    if "LOG:  duration:" in line and "plan:" in line and f"@{database} " in line:
        current = {"ms": float(re.search(r"duration: ([0-9.]+) ms", line).group(1)),
                   "text": [], "plan": []}
        statements.append(current)
    elif current is not None and line.startswith("\t"):
        body = line[1:].rstrip("\n")
        if current["plan"] or COST.search(body):
            current["plan"].append(body)
        else:
            current["text"].append(body[len("Query Text: "):] if body.startswith("Query Text: ") else body)
    else:
        current = None

def text(s, width):
    t = " ".join(" ".join(s["text"]).split())
    return t if len(t) <= width else t[:width - 1] + "…"

total = sum(s["ms"] for s in statements)
slowest = max(statements, key=lambda s: s["ms"]) if statements else None
print(f"### {label}")
print(f"    {len(statements)} statements, {total:.1f} ms in PostgreSQL in all"
      + (f", the slowest {slowest['ms']:.1f} ms" if slowest else "")
      + " (auto_explain with ANALYZE: per-node timing makes them slower than without)")
# The list: statements with the same text together (an export's batches, and the background
# jobs' polls that ran meanwhile), in the order of their first run.
groups = {}
for n, s in enumerate(statements, 1):
    g = groups.setdefault(text(s, 10_000), {"first": n, "runs": []})
    g["runs"].append(s["ms"])
for key, g in groups.items():
    runs = g["runs"]
    times = f"{runs[0]:>10.1f} ms" if len(runs) == 1 else f"{sum(runs):>10.1f} ms in {len(runs)} runs (max {max(runs):.1f})"
    print(f"    {g['first']:>3}. {times}  {text({'text': [key]}, 100)}")
print()
shown = {}
for n, s in enumerate(statements, 1):
    key = text(s, 10_000)
    first = key not in shown
    if s is not slowest and s["ms"] < min_ms:
        continue
    if not first and s is not max((x for x in statements if text(x, 10_000) == key), key=lambda x: x["ms"]):
        continue
    shown[key] = True
    print(f"  -- statement {n} ({s['ms']:.1f} ms): {text(s, 400)}")
    for line in s["plan"]:
        print("    " + line)
    print()
