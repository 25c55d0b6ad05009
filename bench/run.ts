/**
 * `npm run bench [-- <name>...]`: runs the measures (all but the `onlyWhenNamed` ones, or those named), prints a table
 * and writes bench/results/latest.json. Numbers are reported, never asserted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { renderTable } from '../agent/cli/table.ts';
import type { Measure, Measurement } from './harness.ts';
import { agentMeasures } from './measures/agent.ts';
import { cliMeasures } from './measures/cli.ts';
import { controllerMeasures } from './measures/controller.ts';
import { devicePluginModeMeasures } from './measures/device-plugin-modes.ts';
import { deviceWriteCeilingMeasures } from './measures/device-write-ceiling.ts';
import { foundationMeasures } from './measures/foundation.ts';
import { idleMeasures } from './measures/idle.ts';
import { importCostMeasures } from './measures/import-cost.ts';
import { networkHandlerMeasures } from './measures/network-handlers.ts';
import { onvifUsbMeasures } from './measures/onvif-usb.ts';
import { opcuaMeasures } from './measures/opcua.ts';
import { realNodeMeasures } from './measures/real-node.ts';
import { realNodeIdleMeasures } from './measures/real-node-idle.ts';
import { wasmBrokerMeasures } from './measures/wasm-brokers.ts';

const measures: Measure[] = [
  ...foundationMeasures,
  ...agentMeasures,
  ...controllerMeasures,
  ...networkHandlerMeasures,
  ...onvifUsbMeasures,
  ...cliMeasures,
  ...realNodeMeasures,
  ...realNodeIdleMeasures,
  ...wasmBrokerMeasures,
  ...idleMeasures,
  ...importCostMeasures,
  ...devicePluginModeMeasures,
  ...deviceWriteCeilingMeasures,
  ...opcuaMeasures,
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !measures.some((m) => m.name === w));
if (unknown.length > 0) {
  process.stderr.write(`unknown measure(s): ${unknown.join(', ')}; known: ${measures.map((m) => m.name).join(', ')}\n`);
  process.exit(2);
}
const selected = wanted.length === 0 ? measures.filter((m) => m.onlyWhenNamed !== true) : measures.filter((m) => wanted.includes(m.name));
const results: Measurement[] = [];
for (const measure of selected) {
  process.stderr.write(`running ${measure.name}: ${measure.description}\n`);
  results.push(...(await measure.run()));
}
process.stdout.write(
  renderTable(
    ['MEASURE', 'UNIT', 'N', 'P50', 'P99', 'MAX'],
    results.map((r) => [r.name, r.unit, String(r.n), String(r.p50), String(r.p99), String(r.max)]),
  ),
);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const environment = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', at: new Date().toISOString() };
await writeFile(new URL('./results/latest.json', import.meta.url), `${JSON.stringify({ environment, results }, null, 2)}\n`);
