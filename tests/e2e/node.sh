#!/usr/bin/env bash
# Boot Debian roots with real systemd as PID 1, without a container engine, for etcdpack's
# end-to-end tests. Needs root, debootstrap and util-linux (unshare, nsenter, flock).
#
#   node.sh root [CACHE_DIR]        build (once) the cached base root; print its path
#   node.sh boot BASE ROOT [NAME]   make ROOT (an overlay on BASE, or a copy) unless it exists,
#                                   boot it; print the host PID of its systemd once booted
#   node.sh exec PID CMD...         run CMD inside the node (clean environment, root's PATH)
#   node.sh stop PID [ROOT]         power the node off (then SIGKILL), remove its cgroup, unmount
#   node.sh rm DIR                  delete a root (or a directory of roots) no node is running on
#   node.sh reap                    stop every node started by this script (after a killed test run)
#
# With ETCDPACK_E2E_OWNER=PID, boot also starts a watchdog that stops the node once PID exits.
#
# Each node lives in its own pid, mount, uts, ipc and cgroup namespace and shares the host's
# network, so node i can listen on 127.0.0.i. See README.md beside this file.
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
# adduser is also in minbase (Priority: important) but packages depend on it by name: keep it explicit.
# rpm: the .rpm install tests run rpm inside the nodes (Debian's rpm, with an empty database).
# age: packages with sealed keys depend on it and unseal with it (nodes reach no mirror).
INCLUDE=systemd,systemd-sysv,dbus,adduser,rpm,age
MIRROR=${ETCDPACK_E2E_MIRROR:-http://deb.debian.org/debian}
DEFAULT_CACHE=/var/cache/etcdpack-e2e
STATE_DIR=${ETCDPACK_E2E_STATE_DIR:-/run/etcdpack-e2e}
BOOT_TIMEOUT=${ETCDPACK_E2E_BOOT_TIMEOUT:-60}
STOP_TIMEOUT=${ETCDPACK_E2E_STOP_TIMEOUT:-30}
CGROUP_NAME=etcdpack-e2e
STAMP=etc/etcdpack-e2e-base
# Bump when prepare_base changes, so cached roots are rebuilt.
PREP_REVISION=4

# Units that would touch the host through the shared kernel, or that cannot work here:
# gettys would grab the host's ttys and console; module loading, debugfs/tracefs/configfs and
# fuse control are host-kernel interfaces; fstrim and e2scrub would act on the host's disks;
# remount-fs would remount the host's root superblock; apt/dpkg timers only add noise.
MASK=(
	getty.target console-getty.service getty@.service serial-getty@.service
	container-getty@.service
	systemd-modules-load.service modprobe@.service
	sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
	sys-fs-fuse-connections.mount
	proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-binfmt.service
	systemd-remount-fs.service systemd-firstboot.service
	fstrim.timer fstrim.service e2scrub_all.timer e2scrub_reap.service
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
)

SELF=$(readlink -f "${BASH_SOURCE[0]}")
NODE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'node.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$SELF" >&2
	exit 2
}

need_root() { [[ $EUID -eq 0 ]] || die "must run as root (namespaces, mounts, chroot)"; }

stamp_text() {
	printf 'suite=%s\nvariant=%s\ninclude=%s\nprep=%s\nmask=%s\n' \
		"$SUITE" "$VARIANT" "$INCLUDE" "$PREP_REVISION" "${MASK[*]}"
}

# Mount points at or below $1 in this mount namespace (only below it with "keep" as $2),
# deepest first.
mounts_under() {
	local dir=${1%/} keep=${2:-}
	awk '{ print $5 }' /proc/self/mountinfo | while IFS= read -r m; do
		m=$(printf '%b' "$m") # mountinfo escapes spaces etc. as \040
		if [[ ($m == "$dir" && -z $keep) || $m == "$dir"/* ]]; then printf '%s\n' "$m"; fi
	done | sort -r
}

unmount_under() {
	local m tries=0
	while [[ -n $(mounts_under "$@") ]]; do
		((tries++ < 5)) || die "could not unmount everything under $1"
		mounts_under "$@" | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
	done
}

# Delete a directory tree without ever crossing into a mounted filesystem.
remove_tree() {
	[[ -e $1 ]] || return 0
	unmount_under "$1"
	rm -rf --one-file-system -- "$1"
}

prepare_base() {
	local r=$1 u
	for u in "${MASK[@]}"; do ln -sfn /dev/null "$r/etc/systemd/system/$u"; done
	# Identity is per node: boot writes hostname, hosts and a fresh machine-id into each copy.
	rm -f "$r/etc/hostname"
	ln -sfn /etc/machine-id "$r/var/lib/dbus/machine-id"
	# Every node shares the host kernel's log and boot id: importing /dev/kmsg would copy the
	# host's log into each node, and a persistent journal would merge all boots of a root into
	# one "journalctl -b". A volatile journal holds exactly the current boot.
	mkdir -p "$r/etc/systemd/journald.conf.d"
	printf '[Journal]\nStorage=volatile\nReadKMsg=no\n' >"$r/etc/systemd/journald.conf.d/etcdpack-e2e.conf"
	rm -rf "$r/var/log/journal"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
	# Every node starts as a copy of this root: what no test reads only makes copies slower
	# (halves the root). Nodes have no mirror to install from anyway; apt lists go too.
	find "$r/var/cache/apt/archives" -name '*.deb' -delete
	find "$r/var/lib/apt/lists" -maxdepth 1 -type f -name '*_*' -delete
	find "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/locale" "$r/usr/share/info" \
		-mindepth 1 -delete
}

cmd_root() {
	(($# <= 1)) || usage
	need_root
	local cache=${1:-$DEFAULT_CACHE}
	mkdir -p "$cache"
	cache=$(readlink -f "$cache")
	local root want d
	want=$(stamp_text)
	# The directory is named after the stamp: checkouts whose include lists or preparation
	# differ (branches, worktrees) each keep their own root instead of rebuilding, and deleting,
	# the one the other is copying from.
	root=$cache/$SUITE-root-$(printf '%s\n' "$want" | sha256sum | cut -c1-12)
	exec 9>"$cache/.$SUITE-root.lock"
	flock 9
	if [[ -f $root/$STAMP && $(<"$root/$STAMP") == "$want" ]]; then
		printf '%s\n' "$root"
		return
	fi
	for d in "$root".tmp.* "$root".old.*; do remove_tree "$d"; done
	command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
	local tmp=$root.tmp.$$ buildlog=$root.build.log start=$SECONDS
	log "building $root: debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE (about a minute; log: $buildlog)"
	if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" >"$buildlog" 2>&1; then
		tail -n 30 "$buildlog" >&2
		remove_tree "$tmp"
		die "debootstrap failed; full log in $buildlog"
	fi
	prepare_base "$tmp"
	printf '%s\n' "$want" >"$tmp/$STAMP"
	if [[ -e $root ]]; then mv "$root" "$root.old.$$"; fi
	mv "$tmp" "$root"
	remove_tree "$root.old.$$"
	log "built $root in $((SECONDS - start)) s"
	for d in "$cache/$SUITE"-root*; do
		[[ $d == "$root" || ! -d $d ]] || log "an older root, unused by this checkout: $d (node.sh rm it once nothing uses it)"
	done
	printf '%s\n' "$root"
}

# The cgroup2 hierarchy the nodes' cgroups go in (a private mount when the host has none).
cgroup2_dir() {
	local m
	m=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | head -n1)
	if [[ -z $m ]]; then
		m=$STATE_DIR/cgroup2
		mkdir -p "$m"
		mount -t cgroup2 none "$m"
	fi
	printf '%s/%s\n' "$m" "$CGROUP_NAME"
}

alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

wait_gone() {
	local pid=$1 deadline=$((SECONDS + $2))
	while alive "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# The cgroup (relative to the cgroup2 root) of a live node's systemd, or nothing.
node_cgroup_of() {
	local cg
	cg=$(sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null) || return 0
	if [[ $cg =~ ^(.*/$CGROUP_NAME/node-[0-9]+)(/|$) ]]; then printf '%s\n' "${BASH_REMATCH[1]}"; fi
}

is_node() { alive "$1" && [[ -n $(node_cgroup_of "$1") ]]; }

state_get() { sed -n "s/^$2=//p" "$STATE_DIR/$1" 2>/dev/null; }

node_exec() {
	local pid=$1
	shift
	nsenter --target "$pid" --mount --uts --ipc --pid --root --wd -- \
		/usr/bin/env -i PATH="$NODE_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= "$@"
}

cmd_exec() {
	(($# >= 2)) || usage
	local pid=$1
	shift
	[[ $pid =~ ^[0-9]+$ ]] || die "not a PID: $pid"
	is_node "$pid" || die "PID $pid is not a running node"
	node_exec "$pid" "$@"
}

# Hidden: runs in the new namespaces as their PID 1, then becomes systemd.
cmd_init() {
	local cg=$1 r=$2 name=$3
	mount --bind "$r" "$r"
	mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
	# Read-only like systemd-nspawn: the node must not retune the shared kernel or network.
	mount --bind "$r/proc/sys" "$r/proc/sys"
	mount -o remount,bind,ro "$r/proc/sys"
	if [[ -e $r/proc/sysrq-trigger ]]; then
		mount --bind "$r/proc/sysrq-trigger" "$r/proc/sysrq-trigger"
		mount -o remount,bind,ro "$r/proc/sysrq-trigger"
	fi
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
	mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$r/run"
	# A /dev of the node's own, never the host's: systemd chowns and chmods
	# device nodes at boot (the console becomes root:tty 0620), and on a bind
	# of a host node that change would land on the host (a host /dev/null that
	# only root can open breaks apt and every service user on the host).
	mount -t tmpfs -o mode=755,nosuid tmpfs "$r/dev"
	local dev name major minor
	for dev in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
		IFS=: read -r name major minor <<<"$dev"
		mknod -m 666 "$r/dev/$name" c "$major" "$minor"
	done
	# The console is a null device of its own: the host's console stays the host's.
	mknod -m 600 "$r/dev/console" c 1 3
	mkdir -p "$r/dev/pts" "$r/dev/shm"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec devpts "$r/dev/pts"
	ln -s pts/ptmx "$r/dev/ptmx"
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm"
	ln -s /proc/self/fd "$r/dev/fd"
	ln -s /proc/self/fd/0 "$r/dev/stdin"
	ln -s /proc/self/fd/1 "$r/dev/stdout"
	ln -s /proc/self/fd/2 "$r/dev/stderr"
	hostname "$name"
	# systemd gets a cgroup namespace rooted at a leaf of its own, so that no other process
	# (unshare stays in the parent) sits in the tree it manages; each node's systemd owns its
	# subtree of the unified hierarchy and never sees, or stops, another node's services.
	mkdir -p "$cg/payload"
	echo 0 >"$cg/payload/cgroup.procs"
	exec unshare --cgroup chroot "$r" /usr/bin/env -i container=other \
		/lib/systemd/systemd systemd.unified_cgroup_hierarchy=1
}

# Hidden: joins the node's cgroup, then forks the namespaces' PID 1.
cmd_spawn() {
	local parent=$1 r=$2 name=$3
	mkdir -p "$parent"
	mkdir -p "$parent/node-$$"
	echo $$ >"$parent/node-$$/cgroup.procs"
	exec unshare --pid --fork --mount --uts --ipc --propagation private --kill-child \
		"$SELF" _init "$parent/node-$$" "$r" "$name"
}

# Print what helps explain a failed boot.
diagnose() {
	local pid=$1 log=$2
	if [[ -s $log ]]; then
		log "spawn output:"
		sed 's/^/  /' "$log" >&2
	fi
	if alive "$pid"; then
		node_exec "$pid" systemctl --no-pager --failed >&2 2>&1 || true
		node_exec "$pid" systemctl --no-pager list-jobs >&2 2>&1 || true
		node_exec "$pid" journalctl --no-pager -b -n 40 >&2 2>&1 || true
	fi
}

# A node's root is an overlay: the base root, read-only and shared by every node, under a
# layer of the node's own ($r.overlay) that holds only what the node changed, so a node costs
# the disk of its packages and data instead of a copy of the base root. Where overlayfs is not
# available (or ETCDPACK_E2E_ROOTS=copy), the root is a full copy instead.
overlay_root() {
	local base=$1 r=$2
	[[ ${ETCDPACK_E2E_ROOTS:-overlay} == overlay ]] || return 1
	mkdir -p "$r.overlay/upper" "$r.overlay/work" "$r"
	printf '%s\n' "$base" >"$r.overlay/lower"
	if mount_overlay "$base" "$r" 2>/dev/null; then return 0; fi
	log "overlayfs is not available here; copying the base root instead"
	rmdir "$r"
	remove_tree "$r.overlay"
	return 1
}

mount_overlay() {
	mount -t overlay overlay -o "lowerdir=$1,upperdir=$2.overlay/upper,workdir=$2.overlay/work" "$2"
}

cmd_boot() {
	(($# >= 2 && $# <= 3)) || usage
	need_root
	local base=$1 r=$2 name=${3:-}
	[[ -n $name ]] || name=$(basename "$r")
	[[ $name =~ ^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})$ ]] || die "not a valid hostname: $name"
	r=$(readlink -m "$r")
	local fresh=0
	if [[ ! -e $r ]]; then
		[[ -f $base/$STAMP ]] || die "$base is not a base root (make one with: node.sh root)"
		mkdir -p "$(dirname "$r")"
		remove_tree "$r.overlay"
		if ! overlay_root "$base" "$r"; then
			remove_tree "$r.tmp.$$"
			cp -a --reflink=auto "$base" "$r.tmp.$$"
			mv "$r.tmp.$$" "$r"
		fi
		fresh=1
	elif [[ -d $r.overlay ]] && ! mountpoint -q "$r"; then
		mount_overlay "$(<"$r.overlay/lower")" "$r" || die "could not mount the overlay of $r again"
	fi
	[[ -x $r/lib/systemd/systemd ]] || die "$r has no /lib/systemd/systemd"
	mkdir -p "$STATE_DIR"
	local f p
	for f in "$STATE_DIR"/*.state; do
		[[ -e $f ]] || continue
		p=$(basename "$f" .state)
		if [[ $(state_get "$p.state" root) == "$r" ]] && is_node "$p"; then
			die "$r is already booted (systemd PID $p)"
		fi
	done
	# Identity: the hostname follows NAME on every boot; the machine-id is made once per copy.
	printf '%s\n' "$name" >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
		"$name" >"$r/etc/hosts"
	if ((fresh)) || [[ ! -s $r/etc/machine-id ]]; then
		tr -d '-' </proc/sys/kernel/random/uuid >"$r/etc/machine-id"
	fi

	local parent log start=$SECONDS
	parent=$(cgroup2_dir)
	log=$(mktemp "$STATE_DIR/spawn.XXXXXX")
	setsid "$SELF" _spawn "$parent" "$r" "$name" </dev/null >"$log" 2>&1 &
	local spawner=$! pid=
	# The spawner becomes unshare (same PID); its only child becomes systemd.
	while [[ -z $pid ]]; do
		if [[ $(cat "/proc/$spawner/comm" 2>/dev/null) == unshare ]]; then
			pid=$(cat "/proc/$spawner/task/$spawner/children" 2>/dev/null || true)
		fi
		pid=${pid%% *}
		if [[ -z $pid ]]; then
			if ! alive "$spawner" || ((SECONDS - start >= 10)); then
				diagnose 0 "$log"
				kill -KILL "$spawner" 2>/dev/null || true
				remove_cgroup "$parent/node-$spawner"
				rm -f "$log"
				die "the node for $r exited or hung before systemd came up"
			fi
			sleep 0.05
		fi
	done
	mv "$log" "$STATE_DIR/$pid.log"
	log=$STATE_DIR/$pid.log
	printf 'root=%s\nname=%s\ncgroup=%s\nunshare=%s\n' \
		"$r" "$name" "$parent/node-$spawner" "$spawner" >"$STATE_DIR/$pid.state"

	if [[ -n ${ETCDPACK_E2E_OWNER:-} ]]; then
		local owner_start
		if ! owner_start=$(start_time "$ETCDPACK_E2E_OWNER"); then
			STOP_TIMEOUT=5 cmd_stop "$pid" "$r" >/dev/null 2>&1 || true
			die "owner PID $ETCDPACK_E2E_OWNER is gone; stopped $r"
		fi
		setsid "$SELF" _watch "$ETCDPACK_E2E_OWNER" "$owner_start" "$pid" </dev/null >/dev/null 2>&1 &
	fi

	local state=
	while :; do
		if ! alive "$pid"; then
			diagnose "$pid" "$log"
			STOP_TIMEOUT=5 cmd_stop "$pid" "$r" >/dev/null 2>&1 || true
			die "systemd in $r exited during boot"
		fi
		if ! caller_alive; then
			STOP_TIMEOUT=5 cmd_stop "$pid" "$r" >/dev/null 2>&1 || true
			die "the caller exited while $r was booting; stopped it"
		fi
		state=$(node_exec "$pid" systemctl is-system-running 2>/dev/null) || true
		case $state in running | degraded) break ;; esac
		if ((SECONDS - start >= BOOT_TIMEOUT)); then
			diagnose "$pid" "$log"
			STOP_TIMEOUT=5 cmd_stop "$pid" "$r" >/dev/null 2>&1 || true
			die "$r did not finish booting within $BOOT_TIMEOUT s (state: ${state:-unreachable})"
		fi
		sleep 0.1
	done
	if [[ $state == degraded ]]; then
		log "warning: $name booted degraded:"
		node_exec "$pid" systemctl --no-pager --failed >&2 || true
	fi
	printf '%s\n' "$pid"
}

# Whether the process that ran this script is still there (it is reparented when it dies).
caller_alive() { [[ $(awk '{ print $4 }' /proc/$$/stat) == "$PPID" ]]; }

# A process's start time, which tells a live process from a later one reusing its PID.
start_time() {
	local stat
	{ stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
	stat=${stat##*) }
	awk '{ print $20 }' <<<"$stat"
}

# Hidden: stops the node when its owner (the test process) dies without stopping it, e.g.
# killed by SIGKILL or Ctrl-C, so no destructor ran.
cmd_watch() {
	local owner=$1 owner_start=$2 pid=$3
	while is_node "$pid"; do
		if [[ $(start_time "$owner" 2>/dev/null) != "$owner_start" ]]; then
			cmd_stop "$pid"
			return
		fi
		sleep 1
	done
}

remove_cgroup() {
	local cg=$1 deadline=$((SECONDS + 5))
	[[ -d $cg ]] || return 0
	while :; do
		if [[ -n $(cat "$cg/cgroup.procs" 2>/dev/null) ]]; then
			echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
		fi
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[[ -d $cg ]] || return 0
		((SECONDS < deadline)) || {
			log "warning: could not remove cgroup $cg"
			return 0
		}
		sleep 0.1
	done
}

cmd_stop() {
	(($# >= 1 && $# <= 2)) || usage
	need_root
	local pid=$1 r=${2:-}
	[[ $pid =~ ^[0-9]+$ ]] || die "not a PID: $pid"
	local cg spawner
	r=${r:-$(state_get "$pid.state" root)}
	cg=$(state_get "$pid.state" cgroup)
	spawner=$(state_get "$pid.state" unshare)
	if is_node "$pid"; then
		[[ -n $cg ]] || cg=$(dirname "$(cgroup2_dir)")$(node_cgroup_of "$pid")
		# SIGRTMIN+4 asks systemd for poweroff.target; in a pid namespace it then exits.
		kill -s RTMIN+4 "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
			log "warning: PID $pid did not power off within $STOP_TIMEOUT s; killing it"
			[[ -z $cg ]] || echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" 10 || die "PID $pid survived SIGKILL"
		fi
	elif alive "$pid" && [[ -n $cg ]]; then
		log "warning: PID $pid is no longer a node (reused?); leaving it alone"
	fi
	# unshare exits once its child has; with --kill-child its death would also kill the node.
	if [[ -n $spawner ]] && alive "$spawner" &&
		[[ $(tr '\0' ' ' <"/proc/$spawner/cmdline" 2>/dev/null) == unshare* ]]; then
		wait_gone "$spawner" 5 || kill -KILL "$spawner" 2>/dev/null || true
	fi
	[[ -z $cg ]] || remove_cgroup "$cg"
	# What the node mounted stays in its own namespace; an overlay root itself stays mounted,
	# so that the stopped node's files can still be read.
	[[ -z $r ]] || unmount_under "$r" keep
	rm -f "$STATE_DIR/$pid.state" "$STATE_DIR/$pid.log"
}

cmd_rm() {
	(($# == 1)) || usage
	need_root
	local r f p n
	r=$(readlink -m "$1")
	[[ $r != / ]] || die "refusing to remove /"
	for f in "$STATE_DIR"/*.state; do
		[[ -e $f ]] || continue
		p=$(basename "$f" .state)
		n=$(state_get "$p.state" root)
		if [[ $n == "$r" || $n == "$r"/* ]] && is_node "$p"; then
			die "$n is booted (systemd PID $p); stop it first"
		fi
	done
	remove_tree "$r"
	remove_tree "$r.overlay"
}

cmd_reap() {
	(($# == 0)) || usage
	need_root
	local f p cg parent
	for f in "$STATE_DIR"/*.state; do
		[[ -e $f ]] || continue
		p=$(basename "$f" .state)
		log "stopping node PID $p ($(state_get "$p.state" root))"
		cmd_stop "$p" || true
	done
	parent=$(cgroup2_dir)
	for cg in "$parent"/node-*; do
		[[ -d $cg ]] || continue
		log "removing leftover cgroup $cg"
		remove_cgroup "$cg"
	done
	rmdir "$parent" 2>/dev/null || true
	rm -f "$STATE_DIR"/spawn.*
}

main() {
	(($# >= 1)) || usage
	local cmd=$1
	shift
	case $cmd in
	root) cmd_root "$@" ;;
	boot) cmd_boot "$@" ;;
	exec) cmd_exec "$@" ;;
	stop) cmd_stop "$@" ;;
	rm) cmd_rm "$@" ;;
	reap) cmd_reap "$@" ;;
	_spawn) cmd_spawn "$@" ;;
	_init) cmd_init "$@" ;;
	_watch) cmd_watch "$@" ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

# On one line, so that bash has read the whole script before running any of it.
main "$@"; exit
