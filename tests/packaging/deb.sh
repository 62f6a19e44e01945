#!/usr/bin/env bash
# The .deb as cpack makes it from a build dir (packaging/README.md), checked
# without installing it:
#   - control fields: Package gbx, the project's version, this machine's
#     architecture, Section net, Maintainer, Depends with adduser, procps and the
#     shared libraries dpkg-shlibdeps found (libc6, libzmq5, libsodium23,
#     librocksdb, ...); postinst, prerm and postrm executable
#   - the file list: the six tools and no test or bench program, the
#     headers (generated ones too), the three static libraries, libgbx.pc,
#     gbxd.service, the five man pages, the docs
#   - the unit runs /usr/bin/gbxd as the user gbx, and no path of the build
#     machine is left in the unit or libgbx.pc
#   - extracted (dpkg-deb -x): its gbxd on a fresh demo home (gbxd --init,
#     moved to free ports) starts, its gbxctl status as op.viewer answers with the node,
#     its /healthz answers 200, and gbxd stops cleanly (exit 0) on SIGTERM
#   - a C program built with `pkg-config --cflags --libs libgbx` against
#     the extracted tree (PKG_CONFIG_SYSROOT_DIR) links libgbx statically,
#     makes an identity and a client (identity.h, client.h) and runs
# Usage: deb.sh BUILD_DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: deb.sh BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
work=$(mktemp -d) # short: the control socket is a unix socket under it
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
fail() {
    echo "FAIL: $*" >&2
    [ -f "$work/gbxd.log" ] && tail -20 "$work/gbxd.log" >&2
    exit 1
}
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- the package
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || fail "$build: no CMAKE_PROJECT_VERSION in CMakeCache.txt"
(cd "$build" && timeout 300 cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
arch=$(dpkg --print-architecture)
deb="$work/pkg/gbx_${version}_${arch}.deb"
[ -f "$deb" ] || fail "no $deb (cpack made: $(ls "$work/pkg"))"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = gbx ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), want $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = net ] || fail "Section: $(field Section)"
[ "$(field Maintainer)" = "gbx team" ] || fail "Maintainer: $(field Maintainer)"
depends=$(field Depends)
for dep in adduser procps libc6 libzmq5 libsodium23 'librocksdb[0-9.]*' libprotobuf-c1 libfyaml0 \
    libjansson4; do
    grep -Eq "(^|, )$dep( |,|$)" <<<"$depends" || fail "Depends has no $dep: $depends"
done
dpkg-deb -I "$deb" >"$work/info"
for s in postinst prerm postrm; do
    grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$s " "$work/info" ||
        fail "control script $s missing or not executable: $(cat "$work/info")"
done

dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's#^\./#/#' >"$work/files"
want=(
    /usr/bin/gbxd /usr/bin/gbxctl /usr/bin/gbx-audit /usr/bin/gbx-keygen /usr/bin/gbx-send
    /usr/bin/gbx-recv
    /usr/include/gbx/client.h /usr/include/gbx/identity.h /usr/include/gbx/envelope.h
    /usr/include/gbx/err.h /usr/include/gbx/v1/envelope.pb-c.h /usr/include/gbx/v1/adapter.pb-c.h
    '/usr/lib/(.*/)?libgbx\.a' '/usr/lib/(.*/)?libgbxproto\.a' '/usr/lib/(.*/)?libgbxpb\.a'
    '/usr/lib/(.*/)?pkgconfig/libgbx\.pc' '(/usr)?/lib/systemd/system/gbxd\.service'
    /usr/share/man/man8/gbxd.8.gz /usr/share/man/man8/gbxctl.8.gz
    /usr/share/man/man1/gbx-audit.1.gz /usr/share/man/man1/gbx-keygen.1.gz
    /usr/share/man/man5/gbxd.yaml.5.gz
    /usr/share/doc/gbx/README.md /usr/share/doc/gbx/docs/config.md
    /usr/share/doc/gbx/default-policy.yaml
)
for f in "${want[@]}"; do
    grep -Eqx "$f" "$work/files" || fail "not in the package: $f"
done
if grep -E 'gbx-bench|gbx-selfcheck|audit-tamper|test_|/tests?/' "$work/files"; then
    fail "test or bench programs in the package"
fi
# every file lies under /usr (etc and var belong to the admin and to gbxd)
if grep -Ev '^/usr/|^/$' "$work/files"; then
    fail "files outside /usr"
fi

# --- extracted
root="$work/root"
dpkg-deb -x "$deb" "$root"
unit=$(find "$root" -name gbxd.service -path '*/systemd/system/*')
# shellcheck disable=SC2016 # $GBXD_OPTS is the unit's
grep -qx 'ExecStart=/usr/bin/gbxd --home /var/lib/gbx $GBXD_OPTS' "$unit" ||
    fail "gbxd.service ExecStart: $(grep ExecStart "$unit")"
grep -qx 'User=gbx' "$unit" || fail "gbxd.service: not User=gbx"
grep -qx 'StateDirectory=gbx' "$unit" || fail "gbxd.service: no StateDirectory=gbx"
pc=$(find "$root" -name libgbx.pc)
if grep -n "$build\|$root\|$(cd "$(dirname "$0")/../.." && pwd)" "$unit" "$pc"; then
    fail "a path of the build machine in the unit or libgbx.pc"
fi
grep -qx 'prefix=/usr' "$pc" || fail "libgbx.pc: prefix is not /usr: $(grep prefix= "$pc")"
if command -v systemd-analyze >/dev/null; then
    # ExecStart must exist for verify: the unit, pointed at the extracted binary
    sed "s#^ExecStart=/usr/bin/#ExecStart=$root/usr/bin/#" "$unit" >"$work/gbxd.service"
    timeout 60 systemd-analyze verify --man=no "$work/gbxd.service" >"$work/verify" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$work/verify")"
fi

# gbxd and gbxctl of the package on a fresh demo home (gbxd --init writes
# it), moved to free ports
home="$work/home"
port=$(free_port)
metrics=$(free_port)
timeout 60 "$root/usr/bin/gbxd" --home "$home" --init >"$work/gbxd.log" 2>&1 ||
    fail "gbxd --init: $(cat "$work/gbxd.log")"
[ -f "$home/gbxd.yaml" ] || fail "gbxd --init wrote no $home/gbxd.yaml"
sed -i "s#tcp://127.0.0.1:7400#tcp://127.0.0.1:$port#" "$home/gbxd.yaml"
grep -q "tcp://127.0.0.1:$port" "$home/gbxd.yaml" || fail "no listen.adapter to move"
if grep -q '^  metrics:' "$home/gbxd.yaml"; then
    sed -i "s#^  metrics:.*#  metrics: 127.0.0.1:$metrics#" "$home/gbxd.yaml"
else
    sed -i "s#^  adapter: .*#&\n  metrics: 127.0.0.1:$metrics#" "$home/gbxd.yaml"
fi
"$root/usr/bin/gbxd" --home "$home" >"$work/gbxd.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    grep -Eq 'GBX-START( |$)' "$work/gbxd.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
grep -Eq 'GBX-START( |$)' "$work/gbxd.log" || fail "the package's gbxd did not start"
rc=0
timeout 30 "$root/usr/bin/gbxctl" -c "$home/gbxd.yaml" --as op.viewer status >"$work/status" \
    2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "the package's gbxctl status: exit $rc: $(cat "$work/status")"
grep -Eq '^node +demo-1$' "$work/status" || fail "gbxctl status: $(cat "$work/status")"
code=$(/usr/bin/python3 - "$metrics" <<'PY'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen("http://127.0.0.1:%s/healthz" % sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError as e:
    print(e)
PY
)
[ "$code" = 200 ] || fail "GET /healthz of the package's gbxd: $code"
kill -TERM "$pid"
rc=0
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "gbxd exit $rc after SIGTERM"

# a program of an agency's adapter, built against the extracted tree
cat >"$work/hello.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gbx/client.h>
#include <gbx/identity.h>

static const gbx_pubid_t *s_peer(void *arg, const char *agency_id)
{
    const gbx_pubid_t *me = arg;
    return strcmp(agency_id, me->id) == 0 ? me : NULL;
}

int main(void)
{
    gbx_identity_t *id = NULL;
    char *text = NULL;
    if (!gbx_id_valid("hk.cr") || gbx_id_valid("Not An Id"))
        return 1;
    if (gbx_identity_generate("hk.cr", &id) != GBX_OK)
        return 2;
    const gbx_pubid_t *pub = gbx_identity_public(id);
    if (gbx_pubid_format(pub, &text) != GBX_OK || !strstr(text, "hk.cr"))
        return 3;
    gbx_client_t *client = NULL;
    gbx_client_opts_t o;
    memset(&o, 0, sizeof o);
    if (gbx_client_new(&o, &client) != GBX_E_ARG) /* no endpoint */
        return 4;
    o.endpoint = "tcp://127.0.0.1:9"; /* connects in the background; nobody answers */
    o.identity = id;
    o.node = pub;
    o.peer = s_peer;
    o.peer_arg = (void *)pub;
    if (gbx_client_new(&o, &client) != GBX_OK || gbx_client_connected(client))
        return 5;
    gbx_client_destroy(&client);
    printf("libgbx ok: %s", text);
    free(text);
    gbx_identity_destroy(&id);
    return 0;
}
EOF
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs libgbx) || fail "pkg-config libgbx"
grep -q -- "-L$root/usr/lib" <<<"$flags" || fail "pkg-config: no -L into the tree: $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror -o "$work/hello" "$work/hello.c" $flags >"$work/cc.log" 2>&1 ||
    fail "cc against the package: $flags: $(cat "$work/cc.log")"
timeout 30 "$work/hello" >"$work/hello.out" 2>&1 || fail "the program: $(cat "$work/hello.out")"
grep -q '^libgbx ok: ' "$work/hello.out" || fail "the program: $(cat "$work/hello.out")"
echo "deb: $(basename "$deb") ok"
