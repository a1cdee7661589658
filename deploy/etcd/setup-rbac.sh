#!/usr/bin/env bash
# Users and roles for one cbcontrol namespace in etcd, then authentication on.
#
#   ETCDCTL_ENDPOINTS=https://etcd-0.etcd:2379,... \
#   CBCONTROL_NAMESPACE=prod ETCD_ROOT_PASSWORD=... \
#   CBCONTROL_APP_PASSWORD=... CBCONTROL_OPERATOR_PASSWORD=... \
#   deploy/etcd/setup-rbac.sh
#
# Roles, under /cbcontrol/<namespace>/ (the key layout of docs/store.md):
#   cbcontrol-app-<ns>       what an application needs: read breakers/, presets/ and
#                            the epoch key (its desired state), read and write
#                            instances/ and status/ (its status, on its lease)
#   cbcontrol-operator-<ns>  what cbctl needs: read the namespace, write breakers/,
#                            presets/, history/ (audit records) and the epoch key;
#                            never instances/ or status/, so it cannot forge an ack
# Users of the same names hold them (override with CBCONTROL_APP_USER and
# CBCONTROL_OPERATOR_USER). Applications then use
#   CBCONTROL_STORE=etcds://host:2379/<ns> with CBCONTROL_ETCD_USER/_PASSWORD.
#
# What etcd's prefix permissions cannot enforce (cbcontrol does, or nothing does):
#   - An app may write or delete the status of any instance, not only its own: a key
#     range cannot be scoped to the writer. cbctl counts an acknowledgement only from
#     a record that names the exact spec document it wrote (its digest), so a forged
#     record can claim a change applied; it cannot change a spec.
#   - An app reads every spec and preset of its namespace, not only those of its own
#     breakers (they share one prefix). Use one namespace per trust boundary.
#   - The operator may overwrite or delete history records: etcd has no append-only
#     permission. cbctl writes each record once, with a create-only transaction.
#   - Generations only grow because cbctl writes with compare-and-swap; any user who
#     can write breakers/ could write a lower one by hand.
#   - Neither role bounds what it writes: size, nesting and content are checked by
#     the library on read, never by etcd.
#
# Passwords go through the environment and stdin, never the command line. The script
# can run again: existing roles and users are kept, their grants made again. It
# adds grants and never revokes one: to narrow a role an older version made broader,
# `etcdctl role delete` it first.
set -euo pipefail

: "${CBCONTROL_NAMESPACE:?set CBCONTROL_NAMESPACE, the cbcontrol namespace (prod)}"
: "${ETCD_ROOT_PASSWORD:?set ETCD_ROOT_PASSWORD, for the etcd root user}"
: "${CBCONTROL_APP_PASSWORD:?set CBCONTROL_APP_PASSWORD, for the application user}"
: "${CBCONTROL_OPERATOR_PASSWORD:?set CBCONTROL_OPERATOR_PASSWORD, for the operator}"

ns=$CBCONTROL_NAMESPACE
case $ns in
  "" | */* | *[!A-Za-z0-9_.-]*) echo "bad namespace: '$ns'" >&2; exit 2 ;;
esac
prefix="/cbcontrol/$ns/"
app_role="cbcontrol-app-$ns"
operator_role="cbcontrol-operator-$ns"
app_user=${CBCONTROL_APP_USER:-$app_role}
operator_user=${CBCONTROL_OPERATOR_USER:-$operator_role}

# Anyone may list users until authentication is on; from then on, only root.
unset ETCDCTL_USER
if etcdctl user list >/dev/null 2>&1; then
  auth_on=
else
  export ETCDCTL_USER="root:$ETCD_ROOT_PASSWORD"
  auth_on=1
fi

has() { etcdctl "$1" list | grep -x -- "$2" >/dev/null; }  # not -q: no SIGPIPE

add_user() {  # name password
  if ! has user "$1"; then
    printf '%s\n' "$2" | etcdctl user add "$1" --interactive=false >/dev/null
  fi
}

add_role() {  # name (permission key)...; a key ending in / is a prefix
  local role=$1 is_prefix
  shift
  has role "$role" || etcdctl role add "$role" >/dev/null
  while [ $# -gt 0 ]; do
    case $2 in */) is_prefix=true ;; *) is_prefix=false ;; esac
    etcdctl role grant-permission "$role" "$1" --prefix=$is_prefix "$2" >/dev/null
    shift 2
  done
}

add_user root "$ETCD_ROOT_PASSWORD"
etcdctl user grant-role root root >/dev/null

add_role "$app_role" \
  read "${prefix}breakers/" \
  read "${prefix}presets/" \
  read "${prefix}epoch" \
  readwrite "${prefix}instances/" \
  readwrite "${prefix}status/"
add_role "$operator_role" \
  read "$prefix" \
  readwrite "${prefix}breakers/" \
  readwrite "${prefix}presets/" \
  readwrite "${prefix}history/" \
  readwrite "${prefix}epoch"

add_user "$app_user" "$CBCONTROL_APP_PASSWORD"
etcdctl user grant-role "$app_user" "$app_role" >/dev/null
add_user "$operator_user" "$CBCONTROL_OPERATOR_PASSWORD"
etcdctl user grant-role "$operator_user" "$operator_role" >/dev/null

[ -n "$auth_on" ] || etcdctl auth enable >/dev/null
echo "namespace $ns: users $app_user ($app_role), $operator_user ($operator_role)"
