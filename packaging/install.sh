#!/bin/sh
# Install t1046-sensor as a systemd service on Debian/Ubuntu: run as root from a checkout (which may be
# read-only). Safe to run again: it upgrades the venv and the units and keeps an existing configuration.
#
#   /opt/t1046-sensor                 venv, with /usr/local/bin/t1046-sensor linked to its command
#   user and group t1046              systemd-sysusers; also in group $ZEEK_GROUP (default zeek) when it exists
#   /etc/t1046-sensor/                root:t1046 0750; sensor.yaml root:t1046 0640, secrets.env root:root 0600
#   /var/lib/t1046-sensor/            t1046:t1046 0700, the state directory (the unit's StateDirectory=)
#   /etc/systemd/system/              t1046-sensor.service, t1046-honeyport-node.service
#   /usr/share/doc/t1046-sensor/      README.md and docs/*.md (the units' Documentation=)
#
# pip takes its usual settings from the environment: PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR installs offline
# from a wheelhouse.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
prefix=/opt/t1046-sensor
etc=/etc/t1046-sensor
zeek_group=${ZEEK_GROUP:-zeek}

# pip builds in the tree it is given: build from a copy, so the checkout is left as it is.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -R "$src/pyproject.toml" "$src/README.md" "$src/sensor" "$src/honeyports" "$build/"
[ -x "$prefix/bin/pip" ] || python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check "$build"
ln -sfn "$prefix/bin/t1046-sensor" /usr/local/bin/t1046-sensor

install -D -m 0644 "$here/systemd/t1046-sensor.sysusers.conf" /usr/lib/sysusers.d/t1046-sensor.conf
systemd-sysusers t1046-sensor.conf
if getent group "$zeek_group" >/dev/null; then
    usermod -a -G "$zeek_group" t1046
    echo "t1046 is in group $zeek_group (to read Zeek's logs)"
else
    echo "no group $zeek_group: if Zeek is installed later, run: usermod -a -G $zeek_group t1046"
fi

install -d -m 0755 /usr/share/doc/t1046-sensor
install -m 0644 "$src/README.md" "$src"/docs/*.md /usr/share/doc/t1046-sensor/
install -m 0644 "$here/systemd/t1046-sensor.service" "$here/systemd/t1046-honeyport-node.service" \
    /etc/systemd/system/
install -D -m 0644 "$here/systemd/t1046-sensor.logrotate" /etc/logrotate.d/t1046-sensor

# The service user must enter the directory and read the file (systemd does not repair existing modes).
install -d -m 0750 -o root -g t1046 "$etc"
chown root:t1046 "$etc" && chmod 0750 "$etc"
[ -e "$etc/sensor.yaml" ] || install -m 0640 "$here/sensor.example.yaml" "$etc/sensor.yaml"
chown root:t1046 "$etc/sensor.yaml" && chmod 0640 "$etc/sensor.yaml"
[ -e "$etc/secrets.env" ] || install -m 0600 /dev/null "$etc/secrets.env"
# The state directory exists before the first start, so check-config --user t1046 finds it writable.
install -d -m 0700 -o t1046 -g t1046 /var/lib/t1046-sensor
"$prefix/bin/t1046-sensor" check-config --content-only "$etc/sensor.yaml"
systemctl daemon-reload
echo "next: edit $etc/sensor.yaml (and $etc/secrets.env), check them as the service will see them:"
echo "  t1046-sensor check-config $etc/sensor.yaml --env-file $etc/secrets.env --user t1046"
echo "then: systemctl enable --now t1046-sensor"
