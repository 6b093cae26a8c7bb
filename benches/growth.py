#!/usr/bin/env python3
"""How volley's cost grows with targets, connections and response size.

Runs the release binary against a private nginx on loopback and measures, for the
volley process alone, CPU (user + sys) per target in µs, peak RSS in MiB and the
wall rate in targets/s (spawn to exit: start-up, reading the list, every request,
writing every JSONL result). volley is started through GNU time (/usr/bin/time),
which forks it afresh and reports its own ru_maxrss: a child forked or vforked from
this Python process would carry Python's peak RSS (~14 MiB) past exec, since Linux
keeps a process's peak across exec. CPU comes from os.wait4 on that time process
(time's own share is well under a millisecond). Each point is the median of --runs
separate volley runs (whiskers in the plot: min-max); every run is checked (one
result per target, the expected number of 200s with the expected body bytes) and
bounded by --run-timeout.

Three sweeps:
  1. targets     N = 10k, 30k, 100k, 300k; keep-alive, -c 50, small answers (every
                 tenth of 1,000 paths a 10-byte file, the rest nginx's 404 page).
                 CPU per target and peak RSS should stay flat: targets are streamed,
                 not held, so memory is bounded whatever N is; the rate rises with N
                 only as start-up is spread thinner.
  2. connections -c 1, 10, 50, 200, 1000 at 100k targets, keep-alive, the same
                 paths: what more connections cost (per-connection buffers, more
                 events per turn) and what they buy in rate.
  3. size        0 B, 1 KiB, 16 KiB, 128 KiB, 1 MiB bodies (--max-body 2 MiB so none
                 is capped) at 10k targets and -c 50: CPU per target, and CPU per MiB
                 once bodies dominate.

It prints one markdown table per sweep and writes an SVG (default docs/growth.svg;
with --quick only if --svg is given): one column per sweep, rows CPU per target,
peak RSS and rate (the size column's CPU and rate on a log y axis).

Usage (from the repository root; needs nginx at /usr/sbin/nginx and /usr/bin/time,
both installed by ../shared/bench/setup.sh):
    cargo build --release
    python3 benches/growth.py                 # full: 1-3 minutes on 2 cores
    python3 benches/growth.py --quick         # smaller N, a few seconds
    python3 benches/growth.py --runs 5 --port 18690 --svg /tmp/g.svg
    python3 benches/growth.py --volley path/to/volley

Loopback only. The script starts nginx (`daemon off`, one worker) itself and stops
it by its PID at exit, also on error, Ctrl-C or SIGTERM. The numbers are noisy on a
shared machine (nginx and volley share the cores): read the shape, not the absolutes.
"""

import argparse
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html import escape
from math import ceil, floor, log10
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NGINX = "/usr/sbin/nginx"
TIME = "/usr/bin/time"  # GNU time
SIZES = [("0 B", 0), ("1 KiB", 1 << 10), ("16 KiB", 16 << 10), ("128 KiB", 128 << 10), ("1 MiB", 1 << 20)]
PATHS = 1000  # distinct small paths; every tenth exists
SMALL = 10  # bytes in each existing small file
FULL = {"targets": [10_000, 30_000, 100_000, 300_000], "conns": [1, 10, 50, 200, 1000],
        "conns_n": 100_000, "size_n": 10_000}
QUICK = {"targets": [2_000, 6_000, 20_000], "conns": [1, 10, 50, 200, 1000],
         "conns_n": 10_000, "size_n": 1_000}
C_FIXED = 50


class Nginx:
    """A private nginx on 127.0.0.1:port serving a generated site from a temp dir."""

    def __init__(self, port):
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="volley-growth."))
        os.chmod(self.dir, 0o755)  # the worker runs as nobody when we are root
        self.proc = None

    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        if port_open(self.port):
            raise SystemExit(f"port {self.port} is already in use; pick another with --port")
        www = self.dir / "www"
        (www / "s").mkdir(parents=True)
        (www / "size").mkdir()
        for i in range(0, PATHS, 10):
            (www / "s" / f"p{i}").write_text(f"page {i:04}\n")  # SMALL bytes each
        for name, size in SIZES:
            (www / "size" / slug(name)).write_bytes(b"x" * size)
        d = self.dir
        conf = d / "nginx.conf"
        conf.write_text(f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  log_not_found off;
  sendfile on;
  keepalive_requests 100000000;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen 127.0.0.1:{self.port};
    root {www};
  }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise SystemExit(f"nginx exited: {self.proc.stderr.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                raise SystemExit("nginx did not listen within 10 s")
            time.sleep(0.02)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # by PID: our own child
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def slug(name):
    return name.replace(" ", "").lower()


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def small_urls(base, n):
    """N targets cycling over PATHS paths; returns (lines, (expected 200s, their size))."""
    urls = [f"{base}/s/p{i % PATHS}\n" for i in range(n)]
    return urls, (sum(1 for i in range(n) if (i % PATHS) % 10 == 0), SMALL)


def run_once(volley, work, urls, expect, conc, timeout):
    """One volley process; returns (cpu_s, maxrss_kib, wall_s).

    `expect` is (200s, body bytes of each 200) and is checked against the output. volley
    is started by GNU time, which forks it afresh and reports its ru_maxrss: a child
    forked (or vforked) from this Python process would inherit Python's peak RSS,
    since Linux keeps a process's peak across exec. CPU is from os.wait4 on time
    (its own is a few hundred µs, the rest is volley's)."""
    lst, out, rss_file = work / "urls.txt", work / "out.jsonl", work / "rss"
    lst.write_text("".join(urls))
    argv = [TIME, "-f", "%M", "-o", str(rss_file), str(volley), "-q", "-c", str(conc),
            "--max-body", str(2 << 20), "-l", str(lst), "-o", str(out)]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    pidfd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            kill_children(proc.pid)  # volley, by its PID; then time exits too
        _, status, ru = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C, SIGTERM: end our volley before nginx goes
        kill_children(proc.pid)
        os.wait4(proc.pid, 0)
        raise
    finally:
        os.close(pidfd)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    if not ready:
        raise RuntimeError(f"volley ran past {timeout} s: {' '.join(argv)}")
    if proc.returncode != 0:
        raise RuntimeError(f"volley exited {proc.returncode}: {err}")
    want_ok, size = expect
    tag = b'"status":200,'
    body = f'"bytes":{size},'.encode()
    lines = ok = 0
    with open(out, "rb") as f:
        for line in f:
            lines += 1
            ok += tag in line and body in line
    if lines != len(urls) or ok != want_ok:
        raise RuntimeError(f"-c {conc}: {lines} results for {len(urls)} targets, {ok} 200s "
                           f"of {size} bytes (expected {want_ok})")
    return ru.ru_utime + ru.ru_stime, int(rss_file.read_text().split()[-1]), wall


def kill_children(pid):
    """SIGKILL the children of `pid` (our time process), through pidfds."""
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                fd = os.pidfd_open(int(child))
            except ProcessLookupError:
                continue
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.close(fd)


def measure(args, work, urls, expect, conc):
    """--runs runs of one point: per-run cpu µs/target, RSS MiB, rate."""
    n = len(urls)
    runs = []
    for _ in range(args.runs):
        cpu, rss, wall = run_once(args.volley, work, urls, expect, conc, args.run_timeout)
        runs.append({"cpu_us": cpu / n * 1e6, "rss": rss / 1024, "rate": n / wall, "cpu_s": cpu})
    return runs


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def spread(runs, key):
    vals = [r[key] for r in runs]
    return statistics.median(vals), min(vals), max(vals)


def kilo(n):
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def sweep_targets(args, cfg, work, base):
    rows = []
    for n in cfg["targets"]:
        urls, ok = small_urls(base, n)
        rows.append((n, measure(args, work, urls, ok, C_FIXED)))
        progress(f"targets {n}", rows[-1][1])
    print(f"\n### Targets (keep-alive, -c {C_FIXED}, small answers; median of {args.runs})\n")
    print("| targets | CPU µs/target | peak RSS MiB | targets/s |")
    print("|---:|---:|---:|---:|")
    for n, runs in rows:
        print(f"| {n:,} | {med(runs, 'cpu_us'):.1f} | {med(runs, 'rss'):.1f} | {med(runs, 'rate'):,.0f} |")
    return rows


def sweep_conns(args, cfg, work, base):
    rows = []
    urls, ok = small_urls(base, cfg["conns_n"])
    for c in cfg["conns"]:
        rows.append((c, measure(args, work, urls, ok, c)))
        progress(f"-c {c}", rows[-1][1])
    print(f"\n### Connections ({cfg['conns_n']:,} targets, keep-alive, small answers; "
          f"median of {args.runs})\n")
    print("| -c | CPU µs/target | peak RSS MiB | targets/s |")
    print("|---:|---:|---:|---:|")
    for c, runs in rows:
        print(f"| {c} | {med(runs, 'cpu_us'):.1f} | {med(runs, 'rss'):.1f} | {med(runs, 'rate'):,.0f} |")
    return rows


def sweep_sizes(args, cfg, work, base):
    rows = []
    n = cfg["size_n"]
    for name, size in SIZES:
        urls = [f"{base}/size/{slug(name)}\n"] * n
        runs = measure(args, work, urls, (n, size), C_FIXED)
        for r in runs:
            r["cpu_ms_mib"] = r["cpu_s"] * 1e3 / (n * size / (1 << 20)) if size else None
        rows.append((name, runs))
        progress(f"size {name}", runs)
    print(f"\n### Response size ({n:,} targets, keep-alive, -c {C_FIXED}; median of {args.runs})\n")
    print("| body | CPU µs/target | CPU ms/MiB | peak RSS MiB | targets/s | MiB/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for (name, size), (_, runs) in zip(SIZES, rows):
        per_mib = f"{med(runs, 'cpu_ms_mib'):.2f}" if size else "—"
        rate = med(runs, "rate")
        print(f"| {name} | {med(runs, 'cpu_us'):.1f} | {per_mib} | {med(runs, 'rss'):.1f} | "
              f"{rate:,.0f} | {rate * size / (1 << 20):,.0f} |")
    return rows


def progress(label, runs):
    print(f"  {label}: cpu {med(runs, 'cpu_us'):.1f} µs/target, rss {med(runs, 'rss'):.1f} MiB, "
          f"{med(runs, 'rate'):,.0f}/s", file=sys.stderr, flush=True)


def plot(path, title, cfg, targets, conns, sizes):
    n_conns, n_sizes = cfg["conns_n"], cfg["size_n"]
    # (header, x label, x scale, points, the rows with a log y: size spans 100x in CPU)
    cols = [(f"1. targets (-c {C_FIXED}, small answers)", "targets (log scale)", "log",
             [(n, kilo(n), runs) for n, runs in targets], ()),
            (f"2. connections ({kilo(n_conns)} targets)", "-c (log scale)", "log",
             [(c, str(c), runs) for c, runs in conns], ()),
            (f"3. response size ({kilo(n_sizes)} targets, -c {C_FIXED})", "body size", "cat",
             [(i, name, runs) for i, (name, runs) in enumerate(sizes)], ("cpu_us", "rate"))]
    rows = [("CPU µs / target", "cpu_us"), ("peak RSS MiB", "rss"), ("targets / s", "rate")]
    panels = []
    for r, (ylabel, key) in enumerate(rows):
        for c, (header, xlabel, scale, pts, log_rows) in enumerate(cols):
            panels.append(Panel(row=r, col=c, xscale=scale, xlabel=xlabel if r == len(rows) - 1 else "",
                                ylabel=ylabel if c == 0 else "", header=header if r == 0 else "",
                                xs=[p[0] for p in pts], xticks=[p[1] for p in pts],
                                ys=[spread(p[2], key) for p in pts],
                                ylog=key in log_rows))
    write_svg(path, title, panels, nrows=len(rows), ncols=len(cols))


# --- The plot: a small hand-written SVG line-plot helper (no matplotlib). ---

@dataclass
class Panel:
    """One small plot in a grid: points (x, (median, min, max)); y linear from 0, or log."""
    row: int
    col: int
    xscale: str  # "log": x positions are log10(x); "cat": x is an index, evenly spaced
    xlabel: str
    ylabel: str
    header: str
    xs: list
    xticks: list
    ys: list
    ylog: bool = False  # log10 y axis (every value must be > 0)


PW, PH, GAPX, GAPY, LEFT, TOP, BOTTOM = 270, 170, 55, 45, 85, 78, 50


def nice_step(top, ticks=4):
    """A 1/2/5 x 10^k step giving about `ticks` intervals up to `top`."""
    raw = max(top, 1e-9) / ticks
    mag = 10 ** floor(log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def short(v):
    if v >= 1000:
        k = v / 1000
        return f"{k:.0f}k" if k == int(k) else f"{k:.1f}k"
    return f"{v:g}"


def linear_y(ys, y0):
    """y from 0 to a round top above every max; returns (scale, ticks)."""
    step = nice_step(max(m for _, _, m in ys) * 1.05)
    ytop = step * ceil(max(m for _, _, m in ys) * 1.05 / step)
    ticks = [i * step for i in range(round(ytop / step) + 1)]
    return (lambda v: y0 + PH - v / ytop * PH), ticks


def log_y(ys, y0):
    """log10 y over whole decades around every min and max; ticks at 1, 2, 5 x 10^k."""
    lo = floor(log10(min(mn for _, mn, _ in ys)))
    hi = ceil(log10(max(mx for _, _, mx in ys)))
    hi = max(hi, lo + 1)
    ticks = [m * 10 ** k for k in range(lo, hi + 1) for m in (1, 2, 5) if m * 10 ** k <= 10 ** hi]
    return (lambda v: y0 + PH - (log10(v) - lo) / (hi - lo) * PH), ticks


def panel_svg(p):
    x0 = LEFT + p.col * (PW + GAPX)
    y0 = TOP + p.row * (PH + GAPY)
    if p.xscale == "log":
        pos = [log10(x) for x in p.xs]
    else:
        pos = list(range(len(p.xs)))
    lo, hi = min(pos), max(pos)
    pad = (hi - lo) * 0.08 or 0.5
    sx = lambda v: x0 + (v - lo + pad) / (hi - lo + 2 * pad) * PW  # noqa: E731
    sy, yticks = log_y(p.ys, y0) if p.ylog else linear_y(p.ys, y0)
    out = []
    for t in yticks:
        y = sy(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PW}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="yt">{short(round(t, 6))}</text>')
    if p.ylog:
        out.append(f'<text x="{x0 - 6}" y="{y0 - 8}" class="note">log y</text>')
    out.append(f'<polyline points="{x0},{y0} {x0},{y0 + PH} {x0 + PW},{y0 + PH}" class="axis"/>')
    for v, label in zip(pos, p.xticks):
        x = sx(v)
        out.append(f'<line x1="{x:.1f}" y1="{y0 + PH}" x2="{x:.1f}" y2="{y0 + PH + 5}" class="axis"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + PH + 18}" class="xt">{escape(label)}</text>')
    for v, (_, mn, mx) in zip(pos, p.ys):
        x = sx(v)
        out.append(f'<path d="M{x - 4:.1f},{sy(mn):.1f}h8M{x:.1f},{sy(mn):.1f}V{sy(mx):.1f}'
                   f'M{x - 4:.1f},{sy(mx):.1f}h8" class="whisk"/>')
    pts = " ".join(f"{sx(v):.1f},{sy(m):.1f}" for v, (m, _, _) in zip(pos, p.ys))
    out.append(f'<polyline points="{pts}" class="line"/>')
    for v, (m, _, _) in zip(pos, p.ys):
        out.append(f'<circle cx="{sx(v):.1f}" cy="{sy(m):.1f}" r="3.5" class="dot"/>')
    if p.header:
        out.append(f'<text x="{x0 + PW / 2}" y="{y0 - 12}" class="head">{escape(p.header)}</text>')
    if p.xlabel:
        out.append(f'<text x="{x0 + PW / 2}" y="{y0 + PH + 38}" class="xl">{escape(p.xlabel)}</text>')
    if p.ylabel:
        yc = y0 + PH / 2
        out.append(f'<text x="{x0 - 52}" y="{yc}" transform="rotate(-90 {x0 - 52} {yc})" '
                   f'class="xl">{escape(p.ylabel)}</text>')
    return out


def write_svg(path, title, panels, nrows, ncols):
    width = LEFT + ncols * PW + (ncols - 1) * GAPX + 25
    height = TOP + nrows * PH + (nrows - 1) * GAPY + BOTTOM
    lx = width - 330
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<style>.grid{stroke:#e3e3e3}.axis{stroke:#444;fill:none}.line{stroke:#1f6fb4;"
        "stroke-width:2;fill:none}.dot{fill:#1f6fb4}.whisk{stroke:#d2691e;stroke-width:1.5;"
        "fill:none}.yt{text-anchor:end;fill:#333}.xt{text-anchor:middle;fill:#333}"
        ".xl{text-anchor:middle;fill:#111}.head{text-anchor:middle;font-weight:bold}"
        ".title{font-size:13px;fill:#111}.note{fill:#777;font-style:italic;font-size:10px;text-anchor:end}</style>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LEFT - 60}" y="22" class="title">{escape(title)}</text>',
        f'<line x1="{lx}" y1="40" x2="{lx + 26}" y2="40" class="line"/>'
        f'<circle cx="{lx + 13}" cy="40" r="3.5" class="dot"/>'
        f'<text x="{lx + 32}" y="44">median</text>',
        f'<path d="M{lx + 105},34h8M{lx + 109},34V46M{lx + 105},46h8" class="whisk"/>'
        f'<text x="{lx + 120}" y="44">min-max over the runs</text>',
    ]
    for p in panels:
        body += panel_svg(p)
    body.append("</svg>")
    Path(path).write_text("\n".join(body) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volley", type=Path, default=ROOT / "target/release/volley",
                    help="the volley binary (default target/release/volley)")
    ap.add_argument("--port", type=int, default=18680, help="loopback port for the private nginx")
    ap.add_argument("--runs", type=int, default=3, help="runs per point (the median is shown)")
    ap.add_argument("--quick", action="store_true", help="smaller N (about a minute)")
    ap.add_argument("--svg", type=Path, default=None,
                    help="where to write the plot (default docs/growth.svg; none with --quick)")
    ap.add_argument("--run-timeout", type=float, default=120, help="seconds allowed per volley run")
    args = ap.parse_args()
    if not Path(TIME).is_file():
        raise SystemExit(f"{TIME} (GNU time) not found: apt-get install time")
    if not args.volley.is_file():
        raise SystemExit(f"{args.volley} not found: run `cargo build --release` first")
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    if args.svg is None and not args.quick:
        args.svg = ROOT / "docs/growth.svg"
    cfg = QUICK if args.quick else FULL
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # -c 1000 needs the fds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    version = subprocess.run([str(args.volley), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    nginx = Nginx(args.port)
    work = Path(tempfile.mkdtemp(prefix="volley-growth-out."))
    try:
        nginx.start()
        base = nginx.base()
        print(f"## Cost growth ({version}, nginx 1 worker on loopback, {os.cpu_count()} cores, "
              f"{time.strftime('%Y-%m-%d')})")
        targets = sweep_targets(args, cfg, work, base)
        conns = sweep_conns(args, cfg, work, base)
        sizes = sweep_sizes(args, cfg, work, base)
    except KeyboardInterrupt:
        raise SystemExit(130)
    except RuntimeError as e:  # a run failed its check or its time bound
        raise SystemExit(f"growth: {e}")
    finally:
        nginx.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.svg:
        title = (f"{version}: cost growth against nginx on loopback "
                 f"(median of {args.runs} run{'s' if args.runs > 1 else ''}; {time.strftime('%Y-%m-%d')})")
        plot(args.svg, title, cfg, targets, conns, sizes)
        print(f"\nwrote {args.svg}")


if __name__ == "__main__":
    main()
