#!/bin/sh
# Install t1046-sensor as a systemd service on Debian/Ubuntu (run as root from a checkout).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python3 -m venv /opt/t1046-sensor
/opt/t1046-sensor/bin/pip install --quiet "$here/.."
install -m 0644 "$here/systemd/t1046-sensor.sysusers.conf" /usr/lib/sysusers.d/t1046-sensor.conf
systemd-sysusers /usr/lib/sysusers.d/t1046-sensor.conf
getent group zeek >/dev/null && usermod -a -G zeek t1046
install -m 0644 "$here/systemd/t1046-sensor.service" "$here/systemd/t1046-honeyport-node.service" /etc/systemd/system/
install -m 0644 "$here/systemd/t1046-sensor.logrotate" /etc/logrotate.d/t1046-sensor
install -d -m 0750 /etc/t1046-sensor
[ -e /etc/t1046-sensor/sensor.yaml ] || install -m 0640 -g t1046 "$here/sensor.example.yaml" /etc/t1046-sensor/sensor.yaml
/opt/t1046-sensor/bin/t1046-sensor check-config --content-only /etc/t1046-sensor/sensor.yaml
systemctl daemon-reload
echo "edit /etc/t1046-sensor/sensor.yaml and secrets.env, check them with: t1046-sensor check-config /etc/t1046-sensor/sensor.yaml --env-file /etc/t1046-sensor/secrets.env, then: systemctl enable --now t1046-sensor"
