/**
 * First step of `npm test`: makes sure this machine has what the peer, integration and e2e
 * tests start for real (Mosquitto, avahi, containerd, runc, CNI plugins, busybox, iproute2,
 * openssl), what builds Kubernetes (Go) and what builds the e2e's wasm shim (Rust, libseccomp,
 * protoc). As root on Debian it installs the missing
 * packages with apt, showing apt's progress; otherwise it stops at once with one message
 * naming exactly what to install. Nothing is ever skipped: a test without its peer fails.
 *
 *   node test/setup/prerequisites.ts [--check]   (--check: report only, install nothing)
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** Debian packages the tests run, and why. */
export const PACKAGES: Readonly<Record<string, string>> = {
  openssl: 'test cluster certificates',
  mosquitto: 'MQTT peer tests and the e2e device LAN',
  'mosquitto-clients': 'MQTT peer tests',
  'avahi-daemon': 'mDNS peer tests',
  'avahi-utils': 'mDNS peer tests',
  iproute2: 'network namespaces (peer and e2e tests)',
  'python3-venv': 'OPC UA peer tests (Python asyncua from PyPI, in a venv under ~/.cache/tether)',
  containerd: 'the e2e nodes',
  runc: 'the e2e nodes',
  'containernetworking-plugins': 'the e2e nodes (CNI bridge, host-local)',
  'busybox-static': 'the e2e test image',
  'libseccomp-dev': 'the e2e wasmtime containerd shim (deploy/wasm-shim links libseccomp)',
  'pkg-config': 'the e2e wasmtime containerd shim (finds libseccomp)',
  'protobuf-compiler': 'the e2e wasmtime containerd shim (containerd-client generates its gRPC code with protoc)',
};

/** Services apt starts on install; the tests run their own instances. */
const SERVICES = ['mosquitto', 'avahi-daemon', 'containerd'];
/** The Kubernetes version the tests build needs this Go (test/cluster/k8s/go.mod). */
const MIN_GO = [1, 26] as const;

function installed(pkg: string): boolean {
  return spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout.includes('install ok installed');
}

function goVersion(): [number, number] | undefined {
  const result = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  const match = /^go(\d+)\.(\d+)/.exec(result.stdout?.trim() ?? '');
  return match === null ? undefined : [Number(match[1]), Number(match[2])];
}

/** Rust builds the e2e's wasmtime containerd shim (deploy/wasm-shim) and the sample Wasm broker. */
function rustProblem(): string | undefined {
  const ok = ['cargo', 'rustup'].every((command) => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0);
  return ok ? undefined : 'Rust with cargo and rustup (builds the e2e wasm shim and broker; https://rustup.rs)';
}

/** What is missing, as lines for a message. */
export function missingPrerequisites(): { packages: string[]; go: string | undefined } {
  const hasDpkg = spawnSync('dpkg-query', ['--version']).status === 0;
  const packages = hasDpkg ? Object.keys(PACKAGES).filter((pkg) => !installed(pkg)) : Object.keys(PACKAGES);
  const go = goVersion();
  const goProblem =
    go === undefined
      ? `Go ≥ ${MIN_GO.join('.')} (builds Kubernetes for the tests; https://go.dev/dl)`
      : go[0] < MIN_GO[0] || (go[0] === MIN_GO[0] && go[1] < MIN_GO[1])
        ? `Go ≥ ${MIN_GO.join('.')} (found ${go.join('.')})`
        : undefined;
  return { packages, go: goProblem };
}

function fail(lines: string[]): never {
  process.stderr.write(`npm test needs, on this machine:\n${lines.map((l) => `  - ${l}`).join('\n')}\n`);
  process.exit(1);
}

function main(): void {
  const checkOnly = process.argv.includes('--check');
  const { packages, go } = missingPrerequisites();
  const asRoot = process.getuid?.() === 0;
  const problems: string[] = [];
  if (!asRoot) problems.push('root (the tests create network namespaces and run kubelets and containerd)');
  if (go !== undefined) problems.push(go);
  const rust = rustProblem();
  if (rust !== undefined) problems.push(rust);
  const install = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (packages.length > 0 && (checkOnly || !asRoot || spawnSync('apt-get', ['--version']).status !== 0)) {
    problems.push(`Debian packages: ${packages.join(' ')}  (${install})`);
  }
  if (problems.length > 0) fail(problems);
  if (packages.length === 0) return;
  process.stderr.write(`[prerequisites] installing ${packages.join(', ')} with apt…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  } catch {
    fail([`Debian packages: ${packages.join(' ')} — apt-get failed (output above); run: ${install}`]);
  }
  for (const service of SERVICES) spawnSync('systemctl', ['stop', service], { stdio: 'ignore' });
  const still = missingPrerequisites().packages;
  if (still.length > 0) fail([`Debian packages: ${still.join(' ')} (still missing after apt-get install)`]);
  process.stderr.write('[prerequisites] done\n');
}

main();
