"""A small certificate authority for a cluster: one CA, the coordinator's
server certificate and a client certificate per node (CN = the node id).

    python -m octobot.tools.pki init ./pki --node web-1 --node web-2 --coordinator-host coord.example
    python -m octobot.tools.pki node ./pki web-3     # one more node, from the same CA

Tests use the functions: ``write_pki(tmp_path, ["n1"])`` for a whole set of
files, ``make_ca()`` for a second, unrelated CA, ``issue(..., expired=True)``
for a certificate that has run out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from octobot.rpc import ClientAuth, ServerTls

# Names every certificate answers to, so a local test or a same-host node needs no flags.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
# A node name becomes a CN and a file name: keep it to hostname characters.
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CA_DAYS = 3650
DEFAULT_DAYS = 825


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """``stem.pem`` and ``stem.key`` (0600) in ``directory``."""
        cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem())
        # Created 0600, never readable by others even for a moment; fchmod for a file that was there.
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, 0o600)
            f.write(self.key_pem())
        return cert, key

    @classmethod
    def load(cls, directory: Path, stem: str) -> Issued:
        cert = x509.load_pem_x509_certificate((directory / f"{stem}.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / f"{stem}.key").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / stem}.key is not an EC key")
        return cls(cert, key)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Octobot"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):  # in order, once each
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             days: int, expired: bool) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    # An expired certificate (for tests) ended yesterday; a fresh one starts an hour back for clock skew.
    start = now - dt.timedelta(days=days + 1) if expired else now - dt.timedelta(hours=1)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def make_ca(cn: str = "Octobot CA", days: int = CA_DAYS) -> Issued:
    """A new self-signed CA; each call makes one unrelated to any other."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(cn), _name(cn), key.public_key(), days, expired=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued, cn: str, sans: Iterable[str], client: bool = True, server: bool = True,
          days: int = DEFAULT_DAYS, expired: bool = False) -> Issued:
    """A certificate for ``cn`` signed by ``ca``, for TLS clients and/or servers,
    valid for ``sans`` (DNS names and IP addresses)."""
    usages = [*([ExtendedKeyUsageOID.SERVER_AUTH] if server else []),
              *([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])]
    if not usages:
        raise ValueError("a certificate for neither client nor server has no use")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(cn), ca.cert.subject, key.public_key(), days, expired)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(_san(sans), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Issued(cert, key)


def check_node_name(name: str) -> str:
    if not NODE_NAME.fullmatch(name):
        raise ValueError(f"node name {name!r}: use letters, digits, '.', '_' and '-' (up to 64)")
    return name


def issue_node(ca: Issued, name: str, days: int = DEFAULT_DAYS) -> Issued:
    """A node's certificate: CN = its node id; client for the coordinator, server for its own HTTP page."""
    return issue(ca, check_node_name(name), [name, *LOCAL_NAMES], days=days)


@dataclass(frozen=True, slots=True)
class Pki:
    """The files of a cluster's PKI, as ``init`` writes them."""

    directory: Path
    nodes: list[str] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, stem: str) -> Path:
        return self.directory / f"{stem}.pem"

    def key(self, stem: str) -> Path:
        return self.directory / f"{stem}.key"

    def server_tls(self, mutual: bool = False) -> ServerTls:
        """The coordinator's listener; ``mutual`` asks nodes for certificates signed by the CA."""
        return ServerTls(str(self.cert("coordinator")), str(self.key("coordinator")),
                         str(self.ca) if mutual else None)

    def node_auth(self, name: str) -> ClientAuth:
        """How node ``name`` reaches the coordinator, with its certificate."""
        return ClientAuth(ca=str(self.ca), client_cert=str(self.cert(f"node-{name}")),
                          client_key=str(self.key(f"node-{name}")))


def write_pki(directory: str | Path, nodes: Iterable[str], coordinator_hosts: Iterable[str] = (),
              days: int = DEFAULT_DAYS) -> tuple[Pki, list[Path]]:
    """A new CA, the coordinator's certificate and one per node in ``directory``;
    returns the PKI and the files written. Refuses a directory that has a CA."""
    pki = Pki(Path(directory), [check_node_name(n) for n in nodes])
    if pki.ca.exists():
        raise FileExistsError(f"{pki.ca} exists: add nodes with `python -m octobot.tools.pki node {directory} NAME`")
    pki.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = make_ca()
    written = [*ca.write(pki.directory, "ca")]
    hosts = [*LOCAL_NAMES, socket.gethostname(), *coordinator_hosts]
    written += issue(ca, "octobot-coordinator", hosts, client=False, days=days).write(pki.directory, "coordinator")
    for name in pki.nodes:
        written += issue_node(ca, name, days).write(pki.directory, f"node-{name}")
    return pki, written


def add_node(directory: str | Path, name: str, days: int = DEFAULT_DAYS) -> list[Path]:
    """One more node certificate from the CA in ``directory``; refuses to replace one."""
    directory = Path(directory)
    if (directory / f"node-{check_node_name(name)}.pem").exists():
        raise FileExistsError(f"{directory / f'node-{name}.pem'} exists: remove it and its key to issue a new one")
    return [*issue_node(Issued.load(directory, "ca"), name, days).write(directory, f"node-{name}")]


def _usage(pki: Pki, nodes: Iterable[str], coordinator: bool) -> str:
    d, lines = pki.directory, [""]
    if coordinator:
        lines += ["coordinator (TLS for octoctl on --listen, mutual TLS for nodes on --node-listen):",
                  f"  octobot-coordinator --listen 0.0.0.0:7400 --node-listen 0.0.0.0:7401 "
                  f"--tls-cert {d}/coordinator.pem --tls-key {d}/coordinator.key --client-ca {pki.ca}"]
    for name in nodes:
        lines += [f"node {name} (its node id is {name}):",
                  f"  octobot-node --coordinator COORDINATOR:7401 --ca {pki.ca} "
                  f"--client-cert {d}/node-{name}.pem --client-key {d}/node-{name}.key"]
    lines += [f"Copy {pki.ca} and a node's two files to that node; ca.key stays here, for `pki node`."]
    return "\n".join(lines)


def _days(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of days, at least 1")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m octobot.tools.pki", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="a new CA, the coordinator's certificate and node certificates")
    init.add_argument("directory")
    init.add_argument("--node", action="append", default=[], metavar="NAME", help="a node id (repeatable)")
    init.add_argument("--coordinator-host", action="append", default=[], metavar="HOST",
                      help="a name or address nodes and octoctl use for the coordinator (repeatable)")
    init.add_argument("--days", type=_days, default=DEFAULT_DAYS,
                      help="validity of the certificates (the CA's: 10 years)")
    node = commands.add_parser("node", help="one more node certificate from an existing CA")
    node.add_argument("directory")
    node.add_argument("name")
    node.add_argument("--days", type=_days, default=DEFAULT_DAYS)
    opts = parser.parse_args(argv)
    try:
        if opts.command == "init":
            pki, written = write_pki(opts.directory, opts.node, opts.coordinator_host, opts.days)
            nodes = pki.nodes
        else:
            pki, nodes = Pki(Path(opts.directory)), [opts.name]
            written = add_node(opts.directory, opts.name, opts.days)
    except (OSError, ValueError) as exc:
        print(f"pki: {exc}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(str(p) for p in written))
    print(_usage(pki, nodes, coordinator=opts.command == "init"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
