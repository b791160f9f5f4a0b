#!/usr/bin/env bash
# Install Debian's pgbouncer, nginx and prometheus (for promtool) for the
# tests that run the real programs (tests/deploy, the PgBouncer test), if
# missing. Best effort, like install-browser.sh: needs root and apt-get;
# otherwise it says what to run and exits 0 (those tests then skip, saying
# why). Never leaves a service running: Debian's postinst scripts would start
# nginx on :80, pgbouncer on :6432 and prometheus on :9090, so a policy-rc.d
# that forbids starting services is in place while apt-get runs, and anything
# that started all the same is stopped and disabled afterwards.
set -euo pipefail

PROGRAMS=(/usr/sbin/pgbouncer /usr/sbin/nginx /usr/bin/promtool)
PACKAGES=(pgbouncer nginx prometheus)

missing=()
for program in "${PROGRAMS[@]}"; do
    [ -x "$program" ] || missing+=("$program")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-services: pgbouncer, nginx and promtool are installed."
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-services: ${missing[*]} missing and this is not root, so nothing is installed." >&2
    echo "install-services: run 'sudo apt-get install --no-install-recommends ${PACKAGES[*]}' to enable the deploy-kit and PgBouncer tests." >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-services: no apt-get here; install ${PACKAGES[*]} to enable the deploy-kit and PgBouncer tests." >&2
    exit 0
fi

# Forbid invoke-rc.d from starting anything while the packages install; an
# existing policy-rc.d (a container's own) is kept and put back.
POLICY=/usr/sbin/policy-rc.d
SAVED=""
if [ -e "$POLICY" ]; then
    SAVED="$(mktemp)"
    cp -p "$POLICY" "$SAVED"
fi
restore_policy() {
    if [ -n "$SAVED" ]; then
        mv "$SAVED" "$POLICY"
    else
        rm -f "$POLICY"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# install-services.sh: no service starts while packages install.\nexit 101\n' > "$POLICY"
chmod 755 "$POLICY"

echo "install-services: installing Debian's ${PACKAGES[*]} packages."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"

# Belt and braces: on a machine run by systemd, stop and disable the units;
# elsewhere stop whatever the init scripts may have started.
for service in nginx pgbouncer prometheus; do
    if [ -d /run/systemd/system ]; then
        systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$service" ]; then
        "/etc/init.d/$service" stop >/dev/null 2>&1 || true
    fi
done

for program in "${PROGRAMS[@]}"; do
    test -x "$program"
done
echo "install-services: ${PROGRAMS[*]} installed; no service left running."
