#!/usr/bin/env bash
# The Debian package, built, installed and run (CI, after the README's test command): packages the
# programs that command built (debug builds with the test features: this checks the package, not
# release binaries), installs it with dpkg, runs each program from /usr/bin once (versions, a
# self-test of the packaged model, a conversion, hood-watch on its embedded feed), checks the
# maintainer script's work (user, /var/lib/hood, the model copy, the conffile), verifies the
# systemd unit with `systemd-analyze verify`, then purges the package. Needs root (dpkg -i).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d)"
cleanup() {
  dpkg -P hood > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
t0=$SECONDS
# The same build as scripts/test.sh (nothing is rebuilt after it).
cargo test -q --workspace --all-targets --features "$HOOD_TEST_FEATURES" --no-run
deb="$(bash scripts/package_deb.sh "$target/debug" "$work")"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Depends:/p'
dpkg-deb --contents "$deb" | awk '{ print $NF }' | grep -x './usr/bin/hood-convert' > /dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$deb" \
  > "$work/install.log" || { cat "$work/install.log"; exit 1; }
hood --version
hood-convert --version
hood-watch --version
hood selftest /usr/share/hood/models/heat-wrn40-2-cifar10.hood --backend cpu
getent passwd hood > /dev/null
test "$(stat -c %U /var/lib/hood)" = hood
cmp /var/lib/hood/model.hood /usr/share/hood/models/heat-wrn40-2-cifar10.hood
grep -qx /etc/hood/hood-watch.toml /var/lib/dpkg/info/hood.conffiles
hood-convert models/heat-wrn40-2-cifar10/classifier.pt models/heat-wrn40-2-cifar10/decoder.pt \
  "$work/m.hood" --classes models/heat-wrn40-2-cifar10/classes.txt > /dev/null
hood selftest "$work/m.hood" --backend cpu > /dev/null
(cd "$work" && hood-watch --backend cpu > watch.log 2>&1)
grep -q '"event":"raised"' "$work/hood-watch-out/events.jsonl"
test -s /usr/share/man/man1/hood-convert.1.gz && test -s /usr/share/man/man1/hood-watch.1.gz
grep -q -- "--backend" /usr/share/bash-completion/completions/hood
systemd-analyze verify /lib/systemd/system/hood-watch.service
$SUDO dpkg -P hood > /dev/null
for f in /usr/bin/hood /usr/bin/hood-convert /usr/bin/hood-watch /etc/hood/hood-watch.toml; do
  if [ -e "$f" ]; then
    echo "package-check: $f still there after the purge" >&2
    exit 1
  fi
done
echo "package-check: built, installed, ran and purged $(basename "$deb") in $((SECONDS - t0)) s"
