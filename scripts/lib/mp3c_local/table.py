"""scripts/services.toml, the table of every local process, and its templates."""
import functools, os, re, tomllib

from .ports import free_port

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
LIB = os.path.join(ROOT, "scripts", "lib")


@functools.cache
def load():
    with open(os.path.join(ROOT, "scripts", "services.toml"), "rb") as f:
        return tomllib.load(f)


def env(name, default=""):
    """The caller's variable NAME; an empty one counts as unset, as in ${NAME:-default}."""
    return os.environ.get(name) or default


class Missing(Exception):
    """A template used an empty value."""


def expand(template, values):
    """{NAME} -> values[NAME] (a KeyError is a mistake in the table); {$NAME} -> the caller's variable NAME."""
    def one(m):
        key = m.group(1)
        value = str(env(key[1:]) if key.startswith("$") else values[key])
        if not value:
            raise Missing(key)
        return value
    return re.sub(r"\{(\$?[A-Za-z_]\w*)\}", one, template)


def expand_all(entries, values):
    """["NAME=template", ...] -> {NAME: value}, without the entries that use an empty value."""
    out = {}
    for entry in entries:
        name, _, template = entry.partition("=")
        try:
            out[name] = expand(template, values)
        except Missing:
            pass
    return out


def stack_values():
    """What the stack's templates use: its directories, and every port and setting with the caller's overrides."""
    var = os.path.realpath(env("MP3C_VAR_DIR", os.path.join(ROOT, "var")))  # absolute: it becomes a file:// URL
    values = {"root": ROOT, "var": var, "secrets": os.path.join(var, "secrets"),
              "bin": os.path.abspath(env("MP3C_STACK_BIN", os.path.join(ROOT, "build", "release", "bin")))}
    for name, port in load()["ports"].items():
        values[name] = env(name, str(port["default"]))
    for name, default in load()["settings"].items():
        values[name] = env(name) or expand(default, values)
    if values["STORAGE"] == "gridfs" and not env("STORAGE_URL"):
        values["STORAGE_URL"] = f"mongodb://127.0.0.1:{values['MONGODB_PORT']}"
    return values


def gridfs_server(values):
    """Whether the stack runs the MongoDB-wire test server: STORAGE=gridfs without a STORAGE_URL of the caller's."""
    return values["STORAGE"] == "gridfs" and not env("STORAGE_URL")


def stack_services():
    """The services the stack runs (maildev only without SMTP_HOST), in start order."""
    return [s for s in load()["services"] if not (s.get("unless") and env(s["unless"]))]


def free_stack_ports():
    """{PORT_VARIABLE: a free port} for every port of the stack: the end-to-end and browser tests run theirs there."""
    names = list(load()["ports"])
    return dict(zip(names, free_port(len(names))))
