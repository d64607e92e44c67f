#!/bin/bash
# The official image's configuration rule: every KAFKA_<NAME> variable (except the JVM and
# logging ones) becomes a server property, with "___" -> "-", "__" -> "_", "_" -> "." and
# lower case; CLUSTER_ID names the cluster. Storage is formatted on first start.
set -euo pipefail
props=/opt/kafka/config/server.properties
: > "$props"
for name in $(compgen -e); do
  case "$name" in
    KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS \
      | KAFKA_JMX_* | KAFKA_LOG4J_* | KAFKA_TOOLS_LOG4J_LOGLEVEL) continue ;;
    KAFKA_*) ;;
    *) continue ;;
  esac
  key=${name#KAFKA_}
  key=${key//___/-}
  key=${key//__/@}
  key=${key//_/.}
  key=${key//@/_}
  printf '%s=%s\n' "${key,,}" "${!name}" >> "$props"
done
java=(java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m} ${KAFKA_OPTS:-}
      -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.yaml -cp '/opt/kafka/libs/*')
"${java[@]}" kafka.tools.StorageTool format --ignore-formatted \
  -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$props"
exec "${java[@]}" kafka.Kafka "$props"
