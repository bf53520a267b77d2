#!/usr/bin/env bash
# The crate as crates.io would get it: `cargo package` must finish without a
# warning (other than cargo naming the tests, benches and example the
# `include` list leaves out on purpose), the package must hold the sources,
# the rule pack, build.rs and the licences and no fixtures or tests, and
# `cargo install` of the unpacked package must give a working binary.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
log=$(mktemp)
root=$(mktemp -d)
trap 'rm -rf "$log" "$root"' EXIT

# --allow-dirty: a local run may have uncommitted edits; CI's checkout is clean.
cargo package --locked --allow-dirty 2>"$log" || { cat "$log" >&2; exit 1; }
if grep '^warning' "$log" | grep -v 'is not included in the published package' >&2; then
    echo "package: cargo package warned (above)" >&2
    exit 1
fi

list=$(cargo package --list --locked --allow-dirty 2>/dev/null)
for must in Cargo.toml Cargo.lock build.rs LICENSE-MIT LICENSE-APACHE README.md src/main.rs src/lib.rs; do
    grep -qx "$must" <<<"$list" || { echo "package: $must missing" >&2; exit 1; }
done
rules_in=$(grep -c '^rules/.*\.toml$' <<<"$list")
rules_here=$(ls rules/*.toml | wc -l)
[ "$rules_in" -eq "$rules_here" ] || { echo "package: $rules_in of $rules_here rule files" >&2; exit 1; }
if grep -E '^(fixtures|tests|benches|examples|scripts|packaging|\.github)/' <<<"$list" >&2; then
    echo "package: ships what it should not (above)" >&2
    exit 1
fi

# Install from the unpacked package (debug profile: the dependencies the
# test build compiled are reused; the point is that the package builds).
cargo install --locked --debug --offline --path "target/package/leakhound-$version" \
    --root "$root" --target-dir target
out=$("$root/bin/leakhound" --version)
[ "$out" = "leakhound $version" ] || { echo "package: --version said: $out" >&2; exit 1; }
"$root/bin/leakhound" rules check >/dev/null
echo "package: ok (leakhound-$version.crate, $rules_in rule files, installs and runs)"
