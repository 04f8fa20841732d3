#!/bin/sh
# Install the Debian/Ubuntu packages the test suite needs, only those that are missing, as root:
#
#   sudo sh scripts/install-system-deps.sh
#
# `npm test` never installs anything itself: it checks first (test/helpers/requirements.ts) and
# names what is missing. .ci/run calls this script on a clean machine. Packages:
#   openssh-server  sshd and sftp-server for the sftp tests (the package does not start a system sshd in
#                   a container without systemd; the tests run their own on a private 127.0.0.1 port)
#   openssh-client  ssh-keygen (throwaway host and user keys)
#   sqlite3, lz4    the interop tests restore lsinit's replicas with the sqlite3 and lz4 command lines
#   util-linux      unshare(1): the init tests run lsinit as PID 1 of a PID namespace
#   passwd          useradd/userdel/chpasswd: a throwaway user for sshd
#   git             the Docker tests check which files are tracked
#   faketime        libfaketime (a dependency): a real lsinit replicates with its wall clock stepped back
#   (optional) shellcheck and docker-compose: their tests are skipped when the tool is missing
# moto_server (Python moto, for the S3 tests) is not a Debian package here: pip install 'moto[server]'.
set -eu
need=""
[ -x /usr/sbin/sshd ] && [ -x /usr/lib/openssh/sftp-server ] || need="$need openssh-server"
command -v ssh-keygen >/dev/null || need="$need openssh-client"
command -v sqlite3 >/dev/null || need="$need sqlite3"
command -v lz4 >/dev/null || need="$need lz4"
command -v unshare >/dev/null || need="$need util-linux"
command -v useradd >/dev/null || need="$need passwd"
command -v git >/dev/null || need="$need git"
command -v faketime >/dev/null || need="$need faketime"
command -v shellcheck >/dev/null || need="$need shellcheck"
command -v docker-compose >/dev/null || need="$need docker-compose"
if [ -z "$need" ]; then
  echo "install-system-deps: nothing to install"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: missing:$need; run as root: sudo sh scripts/install-system-deps.sh" >&2
  exit 1
fi
echo "install-system-deps: installing:$need"
export DEBIAN_FRONTEND=noninteractive
# Try with the package lists already on the machine; refresh them only when that fails (missing or
# stale lists), so a warm machine makes no extra network requests.
# shellcheck disable=SC2086 # $need is a word list on purpose
if ! apt-get install -y --no-install-recommends $need; then
  apt-get update
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $need
fi
