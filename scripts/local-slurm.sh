#!/usr/bin/env bash
# A SLURM cluster on this machine, from Debian's slurm-wlm and munge, for trying sarexp's SLURM launches
# (launcher=slurm) on a laptop and for the SLURM tests. Needs root (or sudo).
#   scripts/local-slurm.sh start      # install if needed, write the config, start munged/slurmctld/slurmd
#   scripts/local-slurm.sh start N    # N simulated nodes sarexp-node1..N (one slurmd -N each, own port,
#                                     # names in /etc/hosts), each advertising the whole machine's CPUs and
#                                     # memory, so one-node jobs run as before and N-node jobs get N nodes
#   scripts/local-slurm.sh status     # sinfo
#   scripts/local-slurm.sh stop       # stop the daemons (configuration and packages stay)
# Starting with another N than the running cluster restarts the daemons with the new node list.
set -euo pipefail

HOST="$(hostname)"
CPUS="$(nproc)"
MEMORY_MB="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
CONF_DIR=/etc/slurm
NODES="${2:-1}"
FIRST_PORT=17001

install_packages() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
    fi
}

start_munge() {
    if running /run/munge/munged.pid; then return; fi
    mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
}

write_config() {
    mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/log/slurm
    for name in $(node_names); do mkdir -p "/var/spool/slurmd/$name"; done
    cat > "$CONF_DIR/slurm.conf.new" <<CONF
# Written by sarexp scripts/local-slurm.sh: $NODES node(s) on this host, one partition, no accounting.
ClusterName=sarexp-local
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
# A requeued job waits for the credential lifetime before it may start again (120 s by default).
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=2
MinJobAge=600
KillWait=10
$(node_lines)
PartitionName=debug Nodes=$(node_list) Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

node_names() {
    if [ "$NODES" -eq 1 ]; then echo "$HOST"; else seq -f "sarexp-node%g" 1 "$NODES"; fi
}

node_list() {
    if [ "$NODES" -eq 1 ]; then echo "$HOST"; else echo "sarexp-node[1-$NODES]"; fi
}

# One line per node; several nodes share this host (and its CPUs), each slurmd on its own port.
node_lines() {
    if [ "$NODES" -eq 1 ]; then
        echo "NodeName=$HOST CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN"
        return
    fi
    local index=0 name
    for name in $(node_names); do
        echo "NodeName=$name NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((FIRST_PORT + index))" \
             "CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN"
        index=$((index + 1))
    done
}

# Node names must resolve on every "node" (torch.distributed's master address is the first node's name).
resolve_node_names() {
    local name
    for name in $(node_names); do
        [ "$name" = "$HOST" ] && continue
        grep -qE "[[:space:]]$name([[:space:]]|\$)" /etc/hosts || echo "127.0.0.1 $name" >> /etc/hosts
    done
}

start() {
    install_packages
    start_munge
    write_config
    resolve_node_names
    if ! cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"; then
        stop_slurm  # another node list: restart with the new configuration
        mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
    else
        rm -f "$CONF_DIR/slurm.conf.new"
    fi
    running /run/slurmctld.pid || slurmctld
    local name
    for name in $(node_names); do
        running "/run/slurmd-$name.pid" || slurmd -N "$name"
    done
    for _ in $(seq 1 30); do
        if [ "$(sinfo -h -o '%T %D' 2>/dev/null | awk '$1 ~ /^(idle|mixed|allocated)$/ {n += $2} END {print n + 0}')" \
             -ge "$NODES" ]; then
            sinfo
            return 0
        fi
        sleep 1
    done
    echo "error: the local SLURM nodes did not become idle; see /var/log/slurm/slurmctld.log and slurmd-*.log" >&2
    return 1
}

# Whether the daemon whose pid file is $1 runs.
running() {
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Stop slurmctld and every slurmd by their pid files (never by process name: other users' daemons stay).
stop_slurm() {
    scontrol shutdown >/dev/null 2>&1 || true
    local pid_file
    for pid_file in /run/slurmd-*.pid /run/slurmctld.pid; do
        if running "$pid_file"; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
    done
    for _ in $(seq 1 20); do
        local alive=0
        for pid_file in /run/slurmd-*.pid /run/slurmctld.pid; do running "$pid_file" && alive=1; done
        [ "$alive" -eq 0 ] && return 0
        sleep 0.5
    done
}

stop() {
    stop_slurm
    if running /run/munge/munged.pid; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start [NODES]|status|stop" >&2; exit 2 ;;
esac
