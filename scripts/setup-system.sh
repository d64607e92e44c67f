#!/usr/bin/env bash
# System packages the test suite uses as real, independent peers: kcat (a Kafka client
# that is not ours), prometheus (a real scraper) and chromium (renders the HTML report).
# Java 17 and Maven run the local Kafka broker. Podman (with runc and its network stack;
# podman-compose comes from pip) builds and runs the image when no Docker daemon answers;
# debootstrap builds stand-ins for images no registry serves. Idempotent: installs only what
# is missing.
set -euo pipefail

# With --broker-only, just what the local Kafka broker needs (the demo's case).
missing=()
if [ "${1:-}" != "--broker-only" ]; then
  command -v kcat >/dev/null || missing+=(kcat)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v chromium >/dev/null || missing+=(chromium)
  # the secured-broker tests make a throwaway CA and broker certificate
  command -v openssl >/dev/null || missing+=(openssl)
  if ! docker info >/dev/null 2>&1; then
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v iptables >/dev/null || missing+=(iptables)
    [ -x /usr/lib/podman/netavark ] || missing+=(netavark aardvark-dns)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
  fi
fi
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
