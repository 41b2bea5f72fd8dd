#!/usr/bin/env bash
# A real one-node Slurm on this machine, for the sweep test and the sweep benchmark:
#   conf=$(scripts/slurm-local.sh start DIR)     starts munged, slurmctld and slurmd with
#   export SLURM_CONF="$conf"                    their state and logs in DIR; prints the
#                                                path of the slurm.conf the clients need
#   scripts/slurm-local.sh stop DIR              stops them and removes DIR
# One node with this machine's CPUs, proctrack/linuxproc and no cgroup or accounting
# plugins (what suits a container), on two free ports. Needs root (slurmd runs jobs as their
# users) and `scripts/setup.sh slurm`.
set -euo pipefail
action="${1:-}"
dir="${2:-}"
[ -n "$dir" ] || { echo "usage: scripts/slurm-local.sh start|stop DIR" >&2; exit 2; }

stop() {
  for daemon in slurmd slurmctld; do
    if [ -f "$dir/$daemon.pid" ]; then kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true; fi
  done
  if [ -S "$dir/munge/munge.socket" ]; then
    runuser -u munge -- munged --socket="$dir/munge/munge.socket" --stop 2>/dev/null || true
  fi
  sleep 1
  rm -rf "$dir"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  [ "$(id -u)" -eq 0 ] || { echo "slurm-local: root is needed to run slurmd" >&2; exit 1; }
  for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { echo "slurm-local: $tool missing: run scripts/setup.sh slurm" >&2; exit 1; }
  done
  rm -rf "$dir"
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  runuser -u munge -- test -x "$dir/munge" ||
    { echo "slurm-local: the munge user cannot reach $dir (a parent directory is private)" >&2; exit 1; }
  # munge: its own socket and key in DIR, so a system munged (if any) is left alone.
  chown munge:munge "$dir/munge" 2>/dev/null || true
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=128 status=none
  chown munge:munge "$dir/munge/munge.key" 2>/dev/null || true
  chmod 400 "$dir/munge/munge.key"
  local socket="$dir/munge/munge.socket"
  runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed" --force >&2
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=lthlab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MinJobAge=600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=lab Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld >&2
  slurmd >&2
  # Ready when the node is idle.
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then
      echo "$dir/slurm.conf"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm-local: the node did not come up; logs:" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  stop
  exit 1
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/slurm-local.sh start|stop DIR" >&2; exit 2 ;;
esac
