#!/usr/bin/env bash
# Builds HourLedger in release mode and installs the binary, an example config and the systemd unit.
# Run from the repository root as root: Deploy/install.sh
set -euo pipefail
missing=()
for pkg in libcurl4-openssl-dev libsqlite3-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then apt-get update && apt-get install -y "${missing[@]}"; fi
swift build -c release --product hourledger
install -m 0755 "$(swift build -c release --show-bin-path)/hourledger" /usr/local/bin/hourledger
install -d -m 0755 /etc/hourledger
[ -f /etc/hourledger/hourledger.yaml ] || install -m 0644 Config/hourledger.example.yaml /etc/hourledger/hourledger.yaml
install -m 0644 Deploy/hourledger.service /etc/systemd/system/hourledger.service
systemctl daemon-reload
echo "Now: put the GLPI tokens in /etc/hourledger/app-token and /etc/hourledger/user-token (mode 0600),"
echo "edit /etc/hourledger/hourledger.yaml, run 'hourledger check-config --config /etc/hourledger/hourledger.yaml',"
echo "then 'systemctl enable --now hourledger'."
