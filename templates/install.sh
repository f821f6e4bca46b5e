#!/bin/sh
# Installs etcd member {{ node }} of cluster {{ cluster }} from this bundle
# ({{ package }} {{ version }}), written by {{ generator }}.
#
#   sudo ./install.sh [--root DIR] [--no-start] [--force]
#
# Creates the service user, places every file with its owner and mode, creates
# the data directory (0700), reloads systemd and enables the unit and the
# maintenance timers ({{ timers | join(sep=", ") }}). Safe to run again: unchanged
# files stay, changed ones are replaced, and a running etcd is restarted when
# the cluster can afford it (`etcd-maint restart`: under the cluster's restart
# lock, only while every other member is healthy; otherwise the restart stays
# pending and etcd-restart.service does it later).
# Refuses to overwrite another member's install unless --force is given.
# Refuses, before changing anything, to go through a symbolic link anywhere
# below the root (it could lead outside it), and a data directory whose
# parent is not root's.
set -eu
{#- What the fragments included below need (see each one's header). #}
{%- set format = "tar" %}
{%- set who = "install.sh" %}

here=$(cd "$(dirname "$0")" && pwd)
root=""
start={{ start }}
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --no-start) start=false; shift ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
root=${root%/}
if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (files go to system directories and are chowned)" >&2
  exit 1
fi

# Every component of $root$1 below $root must be a real file or directory
# (or not exist yet): through a symbolic link, chown and install would act on
# whatever it points at, outside the root.
no_symlink() { # absolute path on the node
  p=$root
  rest=${1#/}
  while [ -n "$rest" ]; do
    case "$rest" in
      */*) p="$p/${rest%%/*}"; rest=${rest#*/} ;;
      *) p="$p/$rest"; rest= ;;
    esac
    if [ -L "$p" ]; then
      echo "install.sh: $p is a symbolic link; refusing to install through it (it may lead outside ${root:-/})." >&2
      echo "install.sh: replace it with a real directory (move what it points at, if that is wanted, then remove the link) and run install.sh again." >&2
      exit 1
    fi
  done
}
# The owner of an existing directory (numeric uid).
owner_of() {
  ls -ldn "$1" | awk '{ print $3 }'
}
data_parent=$(dirname "{{ data_dir }}")
for path in{% for e in entries %} "{{ e.path }}"{% endfor %} "{{ data_dir }}"; do
  no_symlink "$path"
done
if [ -d "$root$data_parent" ] && [ "$(owner_of "$root$data_parent")" != 0 ]; then
  echo "install.sh: $root$data_parent is owned by uid $(owner_of "$root$data_parent"), not root: its owner could replace the data directory {{ data_dir }} with a link." >&2
  echo "install.sh: give it to root (chown root:root $root$data_parent) or set another paths.data_dir, and run install.sh again." >&2
  exit 1
fi

conf="$root{{ conf_file }}"
if [ -f "$conf" ] && [ "$force" = 0 ]; then
  name=$(sed -n 's/^ETCD_NAME=//p' "$conf")
  token=$(sed -n 's/^ETCD_INITIAL_CLUSTER_TOKEN=//p' "$conf")
  if [ "$name" != "{{ node }}" ] || [ "$token" != "{{ token }}" ]; then
    echo "install.sh: $conf is member '$name' of cluster '$token', not '{{ node }}' of '{{ token }}'." >&2
    echo "install.sh: refusing to overwrite another member's install; install that member's own bundle, or pass --force to replace it." >&2
    exit 1
  fi
fi
{%- include "upgrade-check" %}

user={{ user }}
if [ "$user" != root ] && ! grep -q "^$user:" "$root/etc/passwd" 2>/dev/null; then
  set -- --system --home-dir /var/lib/etcd --no-create-home --shell /usr/sbin/nologin --comment "etcd member"
  if [ -n "$root" ]; then set -- "$@" --root "$root"; fi
  if grep -q "^$user:" "$root/etc/group" 2>/dev/null; then
    useradd "$@" --gid "$user" "$user"
  else
    useradd "$@" --user-group "$user"
  fi
fi
uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/passwd")
gid=$(awk -F: -v u="$user" '$1 == u { print $4 }' "$root/etc/passwd")

{%- if sealed %}
{%- include "fragments/host-key-check" %}
{%- endif %}

changed=0
place() { # mode owner path
  src="$here/root$3"
  dst="$root$3"
  if [ "$2" = service ]; then o=$uid; g=$gid; else o=0; g=0; fi
  if ! cmp -s "$src" "$dst" 2>/dev/null; then
    changed=1
    install -m "$1" -o "$o" -g "$g" "$src" "$dst.etcdpack-new"
    mv -f "$dst.etcdpack-new" "$dst"
  else
    chown -h "$o:$g" "$dst"
    chmod "$1" "$dst"
  fi
}
{% for e in entries %}
{%- if e.dir and e.owned %}
install -d -m {{ e.mode }} -o 0 -g 0 "$root{{ e.path }}"
{%- elif e.dir %}
mkdir -p "$root{{ e.path }}"
{%- else %}
place {{ e.mode }} {{ e.owner }} {{ e.path }}
{%- endif %}
{%- endfor %}
{%- if sealed %}
key_owner="$uid:$gid"
{%- include "fragments/unseal-key" %}
{%- endif %}

mkdir -p "$root$data_parent"
install -d -m 0700 -o "$uid" -g "$gid" "$root{{ data_dir }}"
chown -h "$uid:$gid" "$root{{ data_dir }}"
chmod 0700 "$root{{ data_dir }}"

running=0
if [ -z "$root" ] && [ -d /run/systemd/system ]; then running=1; fi
{%- for t in retired_timers %}
# Not in this bundle (backup: turned off), left by an earlier one: no longer
# wanted, stopped, removed with its service.
if [ -e "$root{{ unit_dir }}/{{ t }}" ]; then
  if [ "$running" = 1 ]; then
    systemctl disable --now {{ t }} || true
  elif command -v systemctl >/dev/null 2>&1; then
    systemctl --root "${root:-/}" disable {{ t }} || true
  fi
  rm -f "$root{{ unit_dir }}/{{ t }}" "$root{{ unit_dir }}/{{ t | replace(from=".timer", to=".service") }}"
fi
{%- endfor %}
{%- if auth.enabled %}
{%- include "fragments/auth-request" %}
{%- endif %}

units="etcd.service{% for t in timers %} {{ t }}{% endfor %}"
if [ -n "$root" ]; then
  if command -v systemctl >/dev/null 2>&1; then
    systemctl --root "$root" enable $units
  fi
  echo "installed {{ package }} {{ version }} under $root; etcd starts when that system boots"
elif [ "$running" = 1 ]; then
  systemctl daemon-reload
  systemctl enable $units
  if [ "$start" = true ]; then
    # What does not run yet starts; a running member restarts below.
    systemctl start $units
  fi
{%- include "fragments/rolling-restart" %}
  echo "installed {{ package }} {{ version }}"
else
  echo "installed {{ package }} {{ version }}; systemd is not running, enable $units when it is"
fi
