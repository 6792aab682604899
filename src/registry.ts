/** A name -> entry table that the CLI, the trainer and the file reader look things up in (methods, compressors). */
export interface Registry<T extends { name: string }> {
  register(entry: T): void;
  names(): string[];
  find(name: string): T | undefined;
}

export function registry<T extends { name: string }>(kind: string): Registry<T> {
  const entries = new Map<string, T>();
  return {
    register(entry) {
      if (entries.has(entry.name)) throw new Error(`${kind} ${entry.name} registered twice`);
      entries.set(entry.name, entry);
    },
    names: () => [...entries.keys()],
    find: (name) => entries.get(name),
  };
}
