#!/usr/bin/env bash
# Run the embedded Neo4j 5.26 server with Bolt on 127.0.0.1:PORT.
#   tools/neo4j/run.sh --port N --data DIR [--password PW]
# Prints "NEO4J READY bolt://127.0.0.1:N" on stdout when ready; SIGTERM stops it cleanly.
# Env: JAVA_HOME (else java on PATH; Java 17+), NEO4J_HEAP (default 512m),
#      NEO4J_JAVA_OPTS (extra JVM options), NEO4J_SKIP_BUILD=1 (don't run build.sh first).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ "${NEO4J_SKIP_BUILD:-0}" != 1 ]]; then
  "$here/build.sh" >&2
fi

if [[ -n "${JAVA_HOME:-}" ]]; then
  java="$JAVA_HOME/bin/java"
else
  java="$(command -v java || true)"
fi
if [[ -z "$java" || ! -x "$java" ]]; then
  echo "run.sh: no java found (set JAVA_HOME or put java 17+ on PATH)" >&2
  exit 1
fi

# Feature version, e.g. 17 from 'version "17.0.15"', 25 from 'version "25.0.3"'.
jver="$("$java" -version 2>&1 | sed -n 's/.* version "\([0-9][0-9]*\).*/\1/p' | head -n1)"
if [[ -z "$jver" || "$jver" -lt 17 ]]; then
  echo "run.sh: $java is Java ${jver:-?}; Neo4j 5.26 needs Java 17+" >&2
  exit 1
fi

# Heap plus the JVM flags Neo4j 5.26's own neo4j.conf ships with.
opts=(
  -Xms64m "-Xmx${NEO4J_HEAP:-512m}"
  -XX:-OmitStackTraceInFastThrow
  -XX:+ExitOnOutOfMemoryError
  -Djdk.nio.maxCachedBufferSize=1024
  -Dio.netty.tryReflectionSetAccessible=true
  -Dlog4j2.disable.jmx=true
  -Dfile.encoding=UTF-8
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --enable-native-access=ALL-UNNAMED
)
# Serial GC: ~60-80 MB less RSS than G1 for this small heap, same start-up time.
# Choose another collector with NEO4J_JAVA_OPTS (e.g. -XX:+UseG1GC).
if [[ "${NEO4J_JAVA_OPTS:-}" != *-XX:+Use*GC* ]]; then
  opts+=(-XX:+UseSerialGC)
fi
if [[ "$jver" -ge 24 ]]; then
  # JDK 24+ warns on sun.misc.Unsafe memory access, which Neo4j 5.26 uses (JEP 498).
  opts+=(--sun-misc-unsafe-memory-access=allow)
fi
# shellcheck disable=SC2206
extra=(${NEO4J_JAVA_OPTS:-})

exec "$java" "${opts[@]}" "${extra[@]}" \
  -cp "$here/target/classes:$here/target/dependency/*" \
  cogo.Neo4jLauncher "$@"
