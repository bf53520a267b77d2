#!/usr/bin/env bash
# The whole test suite, runnable on a machine that has only the Rust
# toolchain: installs what the tests need, then runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v pre-commit >/dev/null 2>&1 || need_apt+=(pre-commit)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The image/registry tests run a real registry with TLS and htpasswd auth.
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
# benches/sweep.rs and benches/git.rs report peak RSS from /usr/bin/time -v.
[ -x /usr/bin/time ] || need_apt+=(time)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The ssh clone test runs Debian's sshd on 127.0.0.1 (and ssh-keygen, ssh).
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
# deploy/ tests render with `kubectl kustomize` (the machine image ships
# kubectl with kustomize v5; Debian's kubernetes-client is the fallback).
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PyPI: the Kubernetes schemas for deploy/ (kubernetes-validate, offline)
# and the Prometheus client's OpenMetrics parser for the metrics tests.
need_pip=()
python3 -c "import kubernetes_validate" >/dev/null 2>&1 || need_pip+=(kubernetes-validate)
python3 -c 'import prometheus_client' >/dev/null 2>&1 || need_pip+=(prometheus-client)
if [ ${#need_pip[@]} -gt 0 ]; then
    echo "installing from PyPI: ${need_pip[*]}" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${need_pip[@]}" ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${need_pip[@]}"
fi

cargo test --locked --all-targets

# Dogfood: the checkout itself must be clean under its own .leakhound.toml.
cargo run --locked --quiet -- scan .

# Distribution: the crate as published builds and installs; the static
# binary's image builds, is clean, and runs (installs buildah when missing).
# Together about 5 minutes on a fresh clone (one release build), see README.
bash scripts/package.sh
bash scripts/image-test.sh
