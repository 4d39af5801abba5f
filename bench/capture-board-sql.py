#!/usr/bin/env python3
"""Prints, as a pgbench script, the SQL Interlink runs for one board request.

capture-board-sql.py DATABASE_URL INTERLINK_BIN TOKEN PORT

It turns on statement logging for the database, starts a short-lived node (new sessions see
the setting), sends one board request, reads the statements (with their parameters inlined)
back from the PostgreSQL log, and turns logging off again.
"""
import glob, json, os, re, subprocess, sys, time, urllib.request

url, binary, token, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) + 1
db = url.rsplit("/", 1)[1].split("?", 1)[0]
here = os.path.dirname(os.path.abspath(__file__))
# The Debian packaging's log, as on this machine; the prefix must carry the pid and user@db.
logs = glob.glob("/var/log/postgresql/postgresql-*-main.log")
if not logs or not os.access(max(logs, key=os.path.getmtime), os.R_OK):
    sys.exit("capture-board-sql: needs a readable local PostgreSQL log in /var/log/postgresql")
log = max(logs, key=os.path.getmtime)

def psql(sql):
    subprocess.run(["psql", url, "-qc", sql], check=True)

def post(body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)

psql(f"ALTER DATABASE {db} SET log_min_duration_statement = 0")
# Uncached, or the measured request would be answered without the database.
env = dict(os.environ, INTERLINK_BIND=f"127.0.0.1:{port}", INTERLINK_SCHEDULER="false",
           INTERLINK_RESPONSE_CACHE="false")
node = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
            break
        except OSError:
            time.sleep(0.1)
    board = json.load(open(os.path.join(here, "board.interlink.json")))
    post(board)  # warm: the node's first request also loads what later ones reuse
    time.sleep(0.5)
    start = os.path.getsize(log)
    post(board)
    time.sleep(0.5)
    with open(log, errors="replace") as f:
        f.seek(start)
        text = f.read()
finally:
    node.terminate()
    node.wait()
    psql(f"ALTER DATABASE {db} RESET log_min_duration_statement")

# Loaders run side by side on several connections, so a statement's parameters are matched to
# it by the backend's pid, and statements keep the order they started in.
statements = []
last_by_pid = {}
for line in text.splitlines():
    if f"@{db} " not in line:
        continue
    pid = re.search(r"\[(\d+)\]", line)
    pid = pid.group(1) if pid else ""
    if re.search(r"\b(bind|parse) [^:]+: ", line):
        # The log repeats parameters after bind as well; only the execute's count.
        last_by_pid.pop(pid, None)
        continue
    m = re.search(r"execute [^:]+: (.*)$", line)
    if m:
        entry = [m.group(1), {}]
        statements.append(entry)
        last_by_pid[pid] = entry
        continue
    m = re.search(r"DETAIL:\s+parameters: (.*)$", line)
    if m and pid in last_by_pid:
        last_by_pid[pid][1] = {int(k): v for k, v in re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", m.group(1))}

if not statements:
    sys.exit("capture-board-sql: no statements found; is log_line_prefix carrying [%p] and %u@%d?")
print("-- The statements Interlink issued for one board request, parameters inlined.")
for sql, params in statements:
    for n in sorted(params, reverse=True):
        sql = sql.replace(f"${n}", params[n])
    print(sql.rstrip(";") + ";")
