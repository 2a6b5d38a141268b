# components/ha: run by the Job mongodb-init (mongodb.yaml) at every `kubectl apply`. Waits until the three members
# answer, then mongodb-init-replica-set.js initiates the replica set if it never was, and makes the services' user on
# its primary if it is missing. Does nothing else: run again, it changes nothing.
set -eu
for host in $(echo "$MONGODB_MEMBERS" | tr ',' ' '); do
  tries=0
  until mongosh --quiet --norc "mongodb://$host/?directConnection=true&serverSelectionTimeoutMS=5000" \
      --eval 'quit(db.adminCommand({ ping: 1 }).ok === 1 ? 0 : 1)' >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 120 ]; then
      echo "mongodb-init: $host does not answer after 10 minutes" >&2
      exit 1
    fi
    echo "mongodb-init: waiting for $host" >&2
    sleep 5
  done
done
# mongodb-0 directly: before the set exists there is no primary to select.
first=$(echo "$MONGODB_MEMBERS" | cut -d, -f1)
exec mongosh --quiet --norc "mongodb://$first/admin?directConnection=true" --file /opt/mongodb-init/init-replica-set.js
