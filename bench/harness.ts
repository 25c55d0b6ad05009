/** Shared shape of benchmark results and the statistics every measure reports. */
export interface Measurement {
  readonly name: string;
  readonly unit: string;
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface Measure {
  readonly name: string;
  readonly description: string;
  /** Runs only when named (`npm run bench -- <name>`): needs root or real nodes, or takes long. */
  readonly onlyWhenNamed?: boolean;
  run(): Promise<Measurement[]>;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export function summarize(name: string, unit: string, samples: readonly number[], digits = 2): Measurement {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x: number): number => Number(x.toFixed(digits));
  return {
    name,
    unit,
    n: sorted.length,
    p50: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    max: round(sorted.at(-1) ?? Number.NaN),
  };
}
