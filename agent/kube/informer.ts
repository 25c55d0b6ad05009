/**
 * A list+watch cache that keeps itself running. client-node's ListWatch stops for good on
 * an error (apiserver restart, network blip); this wrapper restarts it with capped
 * exponential backoff and reports every change through one callback.
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions<T extends KubernetesObject> {
  readonly kc: KubeConfig;
  /** Watch path, e.g. /apis/tether.dev/v1alpha1/devices. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  readonly log: Logger;
  readonly onEvent: (event: InformerEvent, object: T) => void;
  readonly maxBackoffMs?: number;
}

export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  readonly #lw: ListWatch<T>;
  #stopped = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#lw = new ListWatch<T>(options.path, new Watch(options.kc), options.list, false, options.labelSelector, options.fieldSelector);
    this.#lw.on('add', (o: T) => this.#event('add', o));
    this.#lw.on('update', (o: T) => this.#event('update', o));
    this.#lw.on('delete', (o: T) => this.#event('delete', o));
    this.#lw.on('error', (error: unknown) => this.#restartLater(error));
  }

  /** Lists, starts watching and resolves once the cache holds the initial list. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#lw.start();
  }

  list(namespace?: string): readonly T[] {
    return this.#lw.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#lw.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    await this.#lw.stop();
  }

  #event(event: InformerEvent, object: T): void {
    this.#failures = 0;
    this.#options.onEvent(event, object);
  }

  #restartLater(error: unknown): void {
    if (this.#stopped) return;
    this.#failures++;
    const delay = Math.min(100 * 2 ** (this.#failures - 1), this.#options.maxBackoffMs ?? 10_000);
    this.#options.log.warn({ err: error, path: this.#options.path, retryInMs: delay }, 'Watch failed; restarting');
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#lw.start().catch((e: unknown) => this.#restartLater(e));
    }, delay);
  }
}
