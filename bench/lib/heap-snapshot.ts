/**
 * Reads a V8 `.heapsnapshot` file (the JSON `v8.writeHeapSnapshot` writes) and sums its nodes by
 * what they are: objects by constructor name, closures, strings, numbers and code each as one
 * group, V8's internal (`hidden`, `array`) nodes by their system name. Self sizes only: what each
 * object takes itself, not what it keeps alive.
 */
import { readFileSync } from 'node:fs';

/** How many nodes of one group a snapshot holds, and their self sizes in bytes. */
export interface HeapGroup {
  count: number;
  bytes: number;
}

interface SnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** The group a node is counted in, from its type and name. */
export function groupName(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
    case 'regexp':
    case 'symbol':
    case 'bigint':
      return name;
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'number':
    case 'heap number':
      return '(number)';
    case 'code':
      return '(code)';
    default:
      // `hidden`, `array`, `object shape`, `synthetic`: V8's own names ("system / Context", "(object elements)").
      return `(${type}) ${name.length > 60 ? `${name.slice(0, 57)}…` : name}`.trimEnd();
  }
}

/** Sums the nodes of the snapshot in `file` by {@link groupName}. */
export function readHeapGroups(file: string): Map<string, HeapGroup> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as SnapshotFile;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  if (typeAt === -1 || nameAt === -1 || sizeAt === -1) throw new Error(`${file} is not a V8 heap snapshot: its nodes have no type, name or self_size`);
  const groups = new Map<string, HeapGroup>();
  const { nodes, strings } = snapshot;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt] as number] ?? 'unknown';
    if (type === 'synthetic') continue; // the roots: no memory of their own
    const key = groupName(type, strings[nodes[i + nameAt] as number] ?? '');
    const group = groups.get(key);
    const bytes = nodes[i + sizeAt] as number;
    if (group === undefined) groups.set(key, { count: 1, bytes });
    else {
      group.count++;
      group.bytes += bytes;
    }
  }
  return groups;
}

/** What `streams` streams added between the idle snapshot and the loaded one, per stream. */
export function perStream(idle: Map<string, HeapGroup>, loaded: Map<string, HeapGroup>, streams: number): Map<string, HeapGroup> {
  const result = new Map<string, HeapGroup>();
  for (const key of new Set([...idle.keys(), ...loaded.keys()])) {
    const before = idle.get(key) ?? { count: 0, bytes: 0 };
    const after = loaded.get(key) ?? { count: 0, bytes: 0 };
    result.set(key, { count: (after.count - before.count) / streams, bytes: (after.bytes - before.bytes) / streams });
  }
  return result;
}
