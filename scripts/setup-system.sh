#!/usr/bin/env bash
# System packages, installed only where missing (idempotent).
#   --demo  what `make demo` needs: Python's venv module (Debian's python3-venv), Java 17+
#           for the local Kafka broker, and Maven for its first jar fetch. Needs no root
#           when they are present.
#   (none)  also the test suite's real, independent peers: kcat (a Kafka client that is
#           not ours), prometheus (a real scraper), chromium (renders the HTML report),
#           openssl (a throwaway CA for the secured-broker tests), and, when no Docker
#           daemon answers, Podman with runc and its network stack (podman-compose comes
#           from pip) and debootstrap (stand-ins for images no registry serves).
set -euo pipefail

missing=()
if [ "${1:-}" != "--demo" ]; then
  command -v kcat >/dev/null || missing+=(kcat)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v openssl >/dev/null || missing+=(openssl)
  if ! docker info >/dev/null 2>&1; then
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v iptables >/dev/null || missing+=(iptables)
    [ -x /usr/lib/podman/netavark ] || missing+=(netavark aardvark-dns)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
  fi
fi
python="${PYTHON:-python3}"
# Debian splits `python3 -m venv` out of python3: its ensurepip is missing without it.
"$python" -c 'import ensurepip' 2>/dev/null || missing+=("$(basename "$python")-venv")

java_major() {  # "17" from 'openjdk version "17.0.15"', "8" from '"1.8.0_392"'
  java -version 2>&1 | sed -n 's/.* version "\(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n 1
}
if ! command -v java >/dev/null; then
  missing+=(openjdk-17-jre-headless)
fi
# Maven resolves the broker's jars once; with them fetched (`gnosis kafka fetch`), the
# demo needs no Maven.
kafka_jars="${GNOSIS_KAFKA_HOME:-.cache/kafka/$(sed -n 's/^KAFKA_VERSION = "\(.*\)"/\1/p' \
  gnosis/streams/kafka/broker.py)}/libs"
if ! command -v mvn >/dev/null && ! ls "$kafka_jars"/kafka_2.13-*.jar >/dev/null 2>&1; then
  missing+=(maven)
fi

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "error: missing system packages: ${missing[*]} (install them as root:" \
           "apt-get install ${missing[*]})" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

major="$(java_major)"
if [ -z "$major" ] || [ "$major" -lt 17 ]; then
  echo "error: the local Kafka broker needs Java 17 or later; \`java -version\` says" \
       "${major:-nothing}: install openjdk-17-jre-headless (or newer) and put it first on PATH" >&2
  exit 1
fi
