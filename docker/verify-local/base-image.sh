#!/usr/bin/env bash
# Build a stand-in for node:20-bookworm-slim on a machine that cannot pull from Docker Hub:
# a Debian bookworm minbase root (debootstrap, from the mirror this machine's apt uses, else
# debootstrap's default), this machine's Node 20 (binary, npm, headers) under /usr/local as in the
# official image, a `node` user (uid 1000), and this machine's CA bundle (for an intercepting
# proxy). Imported into podman as node:20-bookworm-slim (stored as localhost/…, which the short
# name in `FROM node:20-bookworm-slim` finds locally), so `podman build -f docker/Dockerfile` uses it.
#
# Needs: Linux, root, and `apt-get install podman buildah debootstrap`. Takes a few minutes.
set -euo pipefail
ROOTFS=${ROOTFS:-/var/tmp/lsinit-node20-bookworm}
TAG=node:20-bookworm-slim

node_bin=$(command -v node)
case "$("$node_bin" -v)" in v20.*) ;; *) echo "base-image: this machine's node is $("$node_bin" -v), not 20.x" >&2; exit 1 ;; esac
npm_dir=$(cd "$(dirname "$(realpath "$(command -v npm)")")/.." && pwd)
headers=''
for d in "$(npm config get nodedir 2>/dev/null || true)" "$(dirname "$node_bin")/.." /usr /usr/local; do
  if [ -n "$d" ] && [ -f "$d/include/node/node.h" ]; then headers=$d/include/node; break; fi
done
[ -n "$headers" ] || { echo "base-image: no Node headers (include/node/node.h) found" >&2; exit 1; }

# The Debian mirror of this machine's apt configuration (deb822 URIs: or a one-line deb entry; not
# the security archive), else none: debootstrap then uses its built-in default.
apt_mirror() {
  { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' /etc/apt/sources.list 2>/dev/null
  } | grep -v -e security -e '^$' | head -n 1 || true
}
if [ ! -x "$ROOTFS/bin/sh" ]; then
  mirror=$(apt_mirror)
  debootstrap --variant=minbase bookworm "$ROOTFS" ${mirror:+"$mirror"}
fi
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/usr/local/lib/node_modules" "$ROOTFS/usr/local/include" "$ROOTFS/etc/ssl/certs"
cp "$node_bin" "$ROOTFS/usr/local/bin/node"
rm -rf "$ROOTFS/usr/local/lib/node_modules/npm" "$ROOTFS/usr/local/include/node"
cp -a "$npm_dir" "$ROOTFS/usr/local/lib/node_modules/npm"
cp -a "$headers" "$ROOTFS/usr/local/include/node"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
chroot "$ROOTFS" sh -c 'id node >/dev/null 2>&1 || { groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node; }'
rm -rf "$ROOTFS/var/lib/apt/lists/"* "$ROOTFS/var/cache/apt/"*.bin

tar -C "$ROOTFS" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' - "$TAG"
echo "base-image: $TAG ready ($("$node_bin" -v), headers from $headers)"
