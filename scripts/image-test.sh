#!/usr/bin/env bash
# The container image, end to end on one machine, no daemon and no network:
#  1. a statically linked release binary (glibc, -C target-feature=+crt-static);
#  2. an image around it from packaging/Containerfile.binary, built with
#     Debian's buildah (vfs storage, chroot isolation: works as root without
#     a daemon or user namespaces);
#  3. pushed to a local docker-registry on 127.0.0.1, with a second image that
#     adds one planted fake secret on top;
#  4. both scanned with `leakhound image`: the release image must be clean,
#     the planted one must report exactly the planted file;
#  5. the binary inside started with `buildah run ... leakhound --version`.
# Installs buildah and docker-registry with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v readelf >/dev/null 2>&1 || need_apt+=(binutils)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
triple=$(rustc -vV | sed -n 's/^host: //p')
case "$triple" in
    x86_64-*) arch=amd64 ;;
    aarch64-*) arch=arm64 ;;
    *) echo "image-test: no image architecture for $triple" >&2; exit 1 ;;
esac

# 1. Static binary. Its own target directory: other RUSTFLAGS would
# invalidate the test build's artifacts.
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" --target-dir target/static
bin="target/static/$triple/release/leakhound"
if readelf -l "$bin" | grep -q 'program interpreter'; then
    echo "image-test: $bin is dynamically linked" >&2
    exit 1
fi

work=$(mktemp -d)
registry_pid=
cleanup() {
    # Under set -e a failing last command of an && list ends the shell, and
    # wait returns the killed registry's 143: that must not become our status.
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    buildah "${store[@]}" rm --all >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)

# 2. The build context packaging/Containerfile.binary expects.
ctx="$work/ctx"
mkdir -p "$ctx/bin" "$ctx/home" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp"
strip -o "$ctx/bin/leakhound-linux-$arch" "$bin"
cp -a packaging/rootfs/. "$ctx/rootfs/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
chmod 1777 "$ctx/rootfs/tmp"
buildah "${store[@]}" bud --isolation chroot --quiet \
    --build-arg "VERSION=$version" --build-arg "TARGETARCH=$arch" \
    -f packaging/Containerfile.binary -t localhost/leakhound:test "$ctx" >/dev/null

# The planted image: one fake secret on top of the release image. The value
# is put together here so that this script itself holds no secret.
mkdir -p "$work/planted"
prefix=sk_liv
printf 'STRIPE_KEY=%se_4eC39HqLyjWDarjtT1zdp7dc9x\n' "$prefix" >"$work/planted/planted.env"
printf 'FROM localhost/leakhound:test\nCOPY planted.env /home/leakhound/planted.env\n' \
    >"$work/planted/Containerfile"
buildah "${store[@]}" bud --isolation chroot --quiet --pull-never \
    -f "$work/planted/Containerfile" -t localhost/leakhound:planted "$work/planted" >/dev/null

# 3. A local registry, plain HTTP on 127.0.0.1.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
  secret: leakhound-image-test
YML
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
host="127.0.0.1:$port"
for tag in test planted; do
    buildah "${store[@]}" push --quiet --tls-verify=false \
        "localhost/leakhound:$tag" "docker://$host/leakhound:$tag" >/dev/null
done

# 4. Scans. The release image: nothing (exit 0). The planted image: exit 1,
# and every finding in the planted file.
"$bin" image "$host/leakhound:test" --insecure --format json --output "$work/clean.json" || {
    echo "image-test: the release image is not clean:" >&2
    cat "$work/clean.json" >&2
    exit 1
}
set +e
"$bin" image "$host/leakhound:planted" --insecure --format json --output "$work/planted.json"
code=$?
set -e
python3 - "$work/clean.json" "$work/planted.json" "$code" <<'PY'
import json, sys
clean = json.load(open(sys.argv[1]))
planted = json.load(open(sys.argv[2]))
code = int(sys.argv[3])
assert clean == [], clean
assert code == 1, f"planted image: exit {code}"
paths = sorted({f["path"] for f in planted})
assert paths == ["home/leakhound/planted.env"], paths
assert [f["rule_id"] for f in planted] == ["stripe-live-secret-key"], planted
print(f"image-test: release image clean; planted image: {len(planted)} finding in {paths[0]}")
PY

# 5. The binary inside the image starts, as the image's non-root user.
ctr=$(buildah "${store[@]}" from --pull-never "localhost/leakhound:test")
out=$(buildah "${store[@]}" run --isolation chroot "$ctr" -- leakhound --version)
[ "$out" = "leakhound $version" ] || { echo "image-test: --version said: $out" >&2; exit 1; }
buildah "${store[@]}" inspect --type image localhost/leakhound:test >"$work/inspect.json"
python3 - "$version" "$work/inspect.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[2]))["OCIv1"]["config"]
assert c["User"] == "65532:65532", c["User"]
assert c["Entrypoint"] == ["leakhound"], c["Entrypoint"]
l = c["Labels"]
assert l["org.opencontainers.image.version"] == sys.argv[1], l
assert l["org.opencontainers.image.licenses"] == "MIT OR Apache-2.0", l
assert l["org.opencontainers.image.source"] == "https://github.com/leakhound/leakhound", l
PY
echo "image-test: ok ($out inside the image, $(du -h "$ctx/bin/leakhound-linux-$arch" | cut -f1) binary)"
