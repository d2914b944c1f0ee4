"""Extracts auto_explain plans from a PostgreSQL log, one per list request in order, and says
for each whether the customers table was read through an index. `--list`: the log of one list
request; `--slowest`: of one request of another kind (its slowest statement)."""
import re
import sys

mode = sys.argv[1] if sys.argv[1] in ("--slowest", "--list") else None
if mode:
    sys.argv.pop(1)
slowest = mode == "--slowest"
log_path, database, queries = sys.argv[1], sys.argv[2], sys.argv[3:]
plans, current = [], None
for line in open(log_path, encoding="utf-8", errors="replace"):
    if "LOG:  duration:" in line and "plan:" in line and f"@{database}" in line:
        current = {"duration": re.search(r"duration: ([0-9.]+) ms", line).group(1), "lines": []}
        plans.append(current)
    elif current is not None and line.startswith("\t"):
        current["lines"].append(line[1:].rstrip("\n"))
    elif current is not None and not line.startswith("\t"):
        current = None

def show(label, plan, verdict):
    print(f"### {label}   [{verdict}, {plan['duration']} ms]")
    for l in plan["lines"]:
        if l.startswith("Query Text") or l.strip().startswith(("Buffers:", "Planning", "Execution")):
            continue
        print("    " + l)
    print()


def background(plan):
    """A statement of the service's background jobs, logged while the request ran: the
    retention delete, the workers' claims (`SKIP LOCKED`) and their writes. A list request
    only reads, so these are never its plan."""
    text = " ".join(plan["lines"][:3]).upper()
    return "SKIP LOCKED" in text or not re.search(r"QUERY TEXT: (SELECT|WITH)\b", text) \
        or any(l.lstrip().startswith(("Delete on", "Update on", "Insert on")) for l in plan["lines"])


if slowest:
    # One request's statements: its slowest one, and whether any table was read whole (with
    # PLANS_TABLES=a,b: any of those tables; small ones such as surveys are read whole
    # rightly), naming them then.
    import os
    plans = [p for p in plans if not background(p)]
    if not plans:
        print(f"### {queries[0]}   [no plan logged]\n")
        sys.exit(0)
    plan = max(plans, key=lambda p: float(p["duration"]))
    seq = [re.search(r"Seq Scan on (\w+)", l).group(1)
           for p in plans for l in p["lines"] if "Seq Scan on" in l]
    tables = os.environ.get("PLANS_TABLES")
    if tables:
        seq = sorted(set(t for t in seq if t in tables.split(",")))
        show(queries[0], plan, f"NO INDEX on {' '.join(seq)}" if seq else "index")
    else:
        show(queries[0], plan, "NO INDEX" if seq else "index")
    sys.exit(0)

# Keep the plans of the customer list (the service's other statements are not lists).
plans = [p for p in plans if any("FROM \"customers\"" in l or "FROM customers" in l for l in p["lines"][:3])]
if mode == "--list":
    # One list request's statements (the log from just before it to just after): its plan is
    # the slowest of those reading customers. Matched by position over a whole run's log, a
    # request that logged two statements (or none) shifted every label after it.
    plans = [max(plans, key=lambda p: float(p["duration"]))] if plans else []
for query, plan in zip(queries, plans):
    body = [l for l in plan["lines"] if not l.startswith("Query Text")]
    reads = [l.strip() for l in body if " on customers" in l and ("Scan" in l)]
    indexed = [r for r in reads if "Index" in r]
    seq = [r for r in reads if r.startswith("->  Seq Scan") or r.startswith("Seq Scan")]
    verdict = "index" if indexed and not seq else "NO INDEX"
    print(f"### ?{query}   [{verdict}, {plan['duration']} ms]")
    for l in body:
        if l.strip().startswith(("Buffers:", "Planning", "Execution")):
            continue
        print("    " + l)
    print()
if len(plans) < len(queries):
    print(f"NO INDEX: only {len(plans)} plans found for {len(queries)} queries")
