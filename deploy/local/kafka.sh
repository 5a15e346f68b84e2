#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) on 127.0.0.1,
# run from its Maven Central artifacts. Nothing here is downloaded into git:
# jars live in Maven's local repository, the classpath in $ENGAGE_CACHE_DIR.
#
#   kafka.sh install            resolve the jars (idempotent)
#   kafka.sh start              format storage if new, start, wait until it answers
#   kafka.sh stop               stop the broker started from this data dir
#   kafka.sh status             exit 0 when it is running
#   kafka.sh run                format if new, run in the foreground (exec)
#
# Exit codes: 0 ok, 1 the broker failed, 2 usage, 3 java/mvn missing, 4 a port is taken.
# Environment: ENGAGE_KAFKA_PORT (9092), ENGAGE_KAFKA_CONTROLLER_PORT (port+1),
# ENGAGE_DATA_DIR (./.engage-data), ENGAGE_KAFKA_PARTITIONS (8), ENGAGE_KAFKA_HEAP (768m).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/kafka/pom.xml"
PORT="${ENGAGE_KAFKA_PORT:-9092}"
CPORT="${ENGAGE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DATA="${ENGAGE_DATA_DIR:-$PWD/.engage-data}/kafka"
CACHE="${ENGAGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/engage}"
PARTITIONS="${ENGAGE_KAFKA_PARTITIONS:-8}"
HEAP="${ENGAGE_KAFKA_HEAP:-768m}"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
CLASSPATH_FILE="$CACHE/kafka-$VERSION.classpath"

need() {
  command -v java >/dev/null || { echo "kafka.sh: java not found: install a JDK 17+ (apt-get install -y openjdk-17-jre-headless)" >&2; exit 3; }
  command -v mvn >/dev/null || [ -s "$CLASSPATH_FILE" ] || { echo "kafka.sh: mvn not found: install Maven (apt-get install -y maven) to fetch Kafka's jars" >&2; exit 3; }
}

install() {
  need
  if [ -s "$CLASSPATH_FILE" ] && tr ':' '\n' <"$CLASSPATH_FILE" | while read -r j; do [ -f "$j" ] || exit 1; done; then
    return 0
  fi
  mkdir -p "$CACHE"
  echo "kafka.sh: resolving Apache Kafka $VERSION with Maven (first run only)" >&2
  mvn -q -B -f "$POM" dependency:build-classpath -Dmdep.outputFile="$CLASSPATH_FILE.tmp" >&2
  mv "$CLASSPATH_FILE.tmp" "$CLASSPATH_FILE"
}

write_config() {
  mkdir -p "$DATA/logs"
  cat >"$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/logs
num.partitions=$PARTITIONS
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=-1
PROPS
}

java_cmd() {
  echo java -Xms256m "-Xmx$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info \
    -cp "$(cat "$CLASSPATH_FILE")"
}

format() {
  write_config
  if [ ! -f "$DATA/logs/meta.properties" ]; then
    local id
    # never starts with '-' (the storage tool would take it for an option): see cluster_id.py
    id="$(python3 "$HERE/cluster_id.py")"
    $(java_cmd) kafka.tools.StorageTool format --cluster-id="$id" -c "$DATA/server.properties" >"$DATA/format.log" 2>&1 \
      || { cat "$DATA/format.log" >&2; exit 1; }
  fi
}

running_pid() {
  [ -f "$DATA/broker.pid" ] || return 1
  local pid; pid="$(cat "$DATA/broker.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  # a broker killed while its parent was gone may linger as a zombie nobody reaps: not running
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Another process (any Kafka, a left-over broker of another data dir) must not be taken for ours.
ports_free() {
  local p
  for p in "$PORT" "$CPORT"; do
    if port_open "$p"; then
      echo "kafka.sh: port $p on 127.0.0.1 is already in use by another process: stop it, or pick other ports with ENGAGE_KAFKA_PORT (and ENGAGE_KAFKA_CONTROLLER_PORT)" >&2
      exit 4
    fi
  done
}

wait_port() {
  for _ in $(seq 1 240); do
    if port_open "$PORT"; then return 0; fi
    running_pid >/dev/null || { echo "kafka.sh: broker exited; last lines of $DATA/broker.log:" >&2; tail -20 "$DATA/broker.log" >&2; exit 1; }
    sleep 0.25
  done
  echo "kafka.sh: broker did not open 127.0.0.1:$PORT within 60s; see $DATA/broker.log" >&2; exit 1
}

case "${1:-}" in
  install) install ;;
  start)
    install; format
    if running_pid >/dev/null; then echo "kafka.sh: already running on 127.0.0.1:$PORT" >&2; exit 0; fi
    ports_free
    # setsid: the broker survives a Ctrl-C meant for the caller; `stop` ends it.
    setsid $(java_cmd) kafka.Kafka "$DATA/server.properties" >"$DATA/broker.log" 2>&1 </dev/null &
    echo $! >"$DATA/broker.pid"
    wait_port
    echo "kafka.sh: Apache Kafka $VERSION on 127.0.0.1:$PORT (data: $DATA)" >&2 ;;
  run)
    # in the foreground, as a child of whoever runs it (engage's local stack makes it die with its parent)
    if running_pid >/dev/null; then echo "kafka.sh: a broker from $DATA already runs (pid $(cat "$DATA/broker.pid"))" >&2; exit 4; fi
    ports_free
    install; format
    echo $$ >"$DATA/broker.pid"  # exec keeps this pid
    exec $(java_cmd) kafka.Kafka "$DATA/server.properties" ;;
  stop)
    if pid="$(running_pid)"; then
      kill "$pid"
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DATA/broker.pid" ;;
  status) running_pid >/dev/null ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
