/**
 * Prometheus metrics in the text exposition format (0.0.4): counters, gauges (set, or computed
 * at scrape time) and histograms with labels, a registry, and the process metrics. The agent
 * and the controller each own one registry (no global state); /metrics renders it.
 *
 * Why not prom-client: importing it costs ~19 MiB of RSS, and its default metrics sample the
 * event loop every 10 ms (`monitorEventLoopDelay`), waking an idle process 100 times a second —
 * most of an idle agent's or controller's CPU (issue 15). Here nothing runs between scrapes:
 * process metrics are read when scraped. The API is the subset of prom-client's that Tether
 * uses, with the same names and output.
 */
import { readdirSync, readFileSync } from 'node:fs';

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** A metric a registry can render. */
interface Collectable {
  readonly name: string;
  render(): string;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelText(pairs: readonly (readonly [string, string | number])[]): string {
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(String(v))}"`).join(',')}}`;
}

/** Labels in the order they were declared, so one label set has one key. */
function keyOf(labelNames: readonly string[], labels: Labels<string>): string {
  return JSON.stringify(labelNames.map((name) => (labels[name] === undefined ? null : String(labels[name]))));
}

function pairsOf(labelNames: readonly string[], labels: Labels<string>): [string, string | number][] {
  return labelNames.filter((name) => labels[name] !== undefined).map((name) => [name, labels[name]!]);
}

/** What every metric is made with. */
export interface MetricOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  readonly registers?: readonly Registry[];
}

abstract class Metric<L extends string> implements Collectable {
  readonly name: string;
  protected readonly help: string;
  protected readonly labelNames: readonly L[];

  constructor(options: MetricOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    for (const registry of options.registers ?? []) registry.registerMetric(this);
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${this.name} ${type}\n`;
  }

  abstract render(): string;
}

/** One value per label set (counters and gauges). */
abstract class ValueMetric<L extends string> extends Metric<L> {
  readonly #values = new Map<string, { labels: Labels<L>; value: number }>();

  constructor(options: MetricOptions<L>) {
    super(options);
    // An unlabelled metric is shown (as 0) before its first change, as prom-client does.
    if (this.labelNames.length === 0) this.#values.set(keyOf([], {}), { labels: {}, value: 0 });
  }

  protected add(labels: Labels<L>, delta: number, absolute: boolean): void {
    const key = keyOf(this.labelNames, labels);
    const entry = this.#values.get(key);
    if (entry === undefined) this.#values.set(key, { labels: { ...labels }, value: delta });
    else entry.value = absolute ? delta : entry.value + delta;
  }

  /** Forgets every label set. */
  reset(): void {
    this.#values.clear();
    if (this.labelNames.length === 0) this.#values.set(keyOf([], {}), { labels: {}, value: 0 });
  }

  protected renderValues(type: string): string {
    let text = this.header(type);
    for (const { labels, value } of this.#values.values())
      text += `${this.name}${labelText(pairsOf(this.labelNames, labels))} ${formatValue(value)}\n`;
    return text;
  }
}

/** Options of a {@link Counter}: `collect` (a total read from elsewhere) runs at every scrape. */
export interface CounterOptions<L extends string> extends MetricOptions<L> {
  collect?(this: Counter<L>): void;
}

/** A value that only goes up. */
export class Counter<L extends string = never> extends ValueMetric<L> {
  readonly #collect: (() => void) | undefined;

  constructor(options: CounterOptions<L>) {
    super(options);
    this.#collect = options.collect?.bind(this);
  }

  inc(labelsOrValue?: Labels<L> | number, value = 1): void {
    if (typeof labelsOrValue === 'number') this.add({}, labelsOrValue, false);
    else this.add(labelsOrValue ?? {}, value, false);
  }

  render(): string {
    this.#collect?.();
    return this.renderValues('counter');
  }
}

/** Options of a {@link Gauge}: `collect` runs at every scrape, before rendering. */
export interface GaugeOptions<L extends string> extends MetricOptions<L> {
  collect?(this: Gauge<L>): void;
}

/** A value that is set (or computed at scrape time by `collect`). */
export class Gauge<L extends string = never> extends ValueMetric<L> {
  readonly #collect: (() => void) | undefined;

  constructor(options: GaugeOptions<L>) {
    super(options);
    this.#collect = options.collect?.bind(this);
  }

  set(labelsOrValue: Labels<L> | number, value?: number): void {
    if (typeof labelsOrValue === 'number') this.add({}, labelsOrValue, true);
    else this.add(labelsOrValue, value ?? 0, true);
  }

  render(): string {
    this.#collect?.();
    return this.renderValues('gauge');
  }
}

/** Options of a {@link Histogram}: upper bounds of its buckets, seconds. */
export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  readonly buckets?: readonly number[];
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram<L extends string = never> extends Metric<L> {
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, { labels: Labels<L>; counts: number[]; sum: number; count: number }>();

  constructor(options: HistogramOptions<L>) {
    super(options);
    this.#buckets = [...(options.buckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b);
  }

  observe(labelsOrValue: Labels<L> | number, value?: number): void {
    const [labels, v] = typeof labelsOrValue === 'number' ? [{}, labelsOrValue] : [labelsOrValue, value ?? 0];
    const key = keyOf(this.labelNames, labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels: { ...labels }, counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    const index = this.#buckets.findIndex((bound) => v <= bound);
    if (index >= 0) series.counts[index]! += 1;
    series.sum += v;
    series.count += 1;
  }

  /** Starts timing; the returned function observes the seconds elapsed (with extra labels). */
  startTimer(labels: Labels<L> = {}): (more?: Labels<L>) => number {
    const start = process.hrtime.bigint();
    return (more: Labels<L> = {}) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.observe({ ...labels, ...more }, seconds);
      return seconds;
    };
  }

  render(): string {
    let text = this.header('histogram');
    for (const { labels, counts, sum, count } of this.#series.values()) {
      const pairs = pairsOf(this.labelNames, labels);
      let cumulative = 0;
      for (const [i, bound] of this.#buckets.entries()) {
        cumulative += counts[i]!;
        text += `${this.name}_bucket${labelText([['le', formatValue(bound)], ...pairs])} ${cumulative}\n`;
      }
      text += `${this.name}_bucket${labelText([['le', '+Inf'], ...pairs])} ${count}\n`;
      text += `${this.name}_sum${labelText(pairs)} ${formatValue(sum)}\n`;
      text += `${this.name}_count${labelText(pairs)} ${count}\n`;
    }
    return text;
  }
}

/** The metrics one process exports. */
export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  readonly #metrics = new Map<string, Collectable>();

  registerMetric(metric: Collectable): void {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`);
    this.#metrics.set(metric.name, metric);
  }

  /** The whole registry in the text exposition format. */
  metrics(): Promise<string> {
    return Promise.resolve([...this.#metrics.values()].map((m) => m.render()).join('\n'));
  }
}

/** Linux's page size on x64 and arm64 (statm counts pages). */
const PAGE_SIZE = 4096;

/**
 * prom-client's default process metrics under `prefix` (same names: `process_cpu_seconds_total`,
 * `process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`, …), read at scrape time only.
 * Not exported: the event-loop lag histogram (it needs a 10 ms sampler) and GC durations.
 */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: () => number): void =>
    void new Gauge({ name: `${prefix}${name}`, help, registers, collect: safely(read) });
  const cpu = (): NodeJS.CpuUsage => process.cpuUsage();
  const counter = (name: string, help: string, read: () => number): void =>
    void new Counter({
      name: `${prefix}${name}`,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', () => cpu().user / 1e6);
  counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', () => cpu().system / 1e6);
  counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
    const usage = cpu();
    return (usage.user + usage.system) / 1e6;
  });
  const started = Math.round(Date.now() / 1000 - process.uptime());
  gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => started);
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', () => statm(0) * PAGE_SIZE);
  gauge('process_open_fds', 'Number of open file descriptors.', () => readdirSync('/proc/self/fd').length);
  gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', () => process.memoryUsage().heapTotal);
  gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', () => process.memoryUsage().heapUsed);
  gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', () => process.memoryUsage().external);
  gauge('nodejs_active_handles_total', 'Number of active libuv handles grouped by handle type.', () => activeResources());
  const version = new Gauge({
    name: `${prefix}nodejs_version_info`,
    help: 'Node.js version info.',
    labelNames: ['version', 'major', 'minor', 'patch'],
    registers,
  });
  const [major, minor, patch] = process.versions.node.split('.');
  version.set({ version: process.version, major: major ?? '', minor: minor ?? '', patch: patch ?? '' }, 1);
}

function safely(read: () => number): (this: Gauge<never>) => void {
  return function (this: Gauge<never>): void {
    try {
      this.set(read());
    } catch {
      this.set(Number.NaN);
    }
  };
}

function statm(field: number): number {
  return Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[field]);
}

function activeResources(): number {
  return process.getActiveResourcesInfo().filter((r) => r !== 'Timeout' && r !== 'Immediate').length;
}
