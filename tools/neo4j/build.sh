#!/usr/bin/env bash
# Build the embedded Neo4j launcher (target/classes + target/dependency/*.jar).
# Idempotent: does nothing when the build is newer than pom.xml and all sources.
# Uses the normal Maven local repository (~/.m2); pass -f/--force to rebuild anyway.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stamp="$here/target/.build-stamp"

force=0
case "${1:-}" in
  -f|--force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 64 ;;
esac

if [[ $force -eq 0 && -f "$stamp" && -f "$here/target/classes/cogo/Neo4jLauncher.class" ]]; then
  newer="$(find "$here/pom.xml" "$here/src" -newer "$stamp" -print -quit)"
  if [[ -z "$newer" ]]; then
    exit 0
  fi
fi

command -v mvn >/dev/null 2>&1 || { echo "build.sh: mvn not found on PATH" >&2; exit 1; }
# Clean the old dependency dir so a version bump does not leave stale jars on the classpath.
rm -rf "$here/target/dependency"
log="$(mktemp)"
if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" package >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "build.sh: maven build failed" >&2
  exit 1
fi
rm -f "$log"
touch "$stamp"
