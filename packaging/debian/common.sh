# Shared by the maintainer scripts (prepended to each by `cargo xtask deb`).
# DPKG_ROOT is set when dpkg installs into another root (--root with
# --force-script-chrootless): then nothing of the running system is touched
# but the agents started from that root's binary.

have_systemd() {
    [ -d /run/systemd/system ] && [ -z "${DPKG_ROOT:-}" ]
}

keepalived_running() {
    if have_systemd && systemctl is-active --quiet keepalived.service 2>/dev/null; then
        return 0
    fi
    pidof keepalived >/dev/null 2>&1
}

# SIGTERM to every agent running this package's binary (priority-0 adverts,
# VIPs removed: the peers take over at once), then wait for them, 10 s at most.
stop_agents() {
    # /proc/PID/exe is canonical: so must the path be (DPKG_ROOT may hold "..").
    bin=$(readlink -f "${DPKG_ROOT:-}/usr/sbin/xvrrp")
    pids=""
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/exe" 2>/dev/null)" = "$bin" ] && pids="$pids ${p#/proc/}"
    done
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    i=0
    while [ $i -lt 100 ]; do
        alive=""
        for pid in $pids; do
            [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$bin" ] && alive="$alive $pid"
        done
        [ -z "$alive" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "xvrrp: agent(s)$alive did not stop within 10 s" >&2
}
