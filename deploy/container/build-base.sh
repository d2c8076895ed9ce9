#!/usr/bin/env bash
# Builds a local stand-in for node:22-bookworm-slim where no public base image can be pulled:
# a Debian minbase root file system made by debootstrap from this machine's own Debian mirror,
# the node binary and npm this machine already runs (`command -v node`), a `node` user with
# uid/gid 1000 as in the official image, imported into podman's storage.
#
#   deploy/container/build-base.sh TAG
#
# Then: podman build --build-arg NODE_IMAGE=TAG ... (the Dockerfile takes its base as NODE_IMAGE).
# Runs as root (debootstrap needs it). Prints nothing on stdout but the tag; progress on stderr.
set -euo pipefail

tag=${1:?usage: build-base.sh TAG}
# PODMAN: the podman command line to use, words split on blanks (ci-image.sh passes its storage flags).
read -ra podman <<<"${PODMAN:-podman}"

say() { echo "container: $*" >&2; }

node_bin=$(command -v node) || { say "FAIL: no node on PATH to put in the base image"; exit 1; }
node_bin=$(readlink -f "$node_bin")
npm_dir=$(readlink -f "$(command -v npm)" 2>/dev/null || true)
npm_dir=${npm_dir%/bin/npm-cli.js}
[[ -f $npm_dir/package.json ]] || { say "FAIL: cannot find npm's directory next to $node_bin"; exit 1; }

# The suite and mirror this machine installs from: the node binary links against this glibc.
. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
mirror=${FEEDKEEPER_DEBIAN_MIRROR:-}
if [[ -z $mirror && -f /etc/apt/sources.list.d/debian.sources ]]; then
  mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /var/tmp/feedkeeper-base.XXXXXX)
cleanup() {
  for m in proc sys dev/pts dev; do
    if mountpoint -q "$rootfs/$m" 2>/dev/null; then umount -l "$rootfs/$m" || true; fi
  done
  rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

started=$SECONDS
say "debootstrap --variant=minbase $suite from $mirror"
log=$rootfs.log
# The downloaded packages are kept for the next base (a new node or a changed script).
cache=/var/cache/feedkeeper-ci/debootstrap
mkdir -p "$cache"
if ! debootstrap --variant=minbase --cache-dir="$cache" "$suite" "$rootfs" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  rm -f "$log"
  say "FAIL: debootstrap $suite from $mirror failed"
  exit 1
fi
rm -f "$log"

# The official image's layout: /usr/local/bin/node, npm under /usr/local/lib/node_modules.
install -m 755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chroot "$rootfs" /usr/sbin/groupadd --gid 1000 node
chroot "$rootfs" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
say "debootstrap done in $((SECONDS - started)) s"
node_version=$(env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$rootfs" /usr/local/bin/node --version)
npm_version=$(env -u NODE_EXTRA_CA_CERTS -u NODE_OPTIONS chroot "$rootfs" /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js --version)
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/root/.npm

tar --numeric-owner -C "$rootfs" -cf - . | "${podman[@]}" import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change 'CMD ["node"]' \
  --message "feedkeeper local base: debootstrap $suite minbase, node $node_version, npm $npm_version" \
  - "$tag" >/dev/null
say "base $tag: debian $suite minbase, node $node_version, npm $npm_version, built in $((SECONDS - started)) s"
echo "$tag"
