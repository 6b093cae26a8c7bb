#!/usr/bin/env bash
# End-to-end harness: volley beside wrk against a private nginx on loopback, in one
# run, plus memory figures. Prints ratios (the machines are noisy; absolute rates are
# not comparable across runs). Needs nginx (+ libnginx-mod-http-echo for /slow/), wrk,
# openssl: ../shared/bench/setup.sh installs them.
#
#   benches/e2e.sh            # all jobs
#   JOBS="keepalive close" benches/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-"keepalive close tls-keepalive tls-close hold10k accuracy10k tls5k flat"}
C=${C:-50}
DUR=${DUR:-5}
PORT=${PORT:-18580}
TLS_PORT=$((PORT + 1))
cargo build --release -q
V=$PWD/target/release/volley
W=$(mktemp -d /tmp/volley-e2e.XXXXXX)
chmod 755 "$W"
trap 'kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$W"' EXIT

# A site: 20,000 paths, every tenth exists.
mkdir -p "$W/www/slow"
for i in $(seq 0 19999); do echo "p$i"; done > "$W/paths.txt"
for i in $(seq 0 10 19999); do echo "page $i" > "$W/www/p$i"; done
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
ECHO="" HOLD=""
if [ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ]; then
  ECHO="load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;"
  HOLD="location /hold/ { echo_sleep 2; echo ok; }"
fi
cat > "$W/nginx.conf" <<CONF
$ECHO
worker_processes 1;
pid $W/nginx.pid;
error_log $W/error.log;
worker_rlimit_nofile 65535;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $W; proxy_temp_path $W; fastcgi_temp_path $W; uwsgi_temp_path $W; scgi_temp_path $W;
  ssl_session_cache shared:e2e:10m;
  server {
    listen 127.0.0.1:$PORT;
    listen 127.0.0.1:$TLS_PORT ssl;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    root $W/www;
    $HOLD
  }
}
CONF
nginx -c "$W/nginx.conf"
sleep 0.5
ulimit -n "$(ulimit -Hn)"

# wrk over the same paths (a Lua script cycles through them).
lua() {
  printf 'local p={} for l in io.lines("%s") do p[#p+1]="/"..l end\nlocal i=0 request=function() i=i%%#p+1 return wrk.format("GET",p[i]) end\n' "$W/paths.txt" > "$W/paths.lua"
}
lua
wrk_rate() { # base extra-args...
  local base=$1; shift
  wrk -t1 -c"$C" -d"${DUR}s" "$@" -s "$W/paths.lua" "$base" | awk '/Requests\/sec/ {print $2}'
}
# volley over N repetitions of the path list; prints "rate rss_kib"
volley_rate() { # base reps extra-args...
  local base=$1 reps=$2; shift 2
  : > "$W/urls.txt"
  for _ in $(seq "$reps"); do sed "s|^|$base|" "$W/paths.txt" >> "$W/urls.txt"; done
  local n; n=$(wc -l < "$W/urls.txt")
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$W/rss" "$V" -q -c "$C" "$@" -l "$W/urls.txt" -o "$W/out.jsonl"
  t1=$(date +%s.%N)
  local found; found=$(grep -c '"status":200' "$W/out.jsonl" || true)
  echo "$(echo "$n / ($t1 - $t0)" | bc -l) $(cat "$W/rss") $found $n"
}
row() { printf '| %s | %s | %s | %s |\n' "$@"; }

echo "| job | volley targets/s | × wrk | notes |"
echo "|---|---|---|---|"
for job in $JOBS; do
  case $job in
    keepalive)
      w=$(wrk_rate "http://127.0.0.1:$PORT/")
      read -r v rss found n < <(volley_rate "http://127.0.0.1:$PORT/" 3)
      row "keep-alive GETs, $C conns" "$(printf %.0f "$v")" "$(echo "$v / $w" | bc -l | cut -c1-4)" "wrk $(printf %.0f "$w")/s; $found/$n found 200 (expect $((n / 10))); peak RSS $((rss / 1024)) MiB" ;;
    close)
      w=$(wrk_rate "http://127.0.0.1:$PORT/" -H "Connection: close")
      read -r v rss found n < <(volley_rate "http://127.0.0.1:$PORT/" 1 --no-keepalive)
      row "new connection per request, $C conns" "$(printf %.0f "$v")" "$(echo "$v / $w" | bc -l | cut -c1-4)" "wrk $(printf %.0f "$w")/s; $found/$n found 200" ;;
    tls-keepalive)
      w=$(wrk_rate "https://127.0.0.1:$TLS_PORT/")
      read -r v rss found n < <(volley_rate "https://127.0.0.1:$TLS_PORT/" 2 -k)
      row "TLS keep-alive, $C conns" "$(printf %.0f "$v")" "$(echo "$v / $w" | bc -l | cut -c1-4)" "wrk $(printf %.0f "$w")/s; $found/$n found 200" ;;
    tls-close)
      w=$(wrk_rate "https://127.0.0.1:$TLS_PORT/" -H "Connection: close")
      read -r v rss found n < <(volley_rate "https://127.0.0.1:$TLS_PORT/" 1 -k --no-keepalive)
      row "TLS new connection per request (resumed), $C conns" "$(printf %.0f "$v")" "$(echo "$v / $w" | bc -l | cut -c1-4)" "wrk $(printf %.0f "$w")/s; $found/$n found 200" ;;
    hold10k)
      [ -n "$ECHO" ] || { row "10k held" - - "needs libnginx-mod-http-echo"; continue; }
      for i in $(seq 10000); do echo "http://127.0.0.1:$PORT/hold/$i"; done > "$W/slow.txt"
      /usr/bin/time -f "%M %e" -o "$W/rss" "$V" -q -c 10000 --timeout 60 -l "$W/slow.txt" -o "$W/out.jsonl"
      read -r rss wall < "$W/rss"
      ok=$(grep -c '"status":200' "$W/out.jsonl" || true)
      row "10,000 connections held open (2 s answers)" - - "peak RSS $((rss / 1024)) MiB; $ok/10000 ok; wall ${wall}s" ;;
    accuracy10k)
      [ -n "$ECHO" ] || { row "deadline accuracy" - - "needs libnginx-mod-http-echo"; continue; }
      # Lateness of each read_timeout: total - connect - dns - 1000 ms.
      late() { python3 - "$1" <<'PY'
import json, sys
late = []
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["error"] == "read_timeout":
        t = r["time_ms"]
        late.append(t["total"] - (t["connect"] or 0) - (t["dns"] or 0) - 1000)
late.sort()
q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
print(f"{len(late)} read_timeouts, lateness p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {late[-1]:.1f} ms")
PY
      }
      # Steady: 10,000/s started, each silent peer times out after 1 s: ~10,000 in flight.
      for i in $(seq 30000); do echo "http://127.0.0.1:$PORT/hold/$i"; done > "$W/slow.txt"
      "$V" -q -c 30000 --rate 10000 --read-timeout 1 --retries 0 -l "$W/slow.txt" -o "$W/out.jsonl" || true
      row "deadline accuracy, ~10,000 in flight, 10,000 deadlines/s" - - "$(late "$W/out.jsonl")"
      # Burst: 10,000 started at once, all deadlines due within ~0.1 s.
      head -10000 "$W/slow.txt" > "$W/burst.txt"
      "$V" -q -c 10000 --read-timeout 1 --retries 0 -l "$W/burst.txt" -o "$W/out.jsonl" || true
      row "deadline accuracy, burst of 10,000 due at once" - - "$(late "$W/out.jsonl")"
      "$V" -q -c 10000 --workers 2 --read-timeout 1 --retries 0 -l "$W/burst.txt" -o "$W/out.jsonl" || true
      row "deadline accuracy, burst of 10,000, --workers 2" - - "$(late "$W/out.jsonl")" ;;
    tls5k)
      [ -n "$ECHO" ] || { row "5k TLS held" - - "needs libnginx-mod-http-echo"; continue; }
      for i in $(seq 5000); do echo "https://127.0.0.1:$TLS_PORT/hold/$i"; done > "$W/slow.txt"
      /usr/bin/time -f "%M" -o "$W/rss1" "$V" -q -k -c 1 "https://127.0.0.1:$TLS_PORT/p0" > /dev/null
      /usr/bin/time -f "%M %e" -o "$W/rss" "$V" -q -k -c 5000 --timeout 60 -l "$W/slow.txt" -o "$W/out.jsonl"
      read -r rss wall < "$W/rss"; base=$(cat "$W/rss1")
      ok=$(grep -c '"status":200' "$W/out.jsonl" || true)
      row "5,000 TLS connections held open" - - "peak RSS $((rss / 1024)) MiB, one-connection baseline $((base / 1024)) MiB: $(((rss - base) * 1024 / 5000 / 1024)) KiB per connection; $ok/5000 ok" ;;
    flat)
      read -r v1 rss1 _ n1 < <(volley_rate "http://127.0.0.1:$PORT/" 5)
      read -r v2 rss2 _ n2 < <(volley_rate "http://127.0.0.1:$PORT/" 50)
      row "RSS vs request count" - - "peak RSS $((rss1 / 1024)) MiB at $n1 requests, $((rss2 / 1024)) MiB at $n2" ;;
  esac
done
