import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the metrics read at scrape time; each part is optional. */
export interface MetricSources {
  /** Per environment: the age of the upstream key in use, in days, when known. */
  upstreamKeys?: () => Record<string, { ageDays?: number | null; ok: boolean }>;
  rotationDays?: number;
  breaker?: () => 'closed' | 'open' | 'half-open';
  limitsHealthy?: () => boolean;
  auditHealthy?: () => boolean;
}

/**
 * The gateway's Prometheus metrics: requests by action and status, latency, and the state an
 * operator alerts on (an upstream key past its rotation period, an open circuit, a limit store
 * or audit trail in trouble). Labels are fixed sets (action names, status codes, environment
 * names): never a key, a path a client chose, or content.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'action' | 'status'>;
  readonly #latency: Histogram<'action'>;
  readonly #series = new Map<
    string,
    { requests: { inc(): void }; latency: { observe(value: number): void } }
  >();

  constructor(sources: MetricSources = {}) {
    this.#requests = new Counter({
      name: 'mistral_guard_requests_total',
      help: 'Requests answered, by action and HTTP status.',
      labelNames: ['action', 'status'],
      registers: [this.registry],
    });
    this.#latency = new Histogram({
      name: 'mistral_guard_request_duration_seconds',
      help: 'Time from request to answer (to the end of the stream for streams).',
      labelNames: ['action'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    const rotationDays = sources.rotationDays ?? 90;
    new Gauge({
      name: 'mistral_guard_upstream_key_age_days',
      help: 'Days since the upstream key in use was first seen, per environment.',
      labelNames: ['environment'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [env, status] of Object.entries(sources.upstreamKeys?.() ?? {})) {
          if (typeof status.ageDays === 'number') this.set({ environment: env }, status.ageDays);
        }
      },
    });
    new Gauge({
      name: 'mistral_guard_upstream_key_rotation_overdue',
      help: `1 when an environment's upstream key is older than ${rotationDays} days.`,
      labelNames: ['environment'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [env, status] of Object.entries(sources.upstreamKeys?.() ?? {})) {
          const overdue = typeof status.ageDays === 'number' && status.ageDays > rotationDays;
          this.set({ environment: env }, overdue ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'mistral_guard_upstream_key_usable',
      help: '1 when the environment has a usable upstream key.',
      labelNames: ['environment'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [env, status] of Object.entries(sources.upstreamKeys?.() ?? {})) {
          this.set({ environment: env }, status.ok ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'mistral_guard_upstream_circuit_open',
      help: '1 while the circuit breaker fails calls fast.',
      registers: [this.registry],
      collect() {
        this.set(sources.breaker?.() === 'open' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'mistral_guard_limit_store_up',
      help: '1 while the limit store answers.',
      registers: [this.registry],
      collect() {
        this.set(sources.limitsHealthy?.() === false ? 0 : 1);
      },
    });
    new Gauge({
      name: 'mistral_guard_audit_healthy',
      help: '0 when the audit trail cannot take events (its spool is full).',
      registers: [this.registry],
      collect() {
        this.set(sources.auditHealthy?.() === false ? 0 : 1);
      },
    });
  }

  /** Counts one answered request. */
  observe(action: string, status: number, seconds: number): void {
    // Actions and statuses are few, so the labelled series are looked up once and kept: finding
    // one from its labels (hashing them) costs more than counting.
    const name = `${action} ${status}`;
    let series = this.#series.get(name);
    if (!series) {
      series = {
        requests: this.#requests.labels(action, String(status)),
        latency: this.#latency.labels(action),
      };
      this.#series.set(name, series);
    }
    series.requests.inc();
    series.latency.observe(seconds);
  }

  /** The metrics in Prometheus' text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
