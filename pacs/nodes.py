"""PACS nodes: where an archive is (DIMSE: AE title, host, port, optional TLS; DICOMweb: a URL with
basic or bearer authentication), Delineate's own AE (the Storage SCP a C-MOVE sends to) and the
retrieve cache's size, kept as JSON in the user's config folder ($DELINEATE_PACS_NODES overrides
the file) or given on the command line as ``AET@host:port`` or a URL.

Passwords and tokens are never written to that file: a node names the environment variable that
holds its secret."""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

from core.errors import DelineateError, FormatError
from formats.atomic import atomic_output

DEFAULT_LOCAL_AE = "DELINEATE"
DEFAULT_SCP_PORT = 11113
DEFAULT_CACHE_GB = 20.0
_AE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE: 16 chars of the default repertoire, no backslash


class NodeError(DelineateError):
    """A PACS node could not do what was asked; the message names the node and the problem."""

    def __init__(self, node, problem: str):
        self.node, self.problem = str(node), problem
        super().__init__(f"{node}: {problem}")


def _check_ae(title: str, where: str) -> str:
    title = str(title).strip()
    if not _AE_RE.match(title):
        raise DelineateError(f"{where}: AE title {title!r} must be 1-16 printable ASCII characters without '\\'")
    return title


def _check_port(port, where: str) -> int:
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise DelineateError(f"{where}: port {port!r} is not a number") from None
    if not 0 < port < 65536:
        raise DelineateError(f"{where}: port {port} is outside 1-65535")
    return port


@dataclass(frozen=True)
class DimseNode:
    """A DICOM archive spoken to with DIMSE (C-ECHO/FIND/GET/MOVE/STORE)."""
    ae_title: str
    host: str
    port: int
    name: str = ""
    tls: bool = False
    ca_file: Optional[str] = None  # CA bundle that signs the server's certificate (default: the system's)
    cert_file: Optional[str] = None  # client certificate (PEM), when the archive asks for one
    key_file: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "ae_title", _check_ae(self.ae_title, self.name or self.host))
        object.__setattr__(self, "port", _check_port(self.port, self.name or f"{self.ae_title}@{self.host}"))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb server (QIDO-RS, WADO-RS, STOW-RS); certificates are always verified."""
    url: str
    name: str = ""
    auth: str = "none"  # none | basic | bearer
    username: str = ""
    secret_env: str = ""  # environment variable holding the password (basic) or the token (bearer)
    ca_file: Optional[str] = None  # CA bundle for a hospital's own certificate authority
    secret: str = field(default="", repr=False, compare=False)  # given in code; never saved

    def __post_init__(self):
        if not re.match(r"^https?://[^/\s]+", self.url):
            raise DelineateError(f"{self.name or self.url}: a DICOMweb node is an http(s):// URL")
        if self.auth not in ("none", "basic", "bearer"):
            raise DelineateError(f"{self}: auth must be none, basic or bearer, not {self.auth!r}")

    def credential(self) -> str:
        """The password or token: given in code, else from the named environment variable."""
        if self.auth == "none":
            return ""
        value = self.secret or (os.environ.get(self.secret_env, "") if self.secret_env else "")
        if not value:
            where = f"the environment variable {self.secret_env}" if self.secret_env else "secret_env"
            raise NodeError(self, f"{self.auth} authentication needs a {'password' if self.auth == 'basic' else 'token'}"
                                  f": set {where}")
        return value

    def __str__(self) -> str:
        return self.url.rstrip("/")


Node = Union[DimseNode, WebNode]


@dataclass(frozen=True)
class LocalAE:
    """Delineate itself on the network: the calling AE title, and the Storage SCP a C-MOVE sends to
    (the archive must know this AE title, host and port)."""
    ae_title: str = DEFAULT_LOCAL_AE
    port: int = DEFAULT_SCP_PORT
    bind: str = ""  # address the SCP listens on ("" = all)

    def __post_init__(self):
        object.__setattr__(self, "ae_title", _check_ae(self.ae_title, "local AE"))
        object.__setattr__(self, "port", _check_port(self.port, "local AE"))


@dataclass
class Settings:
    nodes: dict = field(default_factory=dict)  # name -> Node
    local: LocalAE = field(default_factory=LocalAE)
    cache_gb: float = DEFAULT_CACHE_GB
    path: Optional[Path] = None

    def node(self, text: str) -> Node:
        """A configured node by name, or ``AET@host:port``, or an http(s) URL."""
        return parse_node(text, self)


def config_path() -> Path:
    env = os.environ.get("DELINEATE_PACS_NODES")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("Delineate", "Delineate")) / "pacs.json"


def _node_from(name: str, d: dict) -> Node:
    if not isinstance(d, dict):
        raise DelineateError(f"node {name!r} is not an object")
    d = {k: v for k, v in d.items() if k != "secret"}
    kind = d.pop("kind", "dicomweb" if "url" in d else "dimse")
    try:
        return WebNode(name=name, **d) if kind == "dicomweb" else DimseNode(name=name, **d)
    except TypeError as e:
        raise DelineateError(f"node {name!r}: {e}") from None


def load(path: Optional[str | Path] = None) -> Settings:
    """The settings in ``path`` (default: config_path()); defaults when the file does not exist."""
    path = Path(path) if path else config_path()
    if not path.exists():
        return Settings(path=path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        nodes = {str(n): _node_from(str(n), nd) for n, nd in (d.get("nodes") or {}).items()}
        local = LocalAE(**(d.get("local") or {}))
        return Settings(nodes, local, float(d.get("cache_gb", DEFAULT_CACHE_GB)), path)
    except (OSError, ValueError, TypeError) as e:
        raise FormatError(path, f"not a PACS settings file: {e}") from None
    except DelineateError as e:
        raise FormatError(path, str(e)) from None


def _node_dict(node: Node) -> dict:
    d = asdict(node)
    d.pop("name")
    d.pop("secret", None)
    d["kind"] = "dicomweb" if isinstance(node, WebNode) else "dimse"
    return {k: v for k, v in d.items() if v not in (None, "", False) or k in ("kind",)}


def save(settings: Settings, path: Optional[str | Path] = None) -> Path:
    path = Path(path or settings.path or config_path())
    d = {"local": asdict(settings.local), "cache_gb": settings.cache_gb,
         "nodes": {name: _node_dict(n) for name, n in sorted(settings.nodes.items())}}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
    return path


_ADDRESS = re.compile(r"^(?P<ae>[^@]+)@(?P<host>[^:@\s]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)$")


def parse_node(text: str, settings: Optional[Settings] = None) -> Node:
    """``text`` as a node: a configured name, ``AET@host:port`` or an http(s):// URL."""
    if settings is not None and text in settings.nodes:
        return settings.nodes[text]
    if re.match(r"^https?://", text):
        return WebNode(url=text)
    m = _ADDRESS.match(text)
    if m:
        return DimseNode(m["ae"], m["host"].strip("[]"), int(m["port"]))
    known = ", ".join(sorted(settings.nodes)) if settings and settings.nodes else "none configured"
    raise DelineateError(f"{text!r} is not a PACS node: give a configured name ({known}), AET@host:port "
                         "or an http(s):// DICOMweb URL")
