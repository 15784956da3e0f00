"""lab/trafex.clab.yml, the containerlab lab: rendered from lab/topology.toml, committed,
valid for containerlab's schema, and the same lab as the netns runner's."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from trafex.config import ConfigError
from trafex.lab import clab
from trafex.lab.runner import REQUIRED
from trafex.lab.topology import (
    DAEMONS_FILE,
    HOST_SYSCTLS,
    LAB_DIR,
    ROUTER_SYSCTLS,
    Node,
    controller_access,
    load_topology,
    parse_topology,
)

REPO = Path(__file__).resolve().parents[3]
CLAB_FILE = REPO / "lab" / "trafex.clab.yml"
DOCKERFILE = REPO / "lab" / "Dockerfile"
# containerlab's own schema, beside the repository (a user's clone has no ../shared)
SCHEMA = REPO.parent / "shared" / "containerlab" / "clab.schema.json"

TOPOLOGY = load_topology()
CONTROLLER = TOPOLOGY.controller
REGENERATE = "run `trafex lab clab > lab/trafex.clab.yml` and commit the result"


def _committed() -> dict[str, Any]:
    document = yaml.safe_load(CLAB_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


DOCUMENT = _committed()
NODES: dict[str, dict[str, Any]] = DOCUMENT["topology"]["nodes"]


def _argvs(node: str) -> list[list[str]]:
    """A node's exec lines, split as containerlab splits them (POSIX shell words)."""
    return [shlex.split(line) for line in NODES[node].get("exec", [])]


def _background(node: str) -> dict[str, list[str]]:
    """What a node's exec lines start in the background (``sh -c '"$@" … &' NAME ARGV``),
    by NAME."""
    started = {}
    for argv in _argvs(node):
        if argv[:2] == ["sh", "-c"] and argv[2].startswith('"$@" '):
            assert argv[2].rstrip().endswith("&") and "</dev/null" in argv[2], argv[2]
            started[argv[3]] = argv[4:]
    return started


def _host_path(mounted: str) -> Path:
    """The file in lab/ that a node sees at ``mounted`` (under /lab)."""
    return LAB_DIR / PurePosixPath(mounted).relative_to(clab.LAB_MOUNT)


# -- the committed file ------------------------------------------------------------------


def test_committed_file_is_rendered() -> None:
    """lab/trafex.clab.yml is exactly what render(load_topology()) gives: it cannot drift
    from lab/topology.toml."""
    rendered = clab.render(TOPOLOGY)
    committed = CLAB_FILE.read_text(encoding="utf-8")
    assert committed == rendered, (
        f"lab/trafex.clab.yml differs from lab/topology.toml: {REGENERATE}"
    )


def test_header_says_generated() -> None:
    """The file starts with a comment saying how it is made and not to edit it."""
    first = CLAB_FILE.read_text(encoding="utf-8").splitlines()[:2]
    assert "trafex lab clab > lab/trafex.clab.yml" in first[0]
    assert "do not" in first[0] and "edit by hand" in first[1]


def _schema() -> dict[str, Any]:
    if not SCHEMA.is_file():
        pytest.skip(f"containerlab's schema is not at {SCHEMA} (a clone without ../shared)")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def test_validates_against_containerlab_schema() -> None:
    """The committed file is valid for containerlab's own JSON schema (skipped, with the
    reason, where the schema is not beside the repository)."""
    validator = jsonschema.Draft7Validator(_schema())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(DOCUMENT)]
    assert errors == []


def test_schema_rejects_a_broken_file() -> None:
    """The schema check is not vacuous: an unknown kind and an unknown key fail it."""
    validator = jsonschema.Draft7Validator(_schema())
    broken = yaml.safe_load(clab.render(TOPOLOGY))
    broken["topology"]["nodes"]["router2"]["kind"] = "router"
    broken["topology"]["nodes"]["host1"]["addresses"] = ["3001:1:a::10/64"]
    assert len(list(validator.iter_errors(broken))) >= 2


# -- the same lab as topology.toml -------------------------------------------------------


def test_name_nodes_and_links_match_topology() -> None:
    """The lab's name, its nodes (same names, same order) and its links (same ends, same
    order) are topology.toml's."""
    assert DOCUMENT["name"] == TOPOLOGY.name
    assert list(NODES) == [n.name for n in TOPOLOGY.nodes]
    links = [link["endpoints"] for link in DOCUMENT["topology"]["links"]]
    assert links == [[f"{e.node}:{e.ifname}" for e in link.ends()] for link in TOPOLOGY.links]
    assert all(config["kind"] == "linux" for config in NODES.values())


@pytest.mark.parametrize("node", TOPOLOGY.of_kind("router"), ids=lambda n: n.name)
def test_router_binds_its_frr_conf(node: Node) -> None:
    """Every router mounts its own frr.conf and the lab's daemons file (paths from lab/,
    where the clab file is), and forwards IPv6 as the runner's routers do."""
    binds = NODES[node.name]["binds"]
    frr_conf = node.frr_config.relative_to(LAB_DIR).as_posix()
    daemons = DAEMONS_FILE.relative_to(LAB_DIR).as_posix()
    assert f"{frr_conf}:/etc/frr/frr.conf" in binds
    assert f"{daemons}:/etc/frr/daemons" in binds
    for bind in binds:
        assert (LAB_DIR / bind.split(":")[0]).exists(), bind
    sysctls = NODES[node.name]["sysctls"]
    assert sysctls["net.ipv6.conf.all.forwarding"] == "1"
    assert ROUTER_SYSCTLS.items() <= sysctls.items()


@pytest.mark.parametrize(
    "node", [n for n in TOPOLOGY.nodes if n.kind != "router"], ids=lambda n: n.name
)
def test_host_addresses_route_and_resolver(node: Node) -> None:
    """A host's (and the controller's) exec lines set exactly its link addresses on its
    interfaces, its default route via its gateway, and the resolver in resolv.conf."""
    argvs = _argvs(node.name)
    added = {
        (argv[argv.index("dev") + 1], argv[4]) for argv in argvs if argv[2:4] == ["address", "add"]
    }
    expected = {(e.ifname, str(a)) for e in TOPOLOGY.ends_of(node.name) for a in e.addresses}
    assert added == expected
    gateway = node.gateway
    assert gateway is not None
    routes = [argv for argv in argvs if argv[2:4] == ["route", "replace"]]
    assert routes == [
        ["ip", f"-{gateway.version}", "route", "replace", "default", "via", str(gateway)]
    ]
    assert TOPOLOGY.resolver is not None
    server = TOPOLOGY.address(TOPOLOGY.resolver.name)
    assert any(f"nameserver {server} > /etc/resolv.conf" in " ".join(a) for a in argvs)
    assert HOST_SYSCTLS.items() <= NODES[node.name]["sysctls"].items()


def test_exec_lines_split_as_containerlab_splits_them() -> None:
    """Every exec line is a command containerlab can split into words (google/shlex, no
    shell): quotes balance, no ``#`` (a comment there), and each starts with a program."""
    for name, config in NODES.items():
        for line in config.get("exec", []):
            assert "#" not in line, line
        for argv in _argvs(name):
            assert argv and re.fullmatch(r"[/\w.-]+", argv[0]), argv


def test_images() -> None:
    """Routers run FRR's image unless they run trafex; hosts run netshoot; the nodes that
    run trafex (enforcer, sensor, resolver, controller) run the trafex image, with lab/
    mounted read-only at /lab."""
    for node in TOPOLOGY.nodes:
        config = NODES[node.name]
        if clab.runs_trafex(TOPOLOGY, node):
            assert config["image"] == clab.TRAFEX_IMAGE
            assert f".:{clab.LAB_MOUNT}:ro" in config["binds"]
        elif node.kind == "router":
            assert config["image"] == clab.FRR_IMAGE
        else:
            assert config["image"] == clab.HOST_IMAGE
    trafex = {n.name for n in TOPOLOGY.nodes if clab.runs_trafex(TOPOLOGY, n)}
    assert trafex == {"router1", "dns", "controller"}
    assert re.fullmatch(r"quay\.io/frrouting/frr:8\.4\.\d+", clab.FRR_IMAGE)


def test_every_lab_path_exists() -> None:
    """Every /lab/… path an exec line names is a file in lab/, or one of the PKI's
    files that `trafex lab pki` makes there (trafexd.toml names the same folder)."""
    access = controller_access(TOPOLOGY)
    made = {access.ca, access.token}
    for name in NODES:
        for argv in _argvs(name):
            for word in argv:
                if word.startswith(f"{clab.LAB_MOUNT}/"):
                    path = _host_path(word)
                    assert path.is_file() or path in made, f"{name}: {word}"


def test_sensor_presents_the_lab_ca_and_token() -> None:
    """The sensor reaches trafexd's API over TLS with the lab's CA and token, at the
    controller's address (trafexd.toml's API is off loopback)."""
    access = controller_access(TOPOLOGY)
    sensor = _background(TOPOLOGY.controller.sensor_node)["sensor"]
    options = dict(itertools.pairwise(sensor))
    assert options["--controller"] == access.target
    assert _host_path(options["--tls-ca"]) == access.ca
    assert _host_path(options["--token-file"]) == access.token


def test_resolver_runs_dnsd_with_the_zone() -> None:
    """The resolver node runs trafex.lab.dnsd on its address with topology.toml's zone."""
    resolver = TOPOLOGY.resolver
    assert resolver is not None
    argv = _background(resolver.name)["dnsd"]
    records = [f"{name}={address}" for name, address in resolver.dns]
    listen = str(TOPOLOGY.address(resolver.name))
    assert argv == ["python3", "-m", "trafex.lab.dnsd", "--listen", listen, *records]


def test_controller_runs_trafexd() -> None:
    """The controller runs trafexd with its trafexd.toml, after its address is set."""
    assert CONTROLLER.trafexd is not None
    argv = _background(CONTROLLER.name)["trafexd"]
    assert argv[0] == "trafexd" and argv[1] == "--config"
    assert _host_path(argv[2]) == CONTROLLER.trafexd
    lines = NODES[CONTROLLER.name]["exec"]
    assert lines[-1].endswith(shlex.join(argv))


@pytest.mark.parametrize("node", TOPOLOGY.enforcers, ids=lambda n: n.name)
def test_enforcer_runs_frr_then_trafex_enforce(node: Node) -> None:
    """An enforcing router starts FRR, then ``trafex enforce run`` with its config."""
    lines = NODES[node.name]["exec"]
    assert lines[0] == clab.FRR_START
    argv = _background(node.name)["enforce"]
    assert argv[:4] == ["trafex", "enforce", "run", "--config"]
    assert node.enforce is not None and _host_path(argv[4]) == node.enforce


def _api_port() -> int:
    assert CONTROLLER.trafexd is not None
    listen = tomllib.loads(CONTROLLER.trafexd.read_text(encoding="utf-8"))["api"]["listen"]
    return int(str(listen).rpartition(":")[2])


def test_sensor_runs_on_its_node() -> None:
    """The sensor runs on controller.sensor_node, capturing on sensor_interface with the
    sensor config, sending to the controller's address on the port trafexd.toml's API
    listens on; detections go to a file apart from the log, as in the runner."""
    assert CONTROLLER.sensor is not None
    argv = _background(CONTROLLER.sensor_node)["sensor"]
    assert argv[:2] == ["trafex", "detect"]
    options = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert options["--interface"] == CONTROLLER.sensor_interface
    assert _host_path(options["--config"]) == CONTROLLER.sensor
    assert options["--controller"] == f"[{TOPOLOGY.address(CONTROLLER.name)}]:{_api_port()}"
    assert "--json" in argv
    others = [n for n in NODES if n != CONTROLLER.sensor_node and "sensor" in _background(n)]
    assert others == []


# -- render on other topologies ----------------------------------------------------------

SMALL = """
[lab]
name = "small"
asn = 65000
[nodes.r1]
kind = "router"
loopback = "3001::1"
router_id = "1.1.1.1"
[nodes.h1]
kind = "host"
gateway = "192.0.2.1"
[nodes.c]
kind = "controller"
gateway = "3001:1::1"
asn = 65010
trafexd = "controller/trafexd.toml"
[[links]]
a = { end = "r1:eth1", addresses = ["3001:1::1/64"] }
b = { end = "c:eth1", addresses = ["3001:1::10/64"] }
[[links]]
a = { end = "r1:eth2", addresses = ["192.0.2.1/24"] }
b = { end = "h1:eth1", addresses = ["192.0.2.10/24"] }
"""


def test_render_ipv4_host_and_no_resolver() -> None:
    """An IPv4 host gets ``ip -4`` lines (no IPv6-only nodad); without a resolver no
    resolv.conf is written; without a sensor or enforcer the router runs FRR's image."""
    nodes = yaml.safe_load(clab.render(parse_topology(tomllib.loads(SMALL))))["topology"]["nodes"]
    assert nodes["h1"]["exec"] == [
        "ip -4 address add 192.0.2.10/24 dev eth1",
        "ip -4 route replace default via 192.0.2.1",
    ]
    assert nodes["r1"]["image"] == clab.FRR_IMAGE and "exec" not in nodes["r1"]


def test_render_refuses_files_outside_lab() -> None:
    """A node file outside lab/ is a ConfigError: the containers only see lab/."""
    topology = parse_topology(
        tomllib.loads(SMALL.replace('"controller/trafexd.toml"', '"/etc/trafexd.toml"'))
    )
    with pytest.raises(ConfigError, match=r"/etc/trafexd\.toml"):
        clab.render(topology)


# -- the image ---------------------------------------------------------------------------


def test_dockerfile_has_what_the_lab_runs() -> None:
    """lab/Dockerfile installs what the netns runner requires (iproute2, procps,
    nftables, traceroute, gobgpd), FRR and the GoBGP protos, makes the log folder the
    exec lines write to, puts the venv first on PATH, and says how to build it."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    install = re.search(r"--no-install-recommends\s+(.*?)\s*&&", text, re.DOTALL)
    assert install is not None
    packages = set(install.group(1).replace("\\", " ").split())
    assert set(REQUIRED.values()) | {"frr", "golang-github-osrg-gobgp-dev", "tini"} <= packages
    assert f"mkdir -p {clab.LOG_DIR}" in text
    assert "gobgp/gen_stubs.py" in text
    assert re.search(r"^ENV PATH=/opt/trafex/venv/bin:\$PATH$", text, re.MULTILINE)
    assert "#   docker build -f lab/Dockerfile -t trafex:latest ." in text
    assert clab.TRAFEX_IMAGE == "trafex:latest"
