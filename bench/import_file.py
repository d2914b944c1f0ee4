"""Writes a CSV of customers to stdout, readable both by `POST /v1/imports/customers` and by
`psql \\copy customers (...)`: bench/import_file.py ROWS [ATTRIBUTE_BYTES]."""
import json
import random
import sys
import uuid

rows = int(sys.argv[1])
padding = int(sys.argv[2]) if len(sys.argv) > 2 else 0
random.seed(7)
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
STAGES = ["prospect", "acquaintance", "exploration", "stable", "commitment"]
out = sys.stdout
columns = ["id", "kind", "name", "email", "phone", "external_id", "source", "region_type",
           "lifecycle_stage"]
if padding:
    columns.append("attributes")
out.write(",".join(columns) + "\n")
for i in range(rows):
    name = f"{random.choice(FIRST)} {random.choice(LAST)} {i}"
    cells = [str(uuid.uuid4()), "individual", name, f"c{i}@example.com",
             f"+4930{1000000 + i:08d}", f"ext-{i}", random.choice(["webshop", "store", "referral"]),
             random.choice(["urban", "rural"]), random.choice(STAGES)]
    if padding:
        blob = json.dumps({"notes": "x" * padding})
        cells.append('"' + blob.replace('"', '""') + '"')
    out.write(",".join(cells) + "\n")
