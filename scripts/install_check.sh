#!/usr/bin/env bash
# Installs hood, convert and hood-watch with `cargo install` (as README "Installing" says, but as
# debug builds into a temporary root, reusing the test build's target folder), then runs each
# installed program once: versions, a self-test of the bundled model, a conversion of the bundled
# checkpoint, hood-watch on its embedded feed, completions and man pages. Called by .ci/run after
# the README's test command; runs on its own too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
t0=$SECONDS
for crate in cli convert firmware; do
  cargo install -q --locked --debug --path "$crate" --root "$root"
done
bin="$root/bin"
"$bin/hood" --version
"$bin/convert" --version
"$bin/hood-watch" --version
"$bin/hood" selftest models/heat-wrn40-2-cifar10.hood --backend cpu
"$bin/convert" models/heat-wrn40-2-cifar10/classifier.pt models/heat-wrn40-2-cifar10/decoder.pt \
  "$root/m.hood" --classes models/heat-wrn40-2-cifar10/classes.txt > "$root/convert.txt"
head -n 1 "$root/convert.txt"
"$bin/hood" selftest "$root/m.hood" --backend reference
(cd "$root" && "$bin/hood-watch" --backend cpu > watch.log 2>&1)
grep -q "\"event\":\"raised\"" "$root/hood-watch-out/events.jsonl"
"$bin/hood" completions bash > "$root/hood.bash"
grep -q -- "--backend" "$root/hood.bash"
"$bin/hood" man-pages "$root/man" > /dev/null
"$bin/convert" --man-pages "$root/man" > /dev/null
"$bin/hood-watch" --man-pages "$root/man" > /dev/null
test -s "$root/man/hood-infer.1" && test -s "$root/man/convert.1" && test -s "$root/man/hood-watch.1"
echo "install-check: installed and ran hood, convert and hood-watch in $((SECONDS - t0)) s"
