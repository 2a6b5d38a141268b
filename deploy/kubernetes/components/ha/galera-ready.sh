# components/ha: the mariadb container's readiness probe. Ready when the node is part of the cluster's primary
# component and in sync (wsrep_ready ON, wsrep_local_state_comment Synced): not while it joins, receives or gives a
# full copy (Joiner, Donor/Desynced) or is cut off from the majority (non-primary). Only ready nodes are behind the
# Service mysql, and the PodDisruptionBudget counts the others as missing. Logs in over the local socket as
# mysql@localhost (unix_socket: the OS user mysql, no password).
set -eu
status=$(mariadb --protocol=socket --user=mysql --batch --skip-column-names --connect-timeout=5 \
  --execute="SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state_comment')")
echo "$status" | grep -q '^wsrep_ready[[:space:]]ON$'
echo "$status" | grep -q '^wsrep_local_state_comment[[:space:]]Synced$'
