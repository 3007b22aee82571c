#!/bin/sh
# Install the Debian packages listed in a file (one per line, '#' comments) that are missing.
# As root it uses apt-get; otherwise it says exactly what to install and exits 2.
set -eu
list="$1"
missing=""
for pkg in $(sed -e 's/#.*//' "$list"); do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "edge-agent: missing Debian packages:$missing; install them with: sudo apt-get install$missing" >&2
    exit 2
fi
