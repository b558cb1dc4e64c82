/** The engines this Ferry build has, by kind. */
import type { EngineKind } from '../core/connection-profile.js';
import { FerryError } from '../core/errors.js';
import type { Engine } from './engine.js';

export class EngineRegistry {
  readonly #engines: Map<EngineKind, Engine>;

  constructor(engines: Engine[]) {
    this.#engines = new Map(engines.map((engine) => [engine.kind, engine]));
  }

  has(kind: EngineKind): boolean {
    return this.#engines.has(kind);
  }

  /** The engine, or NOT_IMPLEMENTED saying what this build supports. */
  get(kind: EngineKind): Engine {
    const engine = this.#engines.get(kind);
    if (engine === undefined) {
      throw new FerryError(
        'NOT_IMPLEMENTED',
        `The ${kind === 'mysql' ? 'MySQL/MariaDB' : kind} engine is not built yet: this Ferry migrates ${[...this.#engines.keys()].join(', ')} only. Watch the release notes for MySQL/MariaDB support.`,
        { details: { engine: kind } },
      );
    }
    return engine;
  }
}
