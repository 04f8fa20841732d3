#!/bin/sh
# Install Debian's OpenSSH server for the sftp backend tests, only when it is missing.
# Idempotent: a machine that already has /usr/sbin/sshd is left alone. The package does not
# start a system sshd when installed in a container without systemd; the tests run their own
# on a private 127.0.0.1 port with a private config (test/servers/sshd.ts).
set -eu
if [ -x /usr/sbin/sshd ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-sshd: /usr/sbin/sshd is missing and we are not root; install openssh-server" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Try with the package lists already on the machine; refresh them only when they are missing or
# stale (an install that fails with 404s), so a warm machine makes no extra network requests.
if ! apt-get install -y --no-install-recommends openssh-server; then
  apt-get update
  apt-get install -y --no-install-recommends openssh-server
fi
test -x /usr/sbin/sshd
