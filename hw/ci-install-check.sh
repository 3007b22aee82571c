#!/bin/bash
# CI: hw/install.sh in a fresh Debian bookworm root (a chroot), offline from a folder of wheels built
# from this checkout. Installed twice: one enabled service that `systemd-analyze verify` accepts, the
# service user can run the agent on Debian's numpy, and the second run changes nothing (listing +
# hashes). Then `uninstall` keeps the state, `uninstall --purge` removes it. Run as root; .ci/run
# calls it after `make test`. The debootstrapped root and the dependency wheels are cached in
# $EDGE_AGENT_CI_CACHE (default /var/cache/edge-agent-ci), outside the repo.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${EDGE_AGENT_CI_CACHE:-/var/cache/edge-agent-ci}/install-check
ASSETS=${EDGE_AGENT_ASSETS:-$REPO/../shared/assets}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=$CACHE/base-bookworm-amd64
step() { echo "== install check: $*"; }
fail() { echo "install check FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot)"

# 1. the cached minimal bookworm root (python3, Debian's numpy, systemd for systemctl and the units)
if [ ! -f "$BASE/.complete" ]; then
    command -v debootstrap >/dev/null || sh "$REPO/hw/install-apt.sh" /dev/stdin <<<"debootstrap"
    step "debootstrap bookworm into $BASE (once; cached)"
    rm -rf "$BASE.tmp"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase --include=systemd,python3,python3-venv,python3-numpy,v4l-utils,udev,ca-certificates \
        bookworm "$BASE.tmp" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap"; }
    touch "$BASE.tmp/.complete"
    mv "$BASE.tmp" "$BASE"
fi
sysnumpy=$(chroot "$BASE" python3 -c 'import numpy; print(numpy.__version__)')
pyver=$(chroot "$BASE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# 2. the wheel folder a technician would carry: dependencies (cached) + this checkout's wheel + the model
deps_key=$( (sed -n '/^dependencies/,/^]/p' "$REPO/pyproject.toml"; echo "$sysnumpy $pyver") | sha256sum | cut -c1-16)
DEPS=$CACHE/wheels-$deps_key
WORK=$(mktemp -d /var/tmp/edge-agent-install-check.XXXXXX)
ROOT=$WORK/root
cleanup() {
    for m in "$ROOT/proc" "$ROOT/dev"; do if mountpoint -q "$m"; then umount -l "$m"; fi; done
    if ! mountpoint -q "$ROOT/proc" && ! mountpoint -q "$ROOT/dev"; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
PY=$REPO/.venv/bin/python
[ -x "$PY" ] || PY=python3
if [ ! -f "$DEPS/.complete" ]; then
    step "download the dependency wheels for Python $pyver with numpy==$sysnumpy (once; cached)"
    rm -rf "$DEPS" && mkdir -p "$DEPS.tmp"
    PYTHON=$PY "$REPO/hw/install.sh" download "$DEPS.tmp" --python-version "$pyver" --numpy "$sysnumpy" --models none \
        --target "x86_64:$(chroot "$BASE" ldd --version | head -n 1 | grep -o '2\.[0-9]*$')"
    rm -f "$DEPS.tmp"/edge_agent-*.whl
    touch "$DEPS.tmp/.complete" && mv "$DEPS.tmp" "$DEPS"
fi
mkdir -p "$WORK/wheels"
cp "$DEPS"/*.whl "$WORK/wheels/"
"$PY" -m pip wheel --quiet --no-deps --disable-pip-version-check --wheel-dir "$WORK/wheels" "$REPO"
# the models and their licence notices, as `hw/install.sh download` puts them on a stick
PYTHONPATH=$REPO "$PY" -m agent.device.install_media "$WORK/wheels" --from "$ASSETS/models" --offline \
    || fail "the models could not be put beside the wheels"

# 3. a fresh root from the cache, with the installer and the wheels inside
step "fresh root $ROOT"
cp -a "$BASE" "$ROOT"
mount -t proc proc "$ROOT/proc"
mkdir -p "$ROOT/tmp/src" && cp -a "$REPO/hw" "$ROOT/tmp/src/hw"
cp -a "$WORK/wheels" "$ROOT/tmp/wheels"
image=$(ls "$ASSETS"/images/*.jpg | head -n 1)
cp "$image" "$ROOT/tmp/check.jpg"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
install_cmd=(/tmp/src/hw/install.sh install --wheels /tmp/wheels --device-id ci-device --site ci-site --volatile-journal)

snapshot() {  # every file outside the scratch places: path, mode, owner, and content hash
    (cd "$ROOT" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./sys -o -path ./run -o -path ./tmp \
        -o -path ./var/tmp -o -path ./var/cache -o -path ./var/log -o -path ./var/lib/apt/lists \) -prune -o -printf '%p %M %u %g %l\n' \
        | sort > "$1.list"
     find . -xdev \( -path ./proc -o -path ./dev -o -path ./sys -o -path ./run -o -path ./tmp -o -path ./var/tmp \
        -o -path ./var/cache -o -path ./var/log -o -path ./var/lib/apt/lists \) -prune -o -type f -print0 \
        | sort -z | xargs -0 sha256sum > "$1.sha")
}

step "install (1st)"
in_root "${install_cmd[@]}" | tee "$WORK/install1.log"
snapshot "$WORK/after1"
step "install (2nd): must change nothing"
in_root "${install_cmd[@]}" | tee "$WORK/install2.log"
snapshot "$WORK/after2"
diff "$WORK/after1.list" "$WORK/after2.list" || fail "the second install changed the file listing"
diff "$WORK/after1.sha" "$WORK/after2.sha" || fail "the second install changed file contents"
grep -q "nothing changed" "$WORK/install2.log" || fail "the second install did not say it changed nothing"

step "one enabled service that systemd-analyze verify accepts"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/edge-agent.service" ] || fail "not enabled"
[ "$(find "$ROOT/etc/systemd/system" -name 'edge-agent*.service' | wc -l)" = 2 ] || fail "expected the unit and its one enable link"
systemd-analyze verify --root="$ROOT" edge-agent.service || fail "systemd-analyze verify"
[ "$(stat -c '%a %U' "$ROOT/etc/edge-agent/device.key")" = "600 root" ] || fail "device.key must be root-only 0600"
[ "$(in_root stat -c "%a %U" /var/lib/edge-agent)" = "700 edge-agent" ] || fail "state folder must be 0700 edge-agent"
in_root id -nG edge-agent | tr ' ' '\n' | grep -qx video || fail "edge-agent is not in the video group"
grep -q '^Storage=volatile' "$ROOT/etc/systemd/journald.conf.d/60-edge-agent.conf" || fail "journald drop-in"

step "the service user runs the agent, on Debian's numpy"
where=$(in_root /opt/edge-agent/venv/bin/python -c 'import numpy; print(numpy.__version__, numpy.__file__)')
echo "numpy in the venv: $where"
case $where in "$sysnumpy /usr/lib/python3/dist-packages/"*) ;; *) fail "the venv does not use Debian's numpy $sysnumpy";; esac
in_root /opt/edge-agent/venv/bin/python -m pip show pytest >/dev/null 2>&1 && fail "test extras in the device venv"
in_root runuser -u edge-agent -- env EDGE_AGENT_STATE=/var/lib/edge-agent \
    /opt/edge-agent/venv/bin/edge-agent detect /tmp/check.jpg --config /etc/edge-agent/agent.toml | tee "$WORK/detect.txt"
grep -q person "$WORK/detect.txt" || fail "detect as the service user found no person"
bad=$(find "$ROOT/var/lib/edge-agent" \( -type d ! -perm 700 \) -o \( -type f ! -perm 600 \))
[ -z "$bad" ] || fail "state not private: $bad"

step "uninstall keeps the state; --purge removes it"
in_root /tmp/src/hw/install.sh uninstall
[ ! -e "$ROOT/etc/systemd/system/edge-agent.service" ] || fail "unit left behind"
[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/edge-agent.service" ] || fail "enable link left behind"
[ ! -e "$ROOT/opt/edge-agent" ] || fail "/opt/edge-agent left behind"
[ -f "$ROOT/etc/edge-agent/device.key" ] && [ -d "$ROOT/var/lib/edge-agent/models" ] || fail "uninstall removed the state"
in_root /tmp/src/hw/install.sh uninstall --purge
[ ! -e "$ROOT/etc/edge-agent" ] && [ ! -e "$ROOT/var/lib/edge-agent" ] || fail "--purge left state behind"
in_root getent passwd edge-agent >/dev/null && fail "--purge left the user"
echo "install check: 1 passed, 0 failed"
