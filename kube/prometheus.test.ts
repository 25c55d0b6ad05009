import { describe, expect, it } from 'vitest';
import { Counter, Gauge, Histogram, Registry, registerProcessMetrics } from './prometheus.ts';

describe('Prometheus text exposition', () => {
  it('renders counters, gauges and histograms as prom-client does', async () => {
    const registry = new Registry();
    const registers = [registry];
    const plain = new Counter({ name: 't_plain_total', help: 'Plain.', registers });
    const labelled = new Counter({ name: 't_requests_total', help: 'By verb.', labelNames: ['verb', 'resource'], registers });
    const leader = new Gauge({ name: 't_leader', help: 'Leader.', registers });
    new Gauge({
      name: 't_depth',
      help: 'At scrape time.',
      labelNames: ['controller'],
      registers,
      collect() {
        this.set({ controller: 'device' }, 4);
      },
    });
    const latency = new Histogram({ name: 't_seconds', help: 'Latency.', labelNames: ['controller'], buckets: [0.1, 1], registers });
    plain.inc();
    plain.inc(2);
    labelled.inc({ verb: 'create', resource: 'pods' });
    labelled.inc({ resource: 'pods', verb: 'create' });
    labelled.inc({ verb: 'get', resource: 'say "hi"\n' });
    leader.set(1);
    latency.observe({ controller: 'device' }, 0.05);
    latency.observe({ controller: 'device' }, 0.5);
    latency.observe({ controller: 'device' }, 5);
    expect(await registry.metrics()).toBe(
      [
        '# HELP t_plain_total Plain.\n# TYPE t_plain_total counter\nt_plain_total 3\n',
        '# HELP t_requests_total By verb.\n# TYPE t_requests_total counter\nt_requests_total{verb="create",resource="pods"} 2\nt_requests_total{verb="get",resource="say \\"hi\\"\\n"} 1\n',
        '# HELP t_leader Leader.\n# TYPE t_leader gauge\nt_leader 1\n',
        '# HELP t_depth At scrape time.\n# TYPE t_depth gauge\nt_depth{controller="device"} 4\n',
        '# HELP t_seconds Latency.\n# TYPE t_seconds histogram\n' +
          't_seconds_bucket{le="0.1",controller="device"} 1\nt_seconds_bucket{le="1",controller="device"} 2\n' +
          't_seconds_bucket{le="+Inf",controller="device"} 3\nt_seconds_sum{controller="device"} 5.55\nt_seconds_count{controller="device"} 3\n',
      ].join('\n'),
    );
    expect(registry.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('times with startTimer and refuses a name twice', () => {
    const registry = new Registry();
    const h = new Histogram({ name: 't_h', help: 'h', labelNames: ['c'], registers: [registry] });
    expect(h.startTimer({ c: 'x' })()).toBeGreaterThanOrEqual(0);
    expect(() => new Counter({ name: 't_h', help: 'again', registers: [registry] })).toThrow('already registered');
  });

  it('process metrics are read at scrape time under the prefix', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry, 'x_');
    const text = await registry.metrics();
    expect(text).toMatch(/^x_process_cpu_seconds_total \d+(\.\d+)?(e-\d+)?$/m);
    expect(text).toMatch(/^x_process_resident_memory_bytes [1-9]\d+$/m);
    expect(text).toMatch(/^x_nodejs_heap_size_used_bytes [1-9]\d+$/m);
    expect(text).toMatch(/^x_process_open_fds [1-9]\d*$/m);
    expect(text).toMatch(/^x_nodejs_version_info\{version="v\d+/m);
  });
});
