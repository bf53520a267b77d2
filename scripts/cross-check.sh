#!/usr/bin/env bash
# Type-checks leakhound for macOS and Windows from Linux: `cargo check
# --target T` for each target given (default: x86_64-apple-darwin,
# aarch64-apple-darwin, x86_64-pc-windows-msvc).
#
# C code in dependencies (ring, zstd-sys) cannot be compiled here: there is no
# macOS SDK or MSVC. `check` never links, so a stand-in compiler that writes
# empty object files lets the build scripts finish; the Rust code, ours and
# the dependencies', is fully type-checked for the target. Real builds of
# these targets happen in .github/workflows/release.yml on their own runners.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-msvc)

stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
cat >"$stub/cc" <<'CC'
#!/bin/sh
# Writes an empty object for every -o; accepts any flags (check never links).
while [ $# -gt 0 ]; do
    case "$1" in
        -o) : >"$2"; shift ;;
        -Fo*) : >"${1#-Fo}" ;;
    esac
    shift
done
exit 0
CC
# MSVC's archiver (lib.exe) is called as `lib -out:FILE ...`: an empty one.
cat >"$stub/lib" <<'LIB'
#!/bin/sh
for a in "$@"; do
    case "$a" in -out:*|-OUT:*) : >"${a#-[oO][uU][tT]:}" ;; esac
done
exit 0
LIB
chmod +x "$stub/cc" "$stub/lib"

for t in "${targets[@]}"; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    var=${t//-/_}
    echo "== cargo check --target $t" >&2
    case "$t" in *-msvc) ar="$stub/lib" ;; *) ar=ar ;; esac
    env "CC_$var=$stub/cc" "CXX_$var=$stub/cc" "AR_$var=$ar" \
        cargo check --locked --target "$t" --target-dir target/cross
done
