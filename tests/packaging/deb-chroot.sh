#!/usr/bin/env bash
# The .deb on a fresh Debian 12 root, installed the way an administrator
# installs it (packaging/README.md). Not in CI: it needs the network
# (debootstrap, apt) and a few minutes. As root:
#
#   tests/packaging/deb-chroot.sh [--root DIR] [--keep] [--no-boot] DEB
#
#   --root DIR  the root to use: debootstrap --variant=minbase bookworm
#               makes it when DIR is missing or empty; a root that has gbx
#               installed gets it purged first. Default: a new directory
#               under /var/tmp, deleted at the end unless --keep.
#   --keep      keep the root made (give it to --root next time)
#   --no-boot   skip step 3
#   $GBX_MIRROR the Debian mirror (default http://deb.debian.org/debian)
#
# 1. chroot, no systemd running (proc, sys, dev mounted; unmounted after):
#    apt-get install ./gbx_*.deb resolves the runtime dependencies; the user
#    gbx exists (home /var/lib/gbx, no shell), /var/lib/gbx is 0700 gbx:gbx,
#    gbxd.service is enabled but nothing was started
# 2. gbxd started the way the unit starts it: ExecStart, User, Group,
#    WorkingDirectory, UMask, StateDirectory and EnvironmentFile read from
#    the installed unit, run with setpriv (no new privileges, no
#    capabilities); it writes its demo config on this first start and runs
#    as gbx; its control socket is 0600 gbx; gbxctl status as the user gbx
#    answers (with -c, and without: the default /var/lib/gbx/gbxd.yaml);
#    SIGHUP reloads the policy; /healthz and /readyz answer 200; SIGTERM
#    stops it with exit 0 (gbxd runs in a network namespace of its own, as
#    the container of step 3 does: the demo's ports may be taken here);
#    apt-get remove keeps /var/lib/gbx, purge deletes it
# 3. booted (when the host has systemd-nspawn): systemd-sysv goes into the
#    root, systemd-nspawn --boot runs it with systemd as PID 1, and inside
#    it apt-get install of the .deb starts gbxd.service under all of the
#    unit's hardening; gbxctl status against it; systemctl reload; /readyz;
#    the exposure systemd-analyze security gives it; systemctl stop ends it
#    cleanly (Result=success, exit 0); purge
# shellcheck disable=SC2016 # dpkg-query's ${...} and the unit's sh -c are not for this shell
set -euo pipefail
usage() {
    echo "usage: deb-chroot.sh [--root DIR] [--keep] [--no-boot] DEB" >&2
    exit 2
}
root='' keep=0 boot=1 deb=''
while [ $# -gt 0 ]; do
    case $1 in
    --root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-boot) boot=0; shift ;;
    -*) usage ;;
    *) [ -z "$deb" ] || usage; deb=$1; shift ;;
    esac
done
if [ -z "$deb" ] || [ ! -f "$deb" ]; then usage; fi
[ "$(id -u)" -eq 0 ] || { echo "deb-chroot.sh: run as root" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
mirror=${GBX_MIRROR:-http://deb.debian.org/debian}
PATH_IN=/usr/sbin:/usr/bin:/sbin:/bin

work=$(mktemp -d)
made_root=0
mounts=()
pid=
nspawn=
step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    [ -s "$work/gbxd.log" ] && tail -20 "$work/gbxd.log" >&2
    exit 1
}
umount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
    done
    mounts=()
}
cleanup() {
    set +e
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    if [ -n "$nspawn" ]; then
        kill -TERM "$nspawn" 2>/dev/null # the container's orderly shutdown
        for _ in $(seq 1 300); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn" 2>/dev/null
        wait "$nspawn" 2>/dev/null
    fi
    umount_all
    if [ "$made_root" = 1 ] && [ "$keep" = 0 ] && [ -n "$root" ]; then
        # never delete through a mount (a bind of the host's /dev)
        if grep -q " $root/" /proc/mounts; then
            echo "deb-chroot.sh: $root still has mounts; not deleted" >&2
        else
            rm -rf "$root"
        fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

in_root() {
    chroot "$root" env -i PATH=$PATH_IN HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
as_gbx() { # COMMAND...: as the user gbx in the root, from /
    chroot "$root" env -i PATH=$PATH_IN HOME=/var/lib/gbx LANG=C.UTF-8 \
        setpriv --reuid=gbx --regid=gbx --init-groups -- sh -c 'cd / && exec "$@"' sh "$@"
}
mount_root() {
    mount -t proc proc "$root/proc" && mounts+=("$root/proc")
    mount -t sysfs sysfs "$root/sys" && mounts+=("$root/sys")
    mount --bind /dev "$root/dev" && mounts+=("$root/dev")
    mount --bind /dev/pts "$root/dev/pts" && mounts+=("$root/dev/pts")
}
# processes whose root directory is the root's (there must be none left)
root_procs() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$root" ] && echo "${p#/proc/} $(cat "$p/comm" 2>/dev/null)"
    done
    return 0
}
# GET http://127.0.0.1:PORT/PATH from a shell in a network namespace
# (RUNNER...: the command that enters it); the status code, or "none"
http_code() { # PORT PATH RUNNER...
    local port=$1 path=$2
    shift 2
    "$@" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "GET %s HTTP/1.0\r\n\r\n" "$1" >&3 &&
        head -n 1 <&3' "$port" "$path" 2>/dev/null | awk '{print $2}' | grep . || echo none
}
wait_code() { # CODE PORT PATH RUNNER...: up to 20 s
    local want=$1 code=
    shift
    for _ in $(seq 1 100); do
        code=$(http_code "$@")
        [ "$code" = "$want" ] && return 0
        sleep 0.2
    done
    echo "$code"
    return 1
}
wait_log() { # PATTERN FILE SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# --- the root
if [ -z "$root" ]; then
    root=$(mktemp -d /var/tmp/gbx-chroot.XXXXXX)
    made_root=1
fi
mkdir -p "$root"
root=$(cd "$root" && pwd)
chmod 0755 "$root" # mktemp's 0700 would be the root's /, which gbx could not enter
if [ ! -e "$root/etc/debian_version" ]; then
    [ -z "$(ls -A "$root")" ] || fail "$root: not empty and not a Debian root"
    [ "$made_root" = 1 ] || made_root=1 keep=1 # made here, kept: it was asked for by name
    step "debootstrap --variant=minbase bookworm $root ($mirror)"
    timeout 1200 debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
fi
grep -q '^12' "$root/etc/debian_version" || fail "$root: not Debian 12 ($(cat "$root/etc/debian_version"))"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount_root
if in_root dpkg-query -W -f='${db:Status-Status}' gbx 2>/dev/null | grep -qx installed; then
    step "purging the gbx installed in $root"
    in_root timeout 300 apt-get purge -y -q gbx >"$work/purge0.log" 2>&1 || fail "purge: $(tail "$work/purge0.log")"
fi
[ -z "$(root_procs)" ] || fail "processes run in $root: $(root_procs)"

# --- 1. install
step "1. apt-get install ./$(basename "$deb") in a chroot without systemd"
cp "$deb" "$root/root/"
in_root timeout 600 apt-get update -q >"$work/update.log" 2>&1 || fail "apt-get update: $(tail "$work/update.log")"
in_root timeout 900 sh -c "cd /root && apt-get install -y -q --no-install-recommends ./$(basename "$deb")" \
    >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; fail "apt-get install"; }
grep -E '^(Setting up|Adding|Created symlink)' "$work/install.log" | sed 's/^/   /'
in_root dpkg-query -W -f='${db:Status-Status}' gbx | grep -qx installed || fail "gbx not installed"
pw=$(in_root getent passwd gbx) || fail "no user gbx"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
[ "$home" = /var/lib/gbx ] || fail "gbx's home: $home"
[ "$shell" = /usr/sbin/nologin ] || fail "gbx's shell: $shell"
[ "$uid" -lt 1000 ] || fail "gbx is not a system user: uid $uid"
[ "$(in_root stat -c '%a %U %G' /var/lib/gbx)" = "700 gbx gbx" ] ||
    fail "/var/lib/gbx: $(in_root stat -c '%a %U %G' /var/lib/gbx)"
[ -L "$root/etc/systemd/system/multi-user.target.wants/gbxd.service" ] || fail "gbxd.service not enabled"
[ -z "$(root_procs)" ] || fail "postinst started something without systemd: $(root_procs)"
echo "   user gbx uid $uid gid $gid; /var/lib/gbx 0700 gbx:gbx; gbxd.service enabled, not started"

# --- 2. started the way the unit does
unit=$(in_root dpkg -L gbx | grep '/systemd/system/gbxd\.service$') || fail "no gbxd.service in the package"
key() { sed -n "s/^$1=//p" "$root$unit" | tail -n 1; }
exec_start=$(key ExecStart) user=$(key User) group=$(key Group) wd=$(key WorkingDirectory)
umask=$(key UMask) state=$(key StateDirectory) state_mode=$(key StateDirectoryMode)
envfile=$(key EnvironmentFile)
envfile=${envfile#-}
for v in exec_start user group wd umask state state_mode; do
    [ -n "${!v}" ] || fail "$unit: no $v"
done
step "2. $unit: User=$user Group=$group ExecStart=$exec_start"
in_root install -d -m "$state_mode" -o "$user" -g "$group" "/var/lib/$state"
# as systemd would: a clean environment, the unit's user, no new privileges,
# no capabilities, its umask and directory, EnvironmentFile's variables
# (in a network namespace of its own, with only loopback: the demo's ports
# 7400 and 9400 may be taken on this host; the control socket is a file)
unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh \
    chroot "$root" env -i PATH=$PATH_IN LANG=C.UTF-8 \
    setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs --inh-caps=-all \
    --bounding-set=-all -- \
    sh -c 'set -a; if [ -r "$1" ]; then . "$1"; fi; set +a; umask "$2"; cd "$3" && eval "exec $4"' \
    gbxd-unit "$envfile" "$umask" "$wd" "$exec_start" >"$work/gbxd.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    grep -Eq 'GBX-START( |$)' "$work/gbxd.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
grep -Eq 'GBX-START( |$)' "$work/gbxd.log" || fail "gbxd did not start"
grep -q GBX-CONFIG-CREATED "$work/gbxd.log" || fail "gbxd did not write its first config"
kill -0 "$pid" 2>/dev/null || fail "gbxd exited after its start"
puid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$puid" = "$uid" ] || fail "gbxd runs as uid $puid, not gbx ($uid)"
[ "$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")" = 0000000000000000 ] || fail "gbxd has capabilities"
[ "$(in_root stat -c '%a %U %F' /var/lib/gbx/gbxd.ctl)" = "600 gbx socket" ] ||
    fail "control socket: $(in_root stat -c '%a %U %F' /var/lib/gbx/gbxd.ctl)"
[ "$(in_root stat -c '%a %U' /var/lib/gbx/keys/op.viewer.secret)" = "600 gbx" ] ||
    fail "operator key: $(in_root stat -c '%a %U' /var/lib/gbx/keys/op.viewer.secret)"
echo "   gbxd pid $pid as gbx, no capabilities; /var/lib/gbx/gbxd.ctl 0600 gbx"
rc=0
as_gbx timeout 30 gbxctl -c /var/lib/gbx/gbxd.yaml --as op.viewer status >"$work/status" 2>&1 || rc=$?
sed 's/^/   /' "$work/status"
[ "$rc" -eq 0 ] || fail "gbxctl status: exit $rc"
grep -Eq '^node +demo-1$' "$work/status" || fail "gbxctl status: no node demo-1"
rc=0
as_gbx timeout 30 gbxctl --as op.viewer status >"$work/status2" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "gbxctl status without -c (the default config /var/lib/gbx/gbxd.yaml): exit $rc: $(cat "$work/status2")"
echo "   gbxctl --as op.viewer status without -c: the same node"
kill -HUP "$pid"
wait_log GBX-POLICY-LOADED "$work/gbxd.log" 30 || fail "SIGHUP: no GBX-POLICY-LOADED"
echo "   SIGHUP: $(grep -o 'GBX-POLICY-LOADED.*' "$work/gbxd.log" | head -1 | cut -c1-100)"
mport=$(sed -n 's/^  metrics: *[0-9.]*:\([0-9]*\).*/\1/p' "$root/var/lib/gbx/gbxd.yaml")
if [ -n "$mport" ]; then
    got=$(wait_code 200 "$mport" /healthz nsenter -t "$pid" -n) || fail "GET /healthz: $got"
    got=$(wait_code 200 "$mport" /readyz nsenter -t "$pid" -n) || fail "GET /readyz: $got"
    echo "   GET /healthz, /readyz on 127.0.0.1:$mport: 200"
fi
stop_s=$(key TimeoutStopSec)
stop_s=${stop_s%s}
kill -TERM "$pid"
for _ in $(seq 1 $((stop_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "gbxd exit $rc after SIGTERM"
grep -q GBX-STOP "$work/gbxd.log" || fail "no GBX-STOP"
echo "   SIGTERM: exit 0 within TimeoutStopSec=${stop_s}s"

in_root timeout 300 apt-get remove -y -q gbx >"$work/remove.log" 2>&1 || fail "apt-get remove: $(tail "$work/remove.log")"
[ ! -e "$root/usr/bin/gbxd" ] || fail "remove left /usr/bin/gbxd"
[ -f "$root/var/lib/gbx/gbxd.yaml" ] || fail "remove deleted /var/lib/gbx"
in_root timeout 300 apt-get purge -y -q gbx >"$work/purge.log" 2>&1 || fail "apt-get purge: $(tail "$work/purge.log")"
[ ! -e "$root/var/lib/gbx" ] || fail "purge kept /var/lib/gbx"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/gbxd.service" ] || fail "purge kept the enablement"
echo "   apt-get remove kept /var/lib/gbx; purge deleted it"

# --- 3. booted
if [ "$boot" = 0 ]; then
    step "3. skipped (--no-boot)"
    echo "deb-chroot: ok"
    exit 0
fi
if ! command -v systemd-nspawn >/dev/null; then
    step "3. skipped: no systemd-nspawn on this host (apt-get install systemd-container)"
    echo "deb-chroot: ok"
    exit 0
fi
step "3. systemd-nspawn --boot: the package under systemd as PID 1"
in_root timeout 900 apt-get install -y -q --no-install-recommends systemd-sysv >"$work/sysv.log" 2>&1 ||
    { tail -20 "$work/sysv.log" >&2; fail "apt-get install systemd-sysv"; }
umount_all # nspawn mounts its own
# --private-network: only loopback (the demo's ports may be taken here; the
# package's dependencies were installed in step 1)
systemd-nspawn -q -D "$root" --boot --register=no --keep-unit --console=passive --private-network \
    >"$work/nspawn.log" 2>&1 &
nspawn=$!
leader=
for _ in $(seq 1 300); do
    leader=$(ps -o pid= --ppid "$nspawn" | tr -d ' ' | head -n 1) || true
    [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] && break
    leader=
    kill -0 "$nspawn" 2>/dev/null || break
    sleep 0.1
done
[ -n "$leader" ] || fail "systemd-nspawn --boot: no systemd: $(cat "$work/nspawn.log")"
in_ct() {
    nsenter -t "$leader" -a -r -w env -i PATH=$PATH_IN HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive SYSTEMD_PAGER= "$@"
}
state=$(timeout 90 nsenter -t "$leader" -a -r -w /bin/systemctl is-system-running --wait 2>&1) || true
echo "   booted: $state"
case $state in running | degraded) ;; *) fail "the container's systemd: $state" ;; esac

in_ct timeout 600 sh -c "cd /root && apt-get install -y -q --no-install-recommends ./$(basename "$deb")" \
    >"$work/install2.log" 2>&1 || { tail -30 "$work/install2.log" >&2; fail "apt-get install under systemd"; }
active=
for _ in $(seq 1 300); do
    active=$(in_ct systemctl is-active gbxd.service) || true
    in_ct journalctl -u gbxd -o cat --no-pager 2>/dev/null | grep -Eq 'GBX-START( |$)' &&
        [ "$active" = active ] && break
    sleep 0.1
done
in_ct journalctl -u gbxd -o cat --no-pager >"$work/journal" 2>&1 || true
[ "$active" = active ] || { tail -20 "$work/journal" >&2; fail "gbxd.service: $active after install"; }
grep -Eq 'GBX-START( |$)' "$work/journal" || { tail -20 "$work/journal" >&2; fail "gbxd.service: no GBX-START"; }
echo "   postinst started gbxd.service: $(in_ct systemctl show gbxd -p MainPID -p User --value | tr '\n' ' ')"
rc=0
in_ct timeout 30 runuser -u gbx -- gbxctl -c /var/lib/gbx/gbxd.yaml --as op.viewer status >"$work/status3" 2>&1 ||
    rc=$?
sed 's/^/   /' "$work/status3"
[ "$rc" -eq 0 ] || fail "gbxctl status against gbxd.service: exit $rc"
grep -Eq '^node +demo-1$' "$work/status3" || fail "gbxctl status: no node demo-1"
in_ct timeout 60 systemctl reload gbxd || fail "systemctl reload gbxd"
for _ in $(seq 1 100); do
    in_ct journalctl -u gbxd -o cat --no-pager | grep -q GBX-POLICY-LOADED && break
    sleep 0.1
done
in_ct journalctl -u gbxd -o cat --no-pager | grep -q GBX-POLICY-LOADED || fail "systemctl reload: no GBX-POLICY-LOADED"
echo "   systemctl reload gbxd: the policy reloaded"
mport=$(sed -n 's/^  metrics: *[0-9.]*:\([0-9]*\).*/\1/p' "$root/var/lib/gbx/gbxd.yaml")
if [ -n "$mport" ]; then
    got=$(wait_code 200 "$mport" /readyz in_ct) || fail "GET /readyz of gbxd.service: $got"
    echo "   GET /readyz on 127.0.0.1:$mport: 200"
fi
in_ct systemd-analyze security gbxd --no-pager >"$work/security" 2>&1 || true
echo "   systemd-analyze security: $(grep -o 'Overall exposure level.*' "$work/security")"
in_ct timeout 120 systemctl stop gbxd || fail "systemctl stop gbxd"
result=$(in_ct systemctl show gbxd -p Result --value)
status=$(in_ct systemctl show gbxd -p ExecMainStatus --value)
if [ "$result" != success ] || [ "$status" != 0 ]; then
    fail "systemctl stop: Result=$result ExecMainStatus=$status"
fi
in_ct journalctl -u gbxd -o cat --no-pager | grep -q GBX-STOP || fail "systemctl stop: no GBX-STOP"
echo "   systemctl stop gbxd: Result=success, exit 0"
in_ct timeout 300 apt-get purge -y -q gbx >"$work/purge2.log" 2>&1 || fail "purge: $(tail "$work/purge2.log")"
[ ! -e "$root/var/lib/gbx" ] || fail "purge kept /var/lib/gbx"
echo "deb-chroot: ok"
