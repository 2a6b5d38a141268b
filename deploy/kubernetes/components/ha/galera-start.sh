# components/ha: the mariadb container's command (bash), before the image's docker-entrypoint.sh. Arguments: the
# StatefulSet's args (mariadbd and its options), passed on with this node's name and address. Decides whether this
# node bootstraps a new cluster (--wsrep-new-cluster) or joins the running one:
#
# 1. grastate.dat says safe_to_bootstrap: 1 (this node was the last to leave a cluster that was shut down in order,
#    so it has every committed transaction): it bootstraps, unless a peer already answers on 3306 (a cluster is
#    running: it joins that one).
# 2. mysql-0 with an empty volume: the cluster's first start. It bootstraps (the image then initializes the database
#    and runs mysql-initdb.sh, wsrep off, before the server starts), unless within 30 s a peer answers on 3306
#    (mysql-0 lost its volume while the cluster ran: it joins and gets a full copy) or a peer's Galera port 4567
#    answers (peers with data are coming back: it joins them rather than start an empty cluster beside theirs).
# 3. mysql-0 with data but no grastate.dat: a MariaDB that never ran with Galera (the single server of before,
#    being converted). It bootstraps the cluster with its data, unless a peer answers on 3306.
# 4. mysql-1 or mysql-2 with an empty volume: it waits until a peer answers on 3306, then joins (full copy by
#    mariabackup). Meanwhile it starts nothing.
# 5. Anything else (data, safe_to_bootstrap: 0): it joins. After all three nodes crashed at once (none is safe to
#    bootstrap), they form the cluster again by themselves once all three are back (pc.recovery, galera.cnf). If one
#    never comes back: docs/operations.md, "High availability (production overlay)", the full-cluster restart.
set -euo pipefail

datadir=/var/lib/mysql
ordinal=${HOSTNAME##*-}
domain=mysql-headless.${POD_NAMESPACE}.svc.cluster.local
peers=()
for i in 0 1 2; do
  [ "$i" = "$ordinal" ] || peers+=("mysql-$i.$domain")
done
log() { printf '%s [galera-start] %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; }

if [ ! -f /usr/lib/galera/libgalera_smm.so ]; then
  log "no Galera provider (/usr/lib/galera/libgalera_smm.so) in this image: Galera needs the official mariadb image"
  exit 1
fi

# A peer whose server answers (mariadb-admin ping succeeds even when the login is refused): a running cluster node.
# (A node that is joining or waiting has 3306 closed.)
peer_serving() {
  local p
  for p in "${peers[@]}"; do
    if mariadb-admin --protocol=tcp --host="$p" --port=3306 --connect-timeout=3 ping >/dev/null 2>&1; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
# A peer whose Galera port answers: a node with data, joining or trying to form the cluster again.
peer_galera() {
  local p
  for p in "${peers[@]}"; do
    if timeout 3 bash -c "exec 3<>/dev/tcp/$p/4567" 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

bootstrap=
if [ -f "$datadir/grastate.dat" ] && grep -Eq '^safe_to_bootstrap:[[:space:]]*1' "$datadir/grastate.dat"; then
  if p=$(peer_serving); then
    log "safe_to_bootstrap: 1, but $p is serving: joining the running cluster"
  else
    log "safe_to_bootstrap: 1 and no peer serving: bootstrapping the cluster from this node"
    bootstrap=1
  fi
elif [ ! -d "$datadir/mysql" ] && [ "$ordinal" = 0 ]; then
  decided=
  for _ in 1 2 3 4 5 6; do
    if p=$(peer_serving); then
      log "empty volume, $p is serving: joining the running cluster (full copy by mariabackup)"
      decided=1
      break
    fi
    if p=$(peer_galera); then
      log "empty volume, $p has Galera up: joining it rather than bootstrapping an empty cluster beside it"
      decided=1
      break
    fi
    sleep 5
  done
  if [ -z "$decided" ]; then
    log "empty volume and no peer: the cluster's first start, bootstrapping it from this node"
    bootstrap=1
  fi
elif [ ! -d "$datadir/mysql" ]; then
  until p=$(peer_serving); do
    log "empty volume: waiting for a running node to join (mysql-0 bootstraps the cluster)"
    sleep 10
  done
  log "empty volume, $p is serving: joining (full copy by mariabackup)"
elif [ ! -f "$datadir/grastate.dat" ] && [ "$ordinal" = 0 ]; then
  if p=$(peer_serving); then
    log "data without grastate.dat, but $p is serving: joining the running cluster (its data replaces this one's)"
  else
    log "data without grastate.dat (a MariaDB that never ran Galera): bootstrapping the cluster with this data"
    bootstrap=1
  fi
else
  log "joining the cluster ($(grep -Es '^(seqno|safe_to_bootstrap):' "$datadir/grastate.dat" | tr '\n' ' '))"
fi

# mysql@localhost, identified by unix_socket as the OS user mysql (999) that runs mariadbd and the probes: the user
# of mariabackup's full copies (galera.cnf, wsrep_sst_auth) and of the readiness probe (galera-ready.sh), with the
# grants mariabackup needs. Made as root over the socket once the server answers (a no-op where it exists; Galera
# replicates it), so that a database made before this component has it too.
grants="RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR"
(
  for _ in $(seq 360); do
    sleep 5
    if MYSQL_PWD="$(cat /run/secrets/mp3converter/mysql-root-password 2>/dev/null)" mariadb --protocol=socket --user=root --batch \
        --execute="CREATE USER IF NOT EXISTS 'mysql'@'localhost' IDENTIFIED VIA unix_socket; GRANT $grants ON *.* TO 'mysql'@'localhost'" \
        >/dev/null 2>&1; then
      exit 0
    fi
  done
  log "could not make mysql@localhost in 30 minutes: full copies to other nodes and this node's readiness fail"
) &

args=("$@" "--wsrep_node_name=$HOSTNAME" "--wsrep_node_address=$POD_IP")
[ -z "$bootstrap" ] || args+=(--wsrep-new-cluster)
exec docker-entrypoint.sh "${args[@]}"
