#!/usr/bin/env bash
# Throughput of the Rampart gateway on loopback, against the bare upstream,
# httputil.ReverseProxy alone and nginx, measured with wrk. Prints one line
# per run and a Markdown table of the medians, for BENCHMARKS.md.
#
#	bench/gateway/run.sh                     # wrk -t2 -c32 -d10s --latency, 3 runs of each
#	RUNS=1 DURATION=5s bench/gateway/run.sh  # a quick look
#	CASES="c d" bench/gateway/run.sh         # only cases c and d
#	bench/gateway/run.sh -access-log /tmp/access.json   # flags go to main.go
#
# Needs go, wrk and nginx (apt-get install -y wrk nginx). The runs are
# interleaved (a b c ... a b c ...), so that load from elsewhere on the
# machine falls on every case alike. CPU is the user+system time of the
# processes serving (this program's: upstreams, proxies, gateways; nginx's
# master and workers for nginx) per request: less noisy than req/s on a
# shared machine, and what a proxy costs beyond the bare upstream is its
# CPU/req minus the bare upstream's.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}

for tool in go wrk nginx curl; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (apt-get install -y wrk nginx curl)" >&2; exit 1; }
done

tmp=$(mktemp -d)
chmod 755 "$tmp"
bench_pid=
nginx_pid=
cleanup() {
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
	[ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/bench-gateway" ./bench/gateway)
"$tmp/bench-gateway" "$@" >"$tmp/urls" 2>"$tmp/bench.log" &
bench_pid=$!
for _ in $(seq 600); do
	grep -qx ready "$tmp/urls" && break
	kill -0 "$bench_pid" 2>/dev/null || { cat "$tmp/bench.log" >&2; exit 1; }
	sleep 0.1
done
grep -qx ready "$tmp/urls" || { echo "run.sh: bench-gateway not ready after 60 s" >&2; exit 1; }
url() { awk -v n="$1" '$1 == n {print $2}' "$tmp/urls"; }

mkdir -p "$tmp/nginx"
bare=$(url bare)
sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@UPSTREAM@|${bare#http://}|" -e "s|@LISTEN@|$(url nginx-listen)|" \
	"$here/nginx.conf.template" >"$tmp/nginx/nginx.conf"
nginx -e stderr -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
echo "nginx http://$(url nginx-listen)" >>"$tmp/urls"
for _ in $(seq 100); do
	curl -fso /dev/null "$(url nginx)/" && break
	sleep 0.1
done

get="/api/products?category=electronics&sort=price_desc&page=2&per_page=20"
# name | listener | wrk script | path
cases=(
	"a bare upstream|bare|get.lua|$get"
	"b httputil.ReverseProxy|reverseproxy|get.lua|$get"
	"c nginx|nginx|get.lua|$get"
	"d gateway, WAF off|gateway-off|get.lua|$get"
	"e gateway, CRS PL1, GET 4 params|gateway-crs|get.lua|$get"
	"f gateway, CRS PL1, POST 1 KB JSON|gateway-crs|post.lua|/api/orders"
	"g gateway, WAF off, POST 1 KB JSON|gateway-off|post.lua|/api/orders"
	"h gateway, WAF off, mTLS upstream|gateway-mtls-off|get.lua|$get"
	"i gateway, CRS PL1, mTLS upstream|gateway-mtls-crs|get.lua|$get"
)

if [ -n "${CASES:-}" ]; then
	picked=()
	for c in "${cases[@]}"; do
		case " $CASES " in *" ${c%% *} "*) picked+=("$c") ;; esac
	done
	cases=("${picked[@]}")
fi

tck=$(getconf CLK_TCK)
# cpu_ticks PID...: user+system clock ticks of the processes.
cpu_ticks() {
	local t=0 p f
	for p in "$@"; do
		read -r -a f <"/proc/$p/stat" || continue
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}
# pids_of LISTENER: the processes serving it: this program (the upstreams
# at least) and, for nginx, nginx's master and workers.
pids_of() {
	if [ "$1" = nginx ]; then
		echo "$bench_pid $nginx_pid $(ps -o pid= --ppid "$nginx_pid" | tr '\n' ' ')"
	else
		echo "$bench_pid"
	fi
}
# to_ms 1.23ms|456.00us|1.02s
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs, $(go version | cut -d' ' -f3), $(nginx -v 2>&1 | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "# wrk -t$THREADS -c$CONNS -d$DURATION --latency, $RUNS runs each; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

results="$tmp/results"
: >"$results"
# Warm up each listener (connection pools, the WAF's first transactions).
for c in "${cases[@]}"; do
	IFS='|' read -r name listener script path <<<"$c"
	wrk -t"$THREADS" -c"$CONNS" -d2s -s "$here/$script" "$(url "$listener")$path" >/dev/null
done
for run in $(seq "$RUNS"); do
	for c in "${cases[@]}"; do
		IFS='|' read -r name listener script path <<<"$c"
		pids=$(pids_of "$listener")
		# shellcheck disable=SC2086
		before=$(cpu_ticks $pids)
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$here/$script" "$(url "$listener")$path")
		# shellcheck disable=SC2086
		after=$(cpu_ticks $pids)
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
		rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
		p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
		p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
		bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
		errs=$(awk '/Socket errors/ {print $0}' <<<"$out")
		cpu=$(awk -v t=$((after - before)) -v n="$reqs" -v hz="$tck" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
		printf '%s|%s|%s|%s|%s|%s|%s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "${bad:-0}" "$errs" >>"$results"
		printf 'run %d  %-40s %10s req/s  p50 %7s ms  p99 %7s ms  %6s CPU-us/req  non-2xx %s %s\n' \
			"$run" "$name" "$rps" "$p50" "$p99" "$cpu" "${bad:-0}" "$errs"
	done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "| case | req/s | p50 ms | p99 ms | CPU µs/req | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
	IFS='|' read -r name _ <<<"$c"
	awk -F'|' -v n="$name" '
		function median(a, k,   i, j, t) {
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		}
		$1 == n { k++; rps[k] = $2 + 0; p50[k] = $3 + 0; p99[k] = $4 + 0; cpu[k] = $5 + 0; bad += $6 }
		END { printf "| %s | %.0f | %.2f | %.2f | %.0f | %d |\n", n, median(rps, k), median(p50, k), median(p99, k), median(cpu, k), bad }
	' "$results"
done
