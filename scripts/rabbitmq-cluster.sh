#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback for tests, beside the machine's own broker
# (rabbit@localhost:5672), which it never touches: the nodes have their own names, ports,
# folders, configuration and Erlang cookie.
#
#   scripts/rabbitmq-cluster.sh start         start what is not running, join it; fast when all run
#   scripts/rabbitmq-cluster.sh stop          kill every node and remove everything start made
#   scripts/rabbitmq-cluster.sh status        one line per node: running or down, and its pid
#   scripts/rabbitmq-cluster.sh kill N        SIGKILL node N (a crash); its data stays
#   scripts/rabbitmq-cluster.sh start-node N  start node N again; it rejoins from its own data
#   scripts/rabbitmq-cluster.sh urls          the comma-separated AMQP URLs, for RABBITMQ_URL
#
# Node N is rcN@localhost, AMQP on 127.0.0.1:568N (guest/guest), Erlang distribution on
# 2568N. Everything lives under RABBITMQ_CLUSTER_DIR (default /tmp/rabbitmq-cluster), owned by
# the rabbitmq user, which the nodes run as. Starting nodes is heavy: take the shared lock
# (`flock /tmp/heavy.lock scripts/rabbitmq-cluster.sh start`). Needs root (to run as rabbitmq).
# The nodes register with the machine's epmd (127.0.0.1:4369, started with its broker); where none
# runs, the first node starts one on loopback, and it stays, as epmd does.
set -euo pipefail

DIR="${RABBITMQ_CLUSTER_DIR:-/tmp/rabbitmq-cluster}"
NODES=(1 2 3)
SBIN=/usr/lib/rabbitmq/bin
BOOT_TIMEOUT_S="${RABBITMQ_CLUSTER_BOOT_TIMEOUT_S:-120}"

node_name() { echo "rc$1@localhost"; }
amqp_port() { echo $((5680 + $1)); }
dist_port() { echo $((25680 + $1)); }
node_dir() { echo "$DIR/rc$1"; }
pid_file() { echo "$(node_dir "$1")/rc$1.pid"; }

die() {
  echo "rabbitmq-cluster: $*" >&2
  exit 1
}

check_node_number() {
  [[ "${1:-}" =~ ^[1-3]$ ]] || die "expected a node number from 1 to 3, got '${1:-}'"
}

# The CLI as root, with the cluster's cookie (never the machine broker's).
ctl() {
  HOME="$DIR/home" "$SBIN/rabbitmqctl" "$@"
}

# The node's OS pid when it runs (the pid file names a live beam of that node), else nothing.
node_pid() {
  local file pid
  file="$(pid_file "$1")"
  [[ -s "$file" ]] || return 0
  pid="$(cat "$file")"
  if [[ -r "/proc/$pid/environ" ]] && tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "RABBITMQ_NODENAME=$(node_name "$1")"; then
    echo "$pid"
  fi
}

is_running() { [[ -n "$(node_pid "$1")" ]]; }

# The folder, the shared cookie and each node's own configuration; kept if already there.
prepare() {
  if [[ ! -f "$DIR/home/.erlang.cookie" ]]; then
    mkdir -p "$DIR/home"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
    chmod 400 "$DIR/home/.erlang.cookie"
  fi
  local n dir
  for n in "${NODES[@]}"; do
    dir="$(node_dir "$n")"
    mkdir -p "$dir/log" "$dir/mnesia"
    # The machine's rabbitmq.conf pins its listener to 5672: each node gets its own file.
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$(amqp_port "$n")
loopback_users = none
EOF
    echo '[].' >"$dir/enabled_plugins"
    # Replaces /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node.
    echo 'ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' >"$dir/rabbitmq-env.conf"
  done
  chown -R rabbitmq:rabbitmq "$DIR"
}

# Launches node N in the background, as the rabbitmq user; returns at once.
launch() {
  local n="$1" dir
  dir="$(node_dir "$n")"
  rm -f "$(pid_file "$n")"
  (
    cd "$dir"
    # A node outlives this script: it must not inherit its descriptors, above all the lock of
    # `flock /tmp/heavy.lock scripts/rabbitmq-cluster.sh start`, or it would hold that lock for good.
    for fd in /proc/$BASHPID/fd/*; do
      fd="${fd##*/}"
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env -i \
      PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      HOME="$DIR/home" \
      LANG=C.UTF-8 \
      ERL_EPMD_ADDRESS=127.0.0.1 \
      RABBITMQ_NODENAME="$(node_name "$n")" \
      RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
      RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
      RABBITMQ_DIST_PORT="$(dist_port "$n")" \
      RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
      RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
      RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
      RABBITMQ_MNESIA_BASE="$dir/mnesia" \
      RABBITMQ_LOG_BASE="$dir/log" \
      RABBITMQ_PID_FILE="$(pid_file "$n")" \
      "$SBIN/rabbitmq-server" >"$dir/log/console.log" 2>&1 </dev/null
  ) &
  disown
}

# Polls until node N has booted: `await_startup` fails at once while the VM is not up yet.
await_node() {
  local n="$1" deadline=$((SECONDS + BOOT_TIMEOUT_S))
  until ctl -q -n "$(node_name "$n")" await_startup --timeout 5 >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$(node_dir "$n")/log/console.log" >&2 || true
      die "node $(node_name "$n") did not boot within ${BOOT_TIMEOUT_S} s (logs: $(node_dir "$n")/log)"
    fi
    sleep 0.5
  done
}

# The nodes node N counts as members (running or not), one per line.
members_of() {
  ctl -q -n "$(node_name "$1")" cluster_status --formatter json |
    tr ',[]{}"' '\n' | grep -o '^rc[0-9]@localhost$' | sort -u
}

running_count() {
  ctl -q -n "$(node_name 1)" cluster_status --formatter json |
    sed -n 's/.*"running_nodes":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | grep -c 'rc[0-9]@localhost' || true
}

join() {
  local n="$1" name
  name="$(node_name "$n")"
  if members_of "$n" | grep -qx "$(node_name 1)"; then return 0; fi
  ctl -q -n "$name" stop_app
  ctl -q -n "$name" join_cluster "$(node_name 1)"
  ctl -q -n "$name" start_app
}

cmd_start() {
  if [[ -f "$DIR/home/.erlang.cookie" ]] && is_running 1 && is_running 2 && is_running 3 &&
    [[ "$(running_count)" == 3 ]]; then
    echo "cluster already running: $(cmd_urls)"
    return 0
  fi
  local started=$SECONDS n
  prepare
  for n in "${NODES[@]}"; do is_running "$n" || launch "$n"; done
  for n in "${NODES[@]}"; do await_node "$n"; done
  for n in 2 3; do join "$n"; done
  [[ "$(running_count)" == 3 ]] || die "the nodes did not form one cluster: $(ctl -q -n "$(node_name 1)" cluster_status)"
  echo "cluster of 3 nodes running in $((SECONDS - started)) s: $(cmd_urls)"
}

cmd_stop() {
  local n pid
  for n in "${NODES[@]}"; do
    pid="$(node_pid "$n")"
    if [[ -n "$pid" ]]; then
      kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  done
  rm -rf "$DIR"
  echo "cluster stopped and $DIR removed"
}

cmd_status() {
  local n pid
  for n in "${NODES[@]}"; do
    pid="$(node_pid "$n")"
    if [[ -n "$pid" ]]; then
      echo "$(node_name "$n") running pid=$pid amqp=127.0.0.1:$(amqp_port "$n") rss_mb=$(($(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") / 1024))"
    else
      echo "$(node_name "$n") down amqp=127.0.0.1:$(amqp_port "$n")"
    fi
  done
}

cmd_kill() {
  check_node_number "${1:-}"
  local pid
  pid="$(node_pid "$1")"
  [[ -n "$pid" ]] || die "node $(node_name "$1") is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  echo "killed $(node_name "$1") (pid $pid)"
}

cmd_start_node() {
  check_node_number "${1:-}"
  [[ -f "$DIR/home/.erlang.cookie" ]] || die "no cluster under $DIR: run start first"
  if ! is_running "$1"; then
    local started=$SECONDS
    launch "$1"
    await_node "$1"
    echo "started $(node_name "$1") in $((SECONDS - started)) s"
  else
    echo "$(node_name "$1") already running"
  fi
}

cmd_urls() {
  local n urls=()
  for n in "${NODES[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")"); done
  (
    IFS=,
    echo "${urls[*]}"
  )
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill) cmd_kill "${2:-}" ;;
  start-node) cmd_start_node "${2:-}" ;;
  urls) cmd_urls ;;
  *) die "usage: $0 start|stop|status|kill N|start-node N|urls" ;;
esac
