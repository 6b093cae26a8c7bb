#!/usr/bin/env bash
# CI step: volley under a real Slurm scheduler (issue 14). On a fresh Debian machine it
# installs slurm-wlm and munge, starts a one-node cluster on this machine (munged,
# slurmctld, slurmd; keys, config, state and logs in one temp dir, ports on loopback),
# submits a 4-task array job that probes one list against a loopback HTTP server with
# `--shard auto`, kills one task mid-run with scancel, requeues it so it finishes with
# `--resume`, and checks that every target got exactly one answer across the four files
# (`volley report --expect N`, and independently tests/slurm/exactly_once.py).
# Everything it started is stopped by PID on exit, and the temp dir removed.
#
# Environment: VOLLEY (binary; default: build target/debug/volley), SLURM_N (targets,
# default 2000), SLURM_DELAY (server's delay per answer in seconds, default 0.02).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PATH=$PATH:/usr/sbin:/sbin # the daemons, slurmd -C and mungekey live there
N=${SLURM_N:-2000}
DELAY=${SLURM_DELAY:-0.02}
TASKS=4
KILL_TASK=3
t0=$SECONDS

say() { printf 'slurm: %s\n' "$*"; }
die() { printf 'slurm: FAILED: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local limit=$1 what=$2 start=$SECONDS
  shift 2
  until "$@"; do
    ((SECONDS - start < limit)) || die "timed out after ${limit}s waiting for $what"
    sleep 0.1
  done
}

# --- packages -------------------------------------------------------------------
need=()
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  # Whatever services the packages start (none without an init system) are not used:
  # this step runs its own daemons with their own key, socket and config below.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q \
    --no-install-recommends "${need[@]}" >/dev/null
fi
say "$(slurmctld -V), $(munged -V 2>&1 | awk '{print $1; exit}')"

if [ -z "${VOLLEY:-}" ]; then
  cargo build -q --bin volley
  VOLLEY=$root/target/debug/volley
fi
[ -x "$VOLLEY" ] || die "no volley binary at $VOLLEY"

# --- temp dir and cleanup -------------------------------------------------------
tmp=$(mktemp -d /tmp/volley-slurm.XXXXXX)
chmod 755 "$tmp" # slurmd and the job read the list and write outputs here
pids=()          # daemons started here, stopped in reverse order
job=""
cleanup() {
  local rc=$? pid
  set +e
  if [ -n "$job" ]; then
    # Jobs first, while slurmd can still reap their steps.
    scancel "$job" 2>/dev/null
    for _ in $(seq 100); do
      [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    $SUDO kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do
      $SUDO kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    $SUDO kill -0 "$pid" 2>/dev/null && { say "pid $pid did not stop on TERM; KILL"; $SUDO kill -KILL "$pid"; }
    wait "$pid" 2>/dev/null
  done
  if ((rc != 0)); then
    for f in "$tmp"/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f (last 30 lines)"
      tail -n 30 "$f"
    done
  fi
  $SUDO rm -rf "$tmp"
  say "step took $((SECONDS - t0))s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: an unused loopback TCP port (free when asked; nothing else here binds ports).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- munge ----------------------------------------------------------------------
# munged wants its directory owned by its own user; clients (any user) reach the socket.
$SUDO mkdir -m 755 "$tmp/munge"
$SUDO mungekey --create --keyfile="$tmp/munge/munge.key" --bits=1024
socket=$tmp/munge/munge.socket
$SUDO munged --foreground --force --socket="$socket" --key-file="$tmp/munge/munge.key" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
  --log-file="$tmp/munged.log" >"$tmp/munged.out" 2>&1 &
pids+=($!)
wait_for 10 "munged's socket" test -S "$socket"
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null || die "munge round trip"

# --- slurm.conf -----------------------------------------------------------------
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/out"
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
# The node as slurmd sees this machine (CPUs, sockets, cores, memory), renamed localhost.
node=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=volleyci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays a requeued job's start (cred_expire + 1 s; default 120 s).
AuthInfo=socket=$socket,cred_expire=5
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
# slurmd and slurmctld bind the address their names resolve to (127.0.0.1), not every
# interface.
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$tmp/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
# The main loop starts a requeued job once it is eligible (default: every 60 s).
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost $node State=UNKNOWN
# Four tasks share the $cpus CPU(s): the step is about scheduling, not throughput.
PartitionName=ci Nodes=localhost Default=YES MaxTime=10 State=UP OverSubscribe=FORCE:$TASKS
EOF
: >"$tmp/plugstack.conf"

# --- daemons --------------------------------------------------------------------
$SUDO env SLURM_CONF="$SLURM_CONF" slurmctld -D -i >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
ctld_up() { scontrol ping >/dev/null 2>&1; }
wait_for 30 "slurmctld to answer" ctld_up
$SUDO env SLURM_CONF="$SLURM_CONF" slurmd -D -N localhost >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
node_idle() { [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ]; }
wait_for 60 "node localhost idle" node_idle
say "cluster up after $((SECONDS - t0))s: $(sinfo -h -o '%P %D %t %c cpus %m MB')"

# --- target server and list -----------------------------------------------------
python3 "$root/tests/slurm/server.py" "$tmp/port" "$DELAY" &
pids+=($!)
wait_for 10 "the HTTP server's port" test -s "$tmp/port"
port=$(cat "$tmp/port")
seq 1 "$N" | sed "s|^|http://127.0.0.1:$port/item/|" >"$tmp/list"

# --- the array job --------------------------------------------------------------
cd "$tmp/out"
export VOLLEY LIST=$tmp/list OUTDIR=$tmp/out VOLLEY_ARGS="-c 2 --timeout 10"
job=$(sbatch --parsable --array=1-$TASKS --output="$tmp/task-%a.log" \
  "$root/tests/slurm/array.sbatch")
job=${job%%;*}
say "submitted array job $job (tasks 1-$TASKS, $N targets, ${DELAY}s per answer)"

# Shard K of TASKS holds the n with (n - 1) % TASKS == K - 1.
shard_size=$(((N - KILL_TASK) / TASKS + 1))
out=$tmp/out/out.$KILL_TASK.jsonl
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
state_of() { squeue -h -j "${job}_$1" -t all -o %T 2>/dev/null | head -n 1; }
# Kill task KILL_TASK once it is running and has written some results, not all.
has_started_writing() {
  local st
  st=$(state_of $KILL_TASK)
  case $st in
    "" | PENDING | CONFIGURING | RUNNING) ;;
    *) die "task $KILL_TASK ended $st before it could be killed" ;;
  esac
  [ "$st" = RUNNING ] && (($(lines "$out") >= 20))
}
wait_for 60 "task $KILL_TASK to run and write results" has_started_writing
scancel "${job}_$KILL_TASK"
is_cancelled() { [ "$(state_of $KILL_TASK)" = CANCELLED ]; }
wait_for 30 "task $KILL_TASK to be cancelled" is_cancelled
before=$(lines "$out")
# job_field TASK FIELD: one field of `scontrol show job` for that array task.
job_field() { scontrol show job "${job}_$1" | grep -o "$2=[^ ]*" | head -n 1 | cut -d= -f2; }
killed_exit=$(job_field $KILL_TASK ExitCode)
say "task $KILL_TASK cancelled with $before of $shard_size results written, exit $killed_exit"
((before < shard_size)) || die "task $KILL_TASK finished before it was killed; raise SLURM_DELAY"
# scancel sends SIGTERM first: volley writes what finished and exits 130 (the contract).
[ "$killed_exit" = 130:0 ] || die "task $KILL_TASK's volley exited $killed_exit on SIGTERM, not 130"
scontrol requeue "${job}_$KILL_TASK"
say "task $KILL_TASK requeued: $(state_of $KILL_TASK), eligible $(job_field $KILL_TASK EligibleTime)"
requeued_at=$SECONDS
runs_again() { [ "$(job_field $KILL_TASK Restarts)" = 1 ] && [ "$(state_of $KILL_TASK)" != PENDING ]; }
wait_for 60 "task $KILL_TASK to start again" runs_again
say "task $KILL_TASK started again $((SECONDS - requeued_at))s after the requeue"

job_done() {
  local q
  q=$(squeue -h -j "$job" 2>/dev/null) && [ -z "$q" ]
}
wait_for 120 "array job $job to finish" job_done
say "array job $job done after $((SECONDS - t0))s"
for k in $(seq 1 $TASKS); do
  state=$(job_field "$k" JobState) exit=$(job_field "$k" ExitCode)
  say "task $k: $(lines "$tmp/out/out.$k.jsonl") results, $state, exit $exit, restarts $(job_field "$k" Restarts)"
  [ "$state/$exit" = COMPLETED/0:0 ] || die "task $k ended $state with exit $exit (see $tmp/task-$k.log)"
done
log=$tmp/task-$KILL_TASK.log
grep -q "restart count 1" "$log" || die "task $KILL_TASK did not run again"
grep -q "resuming: $before targets already" "$log" ||
  die "task $KILL_TASK's second run did not resume from its $before results"
sed -n "s/^/slurm: task $KILL_TASK log: /p" "$log"

# --- every target exactly once --------------------------------------------------
"$VOLLEY" report --expect "$N" out.*.jsonl
python3 "$root/tests/slurm/exactly_once.py" "$N" out.*.jsonl
cd "$root"
say "ok"
