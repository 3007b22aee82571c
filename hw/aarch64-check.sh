#!/usr/bin/env bash
# Proof on aarch64: install the agent in arm64 Debian roots (bookworm/Python 3.11 and
# trixie/Python 3.13, like 64-bit Raspberry Pi OS) under qemu-user 10 and compare with x86.
#
#   sudo hw/aarch64-check.sh [SUITE...]      (default: bookworm trixie; `make aarch64-check`)
#
# Everything comes from Debian's archive: debootstrap builds each root once and keeps it in
# $EDGE_AGENT_CI_CACHE (default /var/cache/edge-agent-ci) for the next run; the static
# qemu-aarch64 comes from Debian 13's `qemu-user` package (Debian 12's qemu-user-static 7.2
# segfaults inside ai-edge-litert's allocate_tensors()) and is registered with binfmt_misc with
# flag F, so it runs inside chroots. Each run installs the working tree afresh in a venv that
# sees Debian's packages, then runs `edge-agent --version`, `detect` on grace_hopper and a short
# replay of the real clip, and compares the results with the same commands run on this x86 host.
set -euo pipefail

cd "$(dirname "$0")/.."
SRC=$(pwd)
CACHE=${EDGE_AGENT_CI_CACHE:-/var/cache/edge-agent-ci}
ASSETS=$(realpath -m "${ASSETS:-../shared/assets}")
X86_PY=${X86_PY:-$SRC/.venv/bin/python}      # the host's venv (`make install`)
MAX_FRAMES=${MAX_FRAMES:-150}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
HOST_CA=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
# The root's Debian packages: what a Raspberry Pi OS Lite image has that the agent leans on
# (python3-numpy is what python3-picamera2 pulls in; the venv must keep using it).
ROOT_PACKAGES=python3,python3-venv,python3-numpy,ca-certificates
ROOT_STAMP="debootstrap minbase arm64 $ROOT_PACKAGES v1"
QEMU_DIR=$CACHE/qemu-user-trixie
QEMU=$QEMU_DIR/usr/bin/qemu-aarch64
BINFMT=/proc/sys/fs/binfmt_misc

say() { echo "aarch64-check: $*"; }
die() { echo "aarch64-check: $*" >&2; exit 2; }

renice -n 10 -p $$ >/dev/null  # heavy: debootstrap, pip and the model under emulation
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, binfmt_misc); run it with sudo"
for tool in debootstrap unshare chroot dpkg-deb apt-get; do
    command -v "$tool" >/dev/null || die "missing $tool; install it with: sh hw/install-apt.sh hw/apt-aarch64.txt"
done
[ -f "$ASSETS/images/grace_hopper.bmp" ] || die "assets not found in $ASSETS (set ASSETS=DIR)"
[ -x "$X86_PY" ] || die "no x86 venv at $X86_PY; run make install first"

# --- qemu 10 from Debian 13, through a private apt state (the host's apt setup is untouched) ---
fetch_qemu() {
    [ -x "$QEMU" ] && return 0
    local apt="$CACHE/apt-trixie"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
    echo "deb [signed-by=$KEYRING] $MIRROR trixie main" >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
                -o "APT::Architectures=amd64" -o "Debug::NoLocking=1"
                -o "APT::Sandbox::User=root")
    say "downloading qemu-user from Debian trixie"
    apt-get -qq "${opts[@]}" update
    (cd "$apt/debs" && apt-get -qq "${opts[@]}" download qemu-user)
    rm -rf "$QEMU_DIR.tmp"
    dpkg-deb -x "$(ls "$apt"/debs/qemu-user_*.deb | head -1)" "$QEMU_DIR.tmp"
    find "$QEMU_DIR.tmp" ! -type d ! -path '*/usr/bin/qemu-aarch64' -delete  # 450 MB of other CPUs
    mv "$QEMU_DIR.tmp" "$QEMU_DIR"
    [ -x "$QEMU" ] || die "Debian trixie's qemu-user has no usr/bin/qemu-aarch64"
}

# --- binfmt_misc: arm64 ELF binaries run through our qemu, F = interpreter opened now ---
register_binfmt() {
    if [ ! -e "$BINFMT/register" ]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null \
            || die "cannot mount binfmt_misc on $BINFMT (a container without CAP_SYS_ADMIN?)"
    fi
    local entry=$BINFMT/qemu-aarch64
    if [ -e "$entry" ]; then
        if grep -qx "interpreter $QEMU" "$entry" && grep -qx "flags: F" "$entry" \
            && grep -qx enabled "$entry"; then
            return 0
        fi
        say "replacing the binfmt_misc entry qemu-aarch64 ($(sed -n 's/^interpreter //p' "$entry"))"
        echo -1 >"$entry"
    fi
    local magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$QEMU:F" >"$BINFMT/register" \
        || die "binfmt_misc refused the qemu-aarch64 entry"
}

# --- one arm64 root per suite, built once and cached ---
build_root() {
    local suite=$1 root=$CACHE/roots/$1
    if [ -f "$root/.edge-agent-root" ] && [ "$(cat "$root/.edge-agent-root")" = "$ROOT_STAMP" ]; then
        return 0
    fi
    say "building the arm64 $suite root (once; cached in $root)"
    rm -rf "$root" "$root.tmp"
    mkdir -p "$CACHE/roots"
    debootstrap --arch=arm64 --variant=minbase --keyring="$KEYRING" \
        --include="$ROOT_PACKAGES" "$suite" "$root.tmp" "$MIRROR" >"$CACHE/roots/$suite.log" 2>&1 \
        || die "debootstrap $suite failed; see $CACHE/roots/$suite.log"
    echo "$ROOT_STAMP" >"$root.tmp/.edge-agent-root"
    mv "$root.tmp" "$root"
}

# --- running inside a root: private mounts (gone when the command ends), a clean environment ---
# /mnt/src is the working tree, /mnt/wheels the agent's wheel built from it, /mnt/assets the
# shared assets (read-only), /mnt/out the results.
in_root() {
    local suite=$1 root=$CACHE/roots/$1 out=$OUT/$1
    shift
    mkdir -p "$root/mnt/src" "$root/mnt/wheels" "$root/mnt/assets" "$root/mnt/out" "$out"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    # the host's CA bundle: where TLS to PyPI goes through a proxy, the host trusts its CA
    mkdir -p "$root/etc/edge-agent-ci"
    cp -L "$HOST_CA" "$root/etc/edge-agent-ci/ca.crt"
    unshare --mount --propagation private -- /bin/sh -euc '
        root=$1 src=$2 wheels=$3 assets=$4 out=$5; shift 5
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t sysfs sysfs "$root/sys"
        mount -t tmpfs tmpfs "$root/tmp"
        mount --bind "$src" "$root/mnt/src"
        mount --bind "$wheels" "$root/mnt/wheels"
        mount --bind "$assets" "$root/mnt/assets" && mount -o remount,bind,ro "$root/mnt/assets"
        mount --bind "$out" "$root/mnt/out"
        exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root \
            LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 \
            PIP_CERT=/etc/edge-agent-ci/ca.crt "$@"
    ' in_root "$root" "$TREE" "$OUT/wheels" "$ASSETS" "$out" "$@"
}

# --- the agent, installed as a device installs it ---
# A venv that sees Debian's packages (python3-picamera2 on a Pi), runtime dependencies only, and
# numpy pinned to the system's own (Raspberry Pi OS's simplejpeg and picamera2 are built against
# it; a numpy 2 in the venv would hide it). The agent comes as the wheel built from the working
# tree (the technician's USB stick); its dependencies from PyPI. The venv stays in the cached root
# and each run replaces the agent in it, as an upgrade on a device does (pip skips a wheel of the
# version already installed, hence the uninstall); the venv is made afresh when pyproject.toml
# (the dependencies) changes, since a first install under emulation takes 7-14 min here.
# When hw/install.sh lands, INSTALL is the line to swap.
VENV=/opt/edge-agent/venv
INSTALL='python3 -c "import numpy; print(\"numpy==\" + numpy.__version__)" >/tmp/pins.txt; python3 -m venv --system-site-packages /opt/edge-agent/venv; /opt/edge-agent/venv/bin/pip uninstall --quiet --yes edge-agent 2>/dev/null || true; /opt/edge-agent/venv/bin/pip install --quiet -c /tmp/pins.txt /mnt/wheels/edge_agent-*.whl'
install_agent() {
    local root=$CACHE/roots/$1 key
    key="$(sha256sum pyproject.toml | cut -c1-16) $ROOT_STAMP"
    if [ "$(cat "$root/opt/edge-agent/.ci-key" 2>/dev/null)" != "$key" ]; then
        say "$1: a fresh install (first run, or the dependencies changed)"
        rm -rf "$root/opt/edge-agent"
    fi
    in_root "$1" /bin/sh -euc "$INSTALL" || return 1  # (no `set -e` inside a `||` caller)
    echo "$key" >"$root/opt/edge-agent/.ci-key"
}

# --- the same commands on both sides; results as files for hw/aarch64_compare.py ---
# Arguments: OUTDIR AGENT PYTHON SRC ASSETS MODEL (AGENT and PYTHON from the same venv); env MAX_FRAMES.
CHECKS='
out=$1 agent=$2 python=$3 src=$4 assets=$5 model=$6
state=$(mktemp -d)
"$agent" --version >"$out/version.txt"
"$python" -c "import numpy, platform, sys; print(platform.machine(), sys.version.split()[0], numpy.__version__, numpy.__file__)" >"$out/python.txt"
"$agent" models fetch "$model" --from "$assets" --state "$state" >/dev/null
"$agent" detect "$assets/images/grace_hopper.bmp" --json --state "$state" >"$out/detect.json"
"$agent" replay "$assets/video/one-by-one-person-detection.mp4" --config "$src/docs/demo.toml" \
    --state "$state" --events-out "$out/events.jsonl" --max-frames "$MAX_FRAMES" >"$out/replay.txt"
rm -rf "$state"
'

fetch_qemu
say "$("$QEMU" --version | head -1)"
register_binfmt
SUITES=${*:-bookworm trixie}
for suite in $SUITES; do
    build_root "$suite"
done

MODEL=$("$X86_PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["default"])' \
    models/manifest.toml)
OUT=$CACHE/results  # this run's outputs, kept until the next run for a look after a failure
rm -rf "$OUT"
# the working tree as git sees it (tracked and new files, nothing ignored such as .venv)
TREE=$OUT/src
mkdir -p "$TREE"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$TREE"

say "building the agent's wheel from the working tree"
"$X86_PY" -m pip wheel --quiet --no-deps --disable-pip-version-check -w "$OUT/wheels" "$TREE"
say "x86 reference run (model $MODEL, $MAX_FRAMES frames)"
mkdir -p "$OUT/x86"
MAX_FRAMES=$MAX_FRAMES /bin/sh -euc "$CHECKS" checks "$OUT/x86" "$(dirname "$X86_PY")/edge-agent" \
    "$X86_PY" "$SRC" "$ASSETS" "$MODEL"
failed=""
for suite in $SUITES; do
    start=$(date +%s)
    say "$suite: installing the agent (pip, numpy pinned to the system's)"
    install_agent "$suite" || { failed="$failed $suite"; continue; }
    say "$suite: running the checks under qemu ($(( $(date +%s) - start )) s so far)"
    if ! in_root "$suite" /usr/bin/env MAX_FRAMES="$MAX_FRAMES" /bin/sh -euc "$CHECKS" checks \
        /mnt/out "$VENV/bin/edge-agent" "$VENV/bin/python" /mnt/src /mnt/assets "$MODEL"; then
        failed="$failed $suite"; continue
    fi
    "$X86_PY" hw/aarch64_compare.py "$OUT/x86" "$OUT/$suite" "$suite" || failed="$failed $suite"
    say "$suite: $(( $(date +%s) - start )) s"
done
[ -z "$failed" ] || die "FAILED:$failed"
say "passed: $SUITES"
