"""What a schema cannot see in the manifests here: names that must agree between objects.

A schema passes a Service whose selector matches no pod, a probe on a port the container
does not name, a Secret key nobody defines, a misspelt HASHMESH_ variable the node would
ignore. Each of those deploys cleanly and fails later; this catches them offline. Also the
rules the brief for these manifests sets: non-root uid 10001, read-only root, no privilege
escalation, resources, /healthz and /readyz probes, one member pod.

    python3 crosscheck.py DIR    # DIR holds the manifests, kustomization.yaml, config.yaml

Exit status 1 with one line per problem, 0 with a one-line summary. Needs PyYAML.
"""

import pathlib
import re
import sys

import yaml

WORKLOADS = ("Deployment", "StatefulSet")
# Variables read by the CLI rather than config keys (docs/configuration.md lists those).
# follow.node / follow.token are config keys being added; listed here until the doc has them.
CLI_VARIABLES = {
    "HASHMESH_DATA_DIR", "HASHMESH_LOG", "HASHMESH_LOG_FORMAT", "HASHMESH_RPC", "HASHMESH_TOKEN",
    "HASHMESH_FOLLOW_NODE", "HASHMESH_FOLLOW_TOKEN",
}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def defined_keys(objects, kind):
    """Each ConfigMap's or Secret's name and the keys it defines."""
    return {o["metadata"]["name"]: set(o.get("data", {})) | set(o.get("stringData", {}))
            for o in objects if o["kind"] == kind}


def config_variables(doc):
    """The HASHMESH_ variables in the reference table generated from the code."""
    return set(re.findall(r"`(HASHMESH_[A-Z0-9_]+)`", doc.read_text())) if doc.exists() else None


def check_container(where, c, pod_volumes, secrets, config_maps, variables):
    ports = {p["name"] for p in c.get("ports", []) if "name" in p}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        got = c.get(probe, {}).get("httpGet")
        if not got:
            problem(where, f"no {probe} (httpGet {path})")
            continue
        if got.get("path") != path:
            problem(where, f"{probe} asks {got.get('path')}, the node answers it on {path}")
        if got.get("port") not in ports:
            problem(where, f"{probe} port {got.get('port')!r} is none of the container's ports {sorted(ports)}")
    sc = c.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(where, "readOnlyRootFilesystem is not true")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problem(where, "capabilities do not drop ALL")
    requests = c.get("resources", {}).get("requests", {})
    if not {"cpu", "memory"} <= requests.keys():
        problem(where, "resources.requests needs cpu and memory")
    for m in c.get("volumeMounts", []):
        if m["name"] not in pod_volumes:
            problem(where, f"mounts volume {m['name']!r}, which the pod does not define")
    for e in c.get("env", []):
        if variables is not None and e["name"].startswith("HASHMESH_") \
                and e["name"] not in variables | CLI_VARIABLES:
            problem(where, f"{e['name']} is no variable the node reads (docs/configuration.md)")
        ref = e.get("valueFrom", {})
        for kind, known in (("secretKeyRef", secrets), ("configMapKeyRef", config_maps)):
            if kind in ref:
                obj, key = ref[kind]["name"], ref[kind]["key"]
                if key not in known.get(obj, set()):
                    problem(where, f"env {e['name']} reads key {key!r} of {obj}, which config.yaml does not define")


def check_volumes(where, volumes, secrets, config_maps):
    for v in volumes:
        sources = v.get("projected", {}).get("sources", [])
        sources += [{"secret": {**v["secret"], "name": v["secret"]["secretName"]}}] if "secret" in v else []
        sources += [{"configMap": v["configMap"]}] if "configMap" in v else []
        for s in sources:
            for kind, known in (("secret", secrets), ("configMap", config_maps)):
                if kind not in s:
                    continue
                obj = s[kind]["name"]
                if obj not in known:
                    problem(where, f"volume {v['name']} reads {kind} {obj}, which config.yaml does not define")
                for item in s[kind].get("items", []):
                    if item["key"] not in known.get(obj, set()):
                        problem(where, f"volume {v['name']} reads key {item['key']!r} of {obj}, not in config.yaml")


def main(directory):
    d = pathlib.Path(directory).resolve()
    kustomization = load(d / "kustomization.yaml")[0]
    listed = kustomization.get("resources", [])
    for f in listed:
        if not (d / f).exists():
            problem("kustomization.yaml", f"lists {f}, which does not exist")
    for f in sorted(p.name for p in d.glob("*.yaml")):
        if f not in listed and f not in ("kustomization.yaml", "config.yaml"):
            problem("kustomization.yaml", f"does not list {f}")

    objects = [o for f in listed if (d / f).exists() for o in load(d / f)]
    settings = load(d / "config.yaml")
    secrets, config_maps = defined_keys(settings, "Secret"), defined_keys(settings, "ConfigMap")
    variables = config_variables(d.parent.parent / "docs" / "configuration.md")
    if variables is None:
        print("crosscheck: docs/configuration.md not found; HASHMESH_ variable names not checked")

    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    pods = {}  # workload name -> (template labels, container port names)
    follows = []  # (where, the URL of a --follow)
    for w in workloads:
        where, spec = name(w), w["spec"]
        template = spec["template"]
        labels = template["metadata"].get("labels", {})
        if not matches(spec["selector"].get("matchLabels"), labels):
            problem(where, "selector.matchLabels do not match the pod template's labels")
        pod = template["spec"]
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != 10001:
            problem(where, "pod securityContext must be runAsNonRoot with runAsUser 10001 (the image's user)")
        volumes = {v["name"] for v in pod.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        check_volumes(where, pod.get("volumes", []), secrets, config_maps)
        ports = set()
        for c in pod.get("initContainers", []) + pod["containers"]:
            follows.extend((f"{where} container {c['name']}", a) for a in re.findall(
                r"--follow[= ](\S+)", " ".join(c.get("args", []))))
            check_container(f"{where} container {c['name']}", c, volumes, secrets, config_maps, variables)
            ports |= {p["name"] for p in c.get("ports", []) if "name" in p}
        pods[w["metadata"]["name"]] = (labels, ports)
        if w["kind"] == "StatefulSet":
            if spec.get("replicas") != 1:
                problem(where, "replicas must be 1: two pods with one member key fork its log")
            svc = services.get(spec.get("serviceName"))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                problem(where, f"serviceName {spec.get('serviceName')!r} is not a headless Service here")

    for svc in services.values():
        where = name(svc)
        selected = [p for p in pods.values() if matches(svc["spec"].get("selector"), p[0])]
        if not selected:
            problem(where, "its selector matches no pod template")
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str) and any(target not in p[1] for p in selected):
                problem(where, f"targetPort {target!r} is not a named port of the pods it selects")

    for where, url in follows:
        m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/?", url)
        svc = services.get(m.group(1)) if m else None
        if svc is None or int(m.group(2)) not in [p["port"] for p in svc["spec"]["ports"]]:
            problem(where, f"--follow {url} is no Service port defined here")

    for o in objects:
        if o["kind"] == "HorizontalPodAutoscaler":
            ref = o["spec"]["scaleTargetRef"]
            if not any(w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"] for w in workloads):
                problem(name(o), f"scales {ref['kind']}/{ref['name']}, which is not defined here")
        if o["kind"] == "PodDisruptionBudget":
            if not any(matches(o["spec"]["selector"].get("matchLabels"), p[0]) for p in pods.values()):
                problem(name(o), "its selector matches no pod template")

    for p in problems:
        print(f"crosscheck: {p}")
    if problems:
        return 1
    print(f"crosscheck: {len(objects)} objects in {len(listed)} files and config.yaml's "
          f"{len(secrets)} Secrets and {len(config_maps)} ConfigMap agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
