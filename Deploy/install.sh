#!/usr/bin/env bash
# Builds HourLedger in release mode and installs the binary, the system user, an example config and the systemd unit.
# Run from the repository root as root: Deploy/install.sh
set -euo pipefail
missing=()
for pkg in libcurl4-openssl-dev libsqlite3-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then apt-get update && apt-get install -y "${missing[@]}"; fi
swift build -c release --product hourledger
install -m 0755 "$(swift build -c release --show-bin-path)/hourledger" /usr/local/bin/hourledger
id hourledger >/dev/null 2>&1 || useradd --system --home-dir /var/lib/hourledger --no-create-home --shell /usr/sbin/nologin hourledger
# The config and the secret files: readable by the service's group, writable by root only.
install -d -m 0750 -o root -g hourledger /etc/hourledger
[ -f /etc/hourledger/hourledger.yaml ] || install -m 0640 -o root -g hourledger Config/hourledger.example.yaml /etc/hourledger/hourledger.yaml
install -m 0644 Deploy/hourledger.service /etc/systemd/system/hourledger.service
systemctl daemon-reload
echo "Now: write each secret to its file in /etc/hourledger (install -m 0640 -o root -g hourledger /dev/stdin /etc/hourledger/<name>),"
echo "edit /etc/hourledger/hourledger.yaml, run 'hourledger check-config --config /etc/hourledger/hourledger.yaml',"
echo "then 'systemctl enable --now hourledger'."
