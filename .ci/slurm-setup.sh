#!/usr/bin/env bash
# A one-node Slurm on this machine, for the launcher test (tests/test_launchers.py): Debian's
# slurmctld, slurmd and munge; no cgroups (proctrack/linuxproc, task/none), no accounting.
# Idempotent: a running, idle node is left as it is. Needs root. Run by .ci/run; by hand:
#   sudo bash .ci/slurm-setup.sh && KVSIM_REQUIRE_SLURM=1 .venv/bin/pytest tests/test_launchers.py
set -euo pipefail

if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
  echo "slurm: node already idle"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm-setup: needs root (apt-get, daemons)" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

# munge: a key, its run directory, the daemon (as the munge user).
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n </dev/null >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
fi
for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.2; done

# slurm.conf: this host as controller and only node, its CPUs and memory as slurmd sees them.
HOST=$(hostname -s)
NODE=$(slurmd -C | head -1 | sed -E 's/ UpTime=.*//')
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
# Written by kvsim's .ci/slurm-setup.sh: one node, no cgroups, no accounting.
ClusterName=kvsim-ci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
${NODE} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for i in $(seq 60); do
  state=$(sinfo -h -o '%T' 2>/dev/null | head -1 || true)
  case "$state" in
    idle) echo "slurm: node ${HOST} idle"; sinfo; exit 0 ;;
    down*|drain*) scontrol update NodeName="${HOST}" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "slurm-setup: the node did not become idle (state '${state:-none}'); logs in /var/log/slurm/" >&2
tail -5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
