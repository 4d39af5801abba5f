# Sourced by bench/compare-cpu and bench/run: CPU time and database statements around one
# load run, so each side of an A/B comparison gets its own cost per request.
#
#   before=$(cpu_sample PID [METRICS_URL])
#   ... one wrk run ...
#   after=$(cpu_sample PID [METRICS_URL])
#   cpu_delta "$before" "$after" REQUESTS   # -> "server_ms pg_ms statements round_trips" per request
#
# A sample is "server_ticks pg_ticks statements round_trips" (clock ticks of utime+stime; the
# counters from the server's Prometheus /metrics, "n/a" when it has none or no URL is given).

cpu_hz=$(getconf CLK_TCK)

# utime+stime of one process (all its threads), plus the time of children it has reaped.
cpu_ticks_of() { # pid -> ticks
  local stat f
  read -r stat 2>/dev/null <"/proc/$1/stat" || { echo "cpu: no process $1" >&2; return 1; }
  # The command name is in parentheses and may hold spaces: split after its last ")". Then
  # field 1 is the state (field 3 of stat(5)), and utime, stime, cutime, cstime are 12 to 15.
  read -ra f <<<"${stat##*) }"
  echo $((f[11] + f[12] + f[13] + f[14]))
}

# Every PostgreSQL server process on this machine (comm "postgres"): the postmaster, its
# auxiliary processes and every backend. Backends come and go, so a plain difference of sums
# would lose an exited backend's time (and subtract what it had used before the run); the
# postmaster's cutime+cstime takes it back, because the postmaster reaps its backends: summing
# utime+stime+cutime+cstime over all of them, before and after, counts each backend's time
# inside the window, whether it lived through it, started in it or ended in it. A backend
# still unreaped at the second sample is off by at most the moment of its exit. This is the
# whole server: anything else using PostgreSQL at the same time is counted too. Interlink and
# PostGraphile keep pooled connections, so their backends live through the runs anyway.
pg_ticks() {
  # Shell builtins only: a fork per process would cost more than some of what is measured.
  local p stat f total=0
  for p in /proc/[0-9]*; do
    read -r stat 2>/dev/null <"$p/stat" || continue
    case "$stat" in *" (postgres) "*) ;; *) continue ;; esac
    read -ra f <<<"${stat##*) }"
    total=$((total + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$total"
}

# Interlink's counters: db_statements (every statement its pool ran) and, when this build has
# it, db_round_trips (statements plus idle-connection pings). Either name, with or without
# the _total suffix a counter would carry.
metric_value() { # metrics-text name -> value or n/a
  awk -v n="$2" '$1 == "interlink_" n || $1 == "interlink_" n "_total" || $1 == n || $1 == n "_total" {print $2; f=1; exit}
    END {if (!f) print "n/a"}' <<<"$1"
}

cpu_sample() { # pid [metrics-url] -> "server_ticks pg_ticks statements round_trips"
  local text="" server pg
  [ -n "${2:-}" ] && text=$(curl -fs "$2" 2>/dev/null || true)
  server=$(cpu_ticks_of "$1") || return 1
  pg=$(pg_ticks)
  echo "$server $pg $(metric_value "$text" db_statements) $(metric_value "$text" db_round_trips)"
}

cpu_delta() { # before after requests -> "server_ms_per_req pg_ms_per_req statements_per_req round_trips_per_req"
  awk -v hz="$cpu_hz" -v n="$3" -v b="$1" -v a="$2" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    if (n <= 0) { print "n/a n/a n/a n/a"; exit }
    printf "%.3f %.3f", (y[1] - x[1]) * 1000 / hz / n, (y[2] - x[2]) * 1000 / hz / n
    for (i = 3; i <= 4; i++)
      if (x[i] == "n/a" || y[i] == "n/a") printf " n/a"; else printf " %.2f", (y[i] - x[i]) / n
    print ""
  }'
}

# Raw differences, for totals over several runs: "server_ticks pg_ticks statements round_trips".
cpu_diff() { # before after
  awk -v b="$1" -v a="$2" 'BEGIN {
    split(b, x, " "); split(a, y, " "); printf "%d %d", y[1] - x[1], y[2] - x[2]
    for (i = 3; i <= 4; i++) if (x[i] == "n/a" || y[i] == "n/a") printf " n/a"; else printf " %d", y[i] - x[i]
    print ""
  }'
}
cpu_add() { # sum diff -> sum (n/a is absorbing)
  awk -v s="$1" -v d="$2" 'BEGIN {
    split(s, x, " "); split(d, y, " "); printf "%d %d", x[1] + y[1], x[2] + y[2]
    for (i = 3; i <= 4; i++) if (x[i] == "n/a" || y[i] == "n/a") printf " n/a"; else printf " %d", x[i] + y[i]
    print ""
  }'
}

# One run's costs as a phrase, for the "cpu round N:" lines (which no median parser reads).
cpu_per_req() { # diff requests with-counters(""|1) -> "server X ms/req, postgres Y ms/req[, statements S/req, round trips R/req]"
  local s p st rt
  read -r s p st rt < <(cpu_delta "0 0 0 0" "$1" "$2")
  printf 'server %s ms/req, postgres %s ms/req' "$s" "$p"
  [ -n "${3:-}" ] && printf ', statements %s/req, round trips %s/req' "$st" "$rt"
  return 0
}

# wrk's count of completed requests ("12345 requests in 10.00s, ...").
wrk_requests() { awk '/ requests in / {print $1; exit}' <<<"$1"; }

# One side's per-request costs over a set of runs, as bench/run reads it back:
#   cpu total A: server_ms_per_req=1.234 postgres_ms_per_req=0.567 statements_per_req=5.00 round_trips_per_req=n/a requests=12345
cpu_total_line() { # side totals requests
  local s p st rt
  read -r s p st rt < <(cpu_delta "0 0 0 0" "$2" "$3")
  echo "cpu total $1: server_ms_per_req=$s postgres_ms_per_req=$p statements_per_req=$st round_trips_per_req=$rt requests=$3"
}

# A value back from a file of compare-cpu (or write) output: cpu_field FILE SIDE KEY.
cpu_field() {
  awk -v side="$2" -v key="$3" '$1 == "cpu" && $2 == "total" && $3 == side ":" {
      for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) { print kv[2]; f = 1; exit } } }
    END { if (!f) print "n/a" }' "$1"
}
