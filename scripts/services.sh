#!/usr/bin/env bash
# Makes sure the backends the tests use are up on loopback: PostgreSQL 127.0.0.1:5432 (database
# `test`, trust auth), Redis 127.0.0.1:6379, NATS with JetStream 127.0.0.1:4222. Starts any that
# is down; installs it from Debian's packages first if it is missing.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    up "$port" && return 0
    sleep 0.5
  done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

apt_install() {
  [ "$(id -u)" = 0 ] || { echo "services: $* missing; install it (apt-get install $*)" >&2; return 1; }
  if [ -z "${TONGBAN_APT_UPDATED:-}" ]; then apt-get update -qq; export TONGBAN_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! up 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  wait_up PostgreSQL 5432
fi
# The tests connect as postgres with trust auth to database `test`.
if command -v psql >/dev/null && ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null 2>&1 || true
fi

if ! up 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up Redis 6379
fi

if ! up 4222; then
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_up NATS 4222
fi
echo "services: PostgreSQL :5432, Redis :6379, NATS :4222 are up"
