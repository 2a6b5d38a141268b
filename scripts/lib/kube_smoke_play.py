"""Turns the rendered minikube overlay into what `podman kube play` can run on this machine (scripts/kube-smoke).

    python3 scripts/lib/kube_smoke_play.py RENDERED.yaml OUT_DIR

Reads the scripts/with-servers environment (MP3C_TEST_*, MONGODB_URI) and writes to OUT_DIR:
  play.yaml       the four services' Deployments and the ConfigMaps they read, changed only where podman or this
                  machine needs it (listed below, and in docs/deploy-minikube.md, "Smoke test without a cluster")
  probes.json     every readiness and liveness probe, [{"deployment", "kind", "port", "path"}], checked from outside
  mysql-initdb.sh the base's MariaDB init script, with its secret directory pointing at OUT_DIR/secrets/mysql
  definitions.json RabbitMQ's definitions with the Secret's passwords, as the broker's init container writes them
  secrets/<name>/ each secret volume's files (mode and group as kubelet makes them)

What changes, and why (podman 4.3 runs Pods, Deployments and ConfigMaps only, one replica, no Secrets, no Services):
  - hostNetwork: the stand-ins for the third-party servers are scripts/with-servers' private ones, on free ports of
    127.0.0.1, so the Services' names (mysql, rabbitmq, auth, maildev; podman ignores hostAliases on the host
    network) become 127.0.0.1 and their ports those servers' (MYSQL_HOST/PORT, AMQP_URL, AUTH_SVC_ADDRESS,
    SMTP_HOST/PORT); STORAGE_URL is the MongoDB-wire server's, without credentials (it has no authentication: it is
    not mongod);
  - SMTP_USERNAME and SMTP_PASSWORD for the test SMTP server, which requires AUTH (maildev does not);
  - each secretKeyRef becomes its value, and $(VAR) references are expanded, as kubelet would;
  - each secret volume becomes a hostPath directory holding the same files, and each emptyDir gets a name of its
    own pod's (podman 4.3 makes a named volume of an emptyDir: the four pods' "tmp" would be one);
  - probes are removed (podman would run them inside the container, which has no shell or curl): the script
    requests each one from outside instead;
  - no container ports (podman refuses them on the host network; the services listen on theirs anyway);
  - replicas 1 (one host network: two converters would share a port).
"""
import base64
import json
import os
import re
import sys

import yaml

SERVICES = ("auth", "gateway", "converter", "notification")
FS_GROUP = 10001


def expand(value, env):
    """Kubernetes' $(VAR) expansion: a defined variable is replaced, $$ escapes, anything else stays as it is."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def main(rendered, out):
    h = os.environ
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    secret = next(d for d in docs if d["kind"] == "Secret")
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    statefulsets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "StatefulSet"}

    amqp_port, mysql_port = h["MP3C_TEST_AMQP_PORT"], h["MP3C_TEST_MYSQL_PORT"]
    config_overrides = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": mysql_port, "SMTP_HOST": "127.0.0.1",
                        "SMTP_PORT": h["MP3C_TEST_SMTP_PORT"], "SMTP_TLS": "none"}

    def secret_dir(name, volume):
        path = os.path.join(out, "secrets", name)
        os.makedirs(path, exist_ok=True)
        items = volume["secret"].get("items") or [{"key": k, "path": k} for k in values]
        for item in items:
            file = os.path.join(path, item["path"])
            with open(file, "w") as f:
                f.write(values[item["key"]])
            os.chown(file, 0, FS_GROUP)
            os.chmod(file, item.get("mode", volume["secret"].get("defaultMode", 0o644)))
        return path

    play, probes, used_maps = [], [], set()
    for name in SERVICES:
        d = deployments[name]
        d["spec"]["replicas"] = 1
        pod = d["spec"]["template"]["spec"]
        pod["hostNetwork"] = True
        renamed = {}
        for volume in pod.get("volumes", []):
            if "emptyDir" in volume:  # podman makes a named volume of each: one per pod, as kubelet's are
                renamed[volume["name"]] = volume["name"] = f"kube-smoke-{name}-{volume['name']}"
            if "secret" in volume:
                volume["hostPath"] = {"path": secret_dir(name, volume), "type": "Directory"}
                del volume["secret"]
        for c in pod.get("initContainers", []) + pod["containers"]:
            for mount in c.get("volumeMounts", []):
                mount["name"] = renamed.get(mount["name"], mount["name"])
            # Named for the probes, then removed: podman refuses port mappings on the host network.
            ports = {p["name"]: p["containerPort"] for p in c.pop("ports", []) if "name" in p}
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.pop(kind, None)
                if probe and "httpGet" in probe:
                    port = probe["httpGet"]["port"]
                    probes.append({"deployment": name, "kind": kind, "port": ports.get(port, port),
                                   "path": probe["httpGet"].get("path", "/")})
            env = {}
            for e in c.get("env", []):
                if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]:
                    e["value"] = values[e["valueFrom"]["secretKeyRef"]["key"]]
                    del e["valueFrom"]
                if "value" in e:
                    e["value"] = expand(e["value"], env)
                    if e["name"] == "AMQP_URL":
                        e["value"] = e["value"].replace("@rabbitmq:5672/", f"@127.0.0.1:{amqp_port}/")
                    if e["name"] == "STORAGE_URL":
                        e["value"] = h["MONGODB_URI"].rstrip("/") + "/admin"
                    env[e["name"]] = e["value"]
            if name == "notification":
                c["env"] = c.get("env", []) + [{"name": "SMTP_USERNAME", "value": h["MP3C_TEST_SMTP_USER"]},
                                               {"name": "SMTP_PASSWORD", "value": h["MP3C_TEST_SMTP_PASSWORD"]}]
            used_maps.update(r["configMapRef"]["name"] for r in c.get("envFrom", []) if "configMapRef" in r)
        play.append(d)
    for map_name in sorted(used_maps):
        cm = config_maps[map_name]
        for key in cm.get("data", {}):
            if key in config_overrides:
                cm["data"][key] = config_overrides[key]
            elif key == "AUTH_SVC_ADDRESS":
                cm["data"][key] = cm["data"][key].replace("auth:", "127.0.0.1:")
        play.insert(0, cm)
    with open(os.path.join(out, "play.yaml"), "w") as f:
        yaml.safe_dump_all(play, f, sort_keys=False)
    with open(os.path.join(out, "probes.json"), "w") as f:
        json.dump(probes, f)

    # MariaDB: the base's init script, reading the passwords from a copy of the mysql pod's secret volume.
    mysql_pod = statefulsets["mysql"]["spec"]["template"]["spec"]
    mysql_secrets = secret_dir("mysql", next(v for v in mysql_pod["volumes"] if "secret" in v))
    script = next(cm["data"]["10-mp3converter.sh"] for cm in config_maps.values()
                  if "10-mp3converter.sh" in cm.get("data", {}))
    with open(os.path.join(out, "mysql-initdb.sh"), "w") as f:
        f.write(script.replace("/run/secrets/mp3converter/", mysql_secrets + "/"))

    # RabbitMQ: the definitions template with the passwords, as the broker's init container writes it at each boot.
    template = next(cm["data"]["definitions.template.json"] for cm in config_maps.values()
                    if "definitions.template.json" in cm.get("data", {}))
    definitions = re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], template)
    with open(os.open(os.path.join(out, "definitions.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(definitions)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
