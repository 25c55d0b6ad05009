"""
OPC UA peers for Tether's tests, on Python asyncua (a stack Tether does not use):

  asyncua_peer.py lds <host> <port>
      A Local Discovery Server: FindServers lists what registered; RegisterServer with
      IsOnline=false removes the entry (asyncua alone keeps it forever).
  asyncua_peer.py fleet <host> <json: {"lds", "basePort", "count", "register"}>
      Many servers for the bench: ONE asyncua server (one address space, since building one
      costs ~1-3 s of CPU) listening on count ports; GetEndpoints on port basePort+i answers as
      application urn:tether-fleet:<i> ("Fleet <i>"). With "register", each registers with the LDS.
  asyncua_peer.py servers <host> <json>
      Servers in one process (one event loop; ports from the JSON list). Each entry:
      {"port", "uri", "name", "product"?, "lds"?, "secure"?, "advertise"?, "endpoints"?}
        secure:     only Basic256Sha256 SignAndEncrypt endpoints, with a self-signed certificate
                    (or "certFile" + "keyFile": the server certificate and key, PEM or DER, e.g.
                    signed by a test CA)
        users:      {"name": "password"}: UserName tokens only, checked against this table
                    (default: Anonymous and any UserName accepted)
        advertise:  the discovery URL sent to the LDS (default opc.tcp://<host>:<port>)
        endpoints:  EndpointUrls GetEndpoints returns instead of the real one (an unexpected list)

Commands, one JSON object a line on stdin: {"id", "cmd": "register"|"unregister"|"stop"|"start",
"uri"}; each is answered "ok <id>" (or "error <id> <message>") once done. "ready" is printed
once every server listens. stdin closing ends the process.
"""
import asyncio
import copy
import json
import logging
import os
import sys
import tempfile

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager

logging.basicConfig(level=logging.ERROR)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Lds:
    def __init__(self, host, port):
        self.server = Server()
        self.host, self.port = host, port

    async def start(self):
        s = self.server
        await s.init()
        s.set_endpoint(f"opc.tcp://{self.host}:{self.port}")
        s.set_server_name("Test LDS")
        await s.set_application_uri("urn:tether-test:lds")
        s.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        s.set_match_discovery_client_ip(False)
        iserver: InternalServer = s.iserver
        plain = iserver.register_server

        def register(server, conf=None):
            if not server.IsOnline:
                iserver._known_servers.pop(server.ServerUri, None)
                return
            plain(server, conf)

        iserver.register_server = register
        # Describe the LDS as a discovery server (FindServers lists it too).
        s.application_type = ua.ApplicationType.DiscoveryServer
        await s.start()


def make_certificate(directory, uri, host):
    """A self-signed server certificate (DER) and key (PEM) for the secure server."""
    from datetime import datetime, timedelta, timezone
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tether-test-secure")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uri), x509.IPAddress(ipaddress.ip_address(host))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.der")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


class TableUsers(UserManager):
    """UserName tokens checked against a fixed table; anything else is refused."""

    def __init__(self, users):
        self.users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is not None and username in self.users and self.users[username] == password:
            return User(role=UserRole.User, name=username)
        return None


class TestServer:
    def __init__(self, host, spec):
        self.host, self.spec = host, spec
        self.server = None

    @property
    def url(self):
        return f"opc.tcp://{self.host}:{self.spec['port']}"

    async def start(self):
        spec = self.spec
        users = spec.get("users")
        s = Server(user_manager=TableUsers(users)) if users is not None else Server()
        await s.init()
        s.set_endpoint(self.url)
        s.set_server_name(spec["name"])
        await s.set_application_uri(spec["uri"])
        s.product_uri = spec.get("product", "urn:tether-test:product")
        s.set_match_discovery_client_ip(False)
        if spec.get("secure"):
            if spec.get("certFile"):
                cert, key = spec["certFile"], spec["keyFile"]
            else:
                directory = tempfile.mkdtemp(prefix="tether-opcua-")
                cert, key = make_certificate(directory, spec["uri"], self.host)
            await s.load_certificate(cert)
            await s.load_private_key(key)
            s.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        else:
            s.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if users is not None:
            s.set_identity_tokens([ua.UserNameIdentityToken])
        await s.start()
        if spec.get("endpoints") is not None:
            fake = spec["endpoints"]
            real = s.iserver.get_endpoints

            async def get_endpoints(params=None, sockname=None):
                described = await real(params, sockname)
                out = []
                for i, url in enumerate(fake):
                    edp = copy.copy(described[min(i, len(described) - 1)]) if described else ua.EndpointDescription()
                    edp.EndpointUrl = url
                    out.append(edp)
                return out

            s.iserver.get_endpoints = get_endpoints
        self.server = s
        if spec.get("lds"):
            await self.register()

    def _registration(self, online):
        advertised = self.spec.get("advertise", self.url)
        rs = ua.RegisteredServer()
        rs.ServerUri = self.spec["uri"]
        rs.ProductUri = self.spec.get("product", "urn:tether-test:product")
        rs.ServerNames = [ua.LocalizedText(self.spec["name"])]
        rs.ServerType = ua.ApplicationType.Server
        rs.DiscoveryUrls = [advertised]
        rs.IsOnline = online
        return rs

    async def _send(self, online):
        from asyncua import Client

        client = Client(self.spec["lds"], timeout=5)
        await client.connect_sessionless()
        try:
            await client.uaclient.register_server(self._registration(online))
        finally:
            await client.disconnect_sessionless()

    async def register(self):
        await self._send(True)

    async def unregister(self):
        await self._send(False)

    async def stop(self):
        if self.server is not None:
            await self.server.stop()
            self.server = None


async def commands(handlers):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if not line.strip():
            continue
        msg = json.loads(line)
        try:
            await handlers[msg["cmd"]](msg)
            say(f"ok {msg['id']}")
        except Exception as error:  # reported to the test, which fails on it
            say(f"error {msg['id']} {error!r}")


class Fleet:
    def __init__(self, host, conf):
        self.host, self.conf = host, conf
        self.listeners = {}

    def uri(self, i):
        return f"urn:tether-fleet:{i}"

    def index(self, uri):
        return int(uri.rsplit(":", 1)[1])

    async def start(self):
        from asyncua.server.binary_server_asyncio import BinaryServer

        base, host = self.conf["basePort"], self.host
        s = Server()
        await s.init()
        s.set_endpoint(f"opc.tcp://{host}:{base}")
        s.set_server_name("Fleet 0")
        await s.set_application_uri(self.uri(0))
        s.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        await s.start()
        self.server = s
        self.listeners[0] = s.bserver
        real = s.iserver.get_endpoints

        async def get_endpoints(params=None, sockname=None):
            i = (sockname[1] - base) if sockname else 0
            out = []
            for edp in await real(params, sockname):
                edp = copy.copy(edp)
                edp.Server = copy.copy(edp.Server)
                edp.Server.ApplicationUri = self.uri(i)
                edp.Server.ApplicationName = ua.LocalizedText(f"Fleet {i}")
                edp.Server.ApplicationType = ua.ApplicationType.Server
                edp.EndpointUrl = f"opc.tcp://{host}:{base + i}"
                out.append(edp)
            return out

        s.iserver.get_endpoints = get_endpoints
        for i in range(1, self.conf["count"]):
            await self.listen(i)
        if self.conf.get("register"):
            for i in range(self.conf["count"]):
                await self.send(i, True)

    async def listen(self, i):
        from asyncua.server.binary_server_asyncio import BinaryServer

        bs = BinaryServer(self.server.iserver, self.host, self.conf["basePort"] + i, self.server.limits)
        bs.set_policies(self.server._policies)
        await bs.start()
        self.listeners[i] = bs

    async def send(self, i, online):
        from asyncua import Client

        rs = ua.RegisteredServer()
        rs.ServerUri = self.uri(i)
        rs.ProductUri = "urn:tether-test:fleet"
        rs.ServerNames = [ua.LocalizedText(f"Fleet {i}")]
        rs.ServerType = ua.ApplicationType.Server
        rs.DiscoveryUrls = [f"opc.tcp://{self.host}:{self.conf['basePort'] + i}"]
        rs.IsOnline = online
        client = Client(self.conf["lds"], timeout=5)
        await client.connect_sessionless()
        try:
            await client.uaclient.register_server(rs)
        finally:
            await client.disconnect_sessionless()

    async def stop_listener(self, i):
        bs = self.listeners.pop(i)
        await bs.stop()


async def main():
    role, host = sys.argv[1], sys.argv[2]
    if role == "lds":
        lds = Lds(host, int(sys.argv[3]))
        await lds.start()
        say("ready")
        await commands({})
        return
    if role == "fleet":
        fleet = Fleet(host, json.loads(sys.argv[3]))
        await fleet.start()
        say("ready")
        await commands(
            {
                "register": lambda m: fleet.send(fleet.index(m["uri"]), True),
                "unregister": lambda m: fleet.send(fleet.index(m["uri"]), False),
                "stop": lambda m: fleet.stop_listener(fleet.index(m["uri"])),
                "start": lambda m: fleet.listen(fleet.index(m["uri"])),
            }
        )
        return
    servers = {spec["uri"]: TestServer(host, spec) for spec in json.loads(sys.argv[3])}
    await asyncio.gather(*(s.start() for s in servers.values()))
    say("ready")
    await commands(
        {
            "register": lambda m: servers[m["uri"]].register(),
            "unregister": lambda m: servers[m["uri"]].unregister(),
            "stop": lambda m: servers[m["uri"]].stop(),
            "start": lambda m: servers[m["uri"]].start(),
        }
    )


asyncio.run(main())
