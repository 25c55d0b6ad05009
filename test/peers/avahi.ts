/**
 * A real avahi-daemon publishing from a peer network namespace, for mDNS/DNS-SD peer tests.
 *
 * avahi-daemon reads static services from the compiled-in /etc/avahi/services and keeps its
 * pid file and socket in /run/avahi-daemon, so it runs in a private mount namespace
 * (`unshare -m`) where a temp dir is bind-mounted over the first and a tmpfs over the second:
 * nothing on the host changes, and several daemons can run at once. A private D-Bus system
 * bus (its socket in the temp dir) lets `avahi-publish-service`, run from this namespace,
 * publish and withdraw services dynamically. Needs root, `avahi-daemon`, `avahi-utils`,
 * `dbus-daemon` (a dependency of avahi-daemon) and util-linux `unshare`.
 *
 * Static files: `addServiceFile` / `removeServiceFile` — avahi notices through inotify and
 * announces, or sends goodbyes. Dynamic: `publish()` runs avahi-publish-service; stopping it
 * withdraws the service (goodbye packets).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetnsLink } from './netns.ts';
import { startPeer, type PeerGroup, type PeerProcess } from './process.ts';

export interface AvahiService {
  readonly name: string;
  /** e.g. `_ipp._tcp` */
  readonly type: string;
  readonly port: number;
  readonly txt?: readonly string[];
  readonly subtypes?: readonly string[];
}

export interface AvahiPeer {
  /** `<hostName>.local` is the SRV target of every service it publishes. */
  readonly hostName: string;
  readonly address: string;
  readonly daemon: PeerProcess;
  /** `unix:path=…` of its private system bus: `DBUS_SYSTEM_BUS_ADDRESS` for avahi clients run elsewhere. */
  readonly busAddress: string;
  addServiceFile(file: string, service: AvahiService): Promise<void>;
  removeServiceFile(file: string): Promise<void>;
  /** Publishes through D-Bus; resolves once avahi reports the service established. */
  publish(service: AvahiService): Promise<PeerProcess>;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c);
}

/** The static service file avahi reads for `service`. */
export function serviceFile(service: AvahiService): string {
  const txt = (service.txt ?? []).map((t) => `    <txt-record>${escapeXml(t)}</txt-record>\n`).join('');
  const subtypes = (service.subtypes ?? []).map((s) => `    <subtype>${escapeXml(s)}</subtype>\n`).join('');
  return `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>${escapeXml(service.name)}</name>
  <service>
    <type>${escapeXml(service.type)}</type>
${subtypes}    <port>${service.port}</port>
${txt}  </service>
</service-group>
`;
}

const BUS_CONFIG = (socket: string): string => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/><allow send_type="signal"/><allow send_type="method_return"/><allow send_type="error"/>
    <allow receive_type="method_call"/><allow receive_type="signal"/><allow receive_type="method_return"/><allow receive_type="error"/>
  </policy>
</busconfig>
`;

const AVAHI_CONFIG = (hostName: string, iface: string): string => `[server]
host-name=${hostName}
use-ipv4=yes
use-ipv6=no
allow-interfaces=${iface}
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
[reflector]
[rlimits]
`;

// Runs inside `ip netns exec <ns> unshare -m --propagation private`: private mounts, then a
// private system bus (its address is printed once it listens: no polling), then avahi.
const RUN_SCRIPT = `set -eu
dir="$1"
mount --bind "$dir/services" /etc/avahi/services
mkdir -p /run/avahi-daemon
mount -t tmpfs tmpfs /run/avahi-daemon
exec {bus}< <(exec dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --print-address=1)
read -r address <&"$bus"
export DBUS_SYSTEM_BUS_ADDRESS="$address"
avahi-daemon -f "$dir/avahi.conf" --no-drop-root --no-chroot --no-rlimits
`;

/** Options of {@link startAvahi}. */
export interface AvahiOptions {
  /** The host name avahi claims (`<hostName>.local`); default `tether-<last 6 characters of link.ns>`. */
  readonly hostName?: string;
}

/** Starts avahi-daemon in `link.ns`; resolves once it completed startup (host name claimed). */
export async function startAvahi(
  group: PeerGroup,
  link: NetnsLink,
  services: Record<string, AvahiService> = {},
  options: AvahiOptions = {},
): Promise<AvahiPeer> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-avahi-'));
  group.defer(`avahi dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const servicesDir = join(dir, 'services');
  await mkdir(servicesDir);
  const socket = join(dir, 'bus.sock');
  const hostName = options.hostName ?? `tether-${link.ns.slice(-6)}`;
  await writeFile(join(dir, 'bus.conf'), BUS_CONFIG(socket));
  await writeFile(join(dir, 'avahi.conf'), AVAHI_CONFIG(hostName, link.peerIf));
  await writeFile(join(dir, 'run.sh'), RUN_SCRIPT);
  for (const [file, service] of Object.entries(services)) await writeFile(join(servicesDir, file), serviceFile(service));
  const daemon = link.spawn('avahi-daemon', 'unshare', ['-m', '--propagation', 'private', 'bash', join(dir, 'run.sh'), dir]);
  await daemon.waitForOutput(/Server startup complete/, 15_000);
  const busAddress = `unix:path=${socket}`;
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: busAddress };
  return {
    hostName,
    address: link.peerAddress,
    daemon,
    busAddress,
    addServiceFile: (file, service) => writeFile(join(servicesDir, file), serviceFile(service)),
    removeServiceFile: (file) => rm(join(servicesDir, file)),
    async publish(service) {
      const args = [
        ...(service.subtypes ?? []).flatMap((s) => ['--subtype', s]),
        service.name,
        service.type,
        String(service.port),
        ...(service.txt ?? []),
      ];
      const publisher = startPeer(group, `avahi-publish-service ${service.name}`, 'avahi-publish-service', args, { env });
      await publisher.waitForOutput(/Established under name/, 10_000);
      return publisher;
    },
  };
}
