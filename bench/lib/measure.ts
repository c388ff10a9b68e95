import { createHook } from 'node:async_hooks';

/** One run of a variant: wall-clock and CPU time (all threads of this process: GC helpers count too). */
export interface Sample {
  wallUs: number;
  cpuUs: number;
}

/**
 * Times one run. Garbage is collected first when the runner started Node with `--expose-gc`, so
 * a run does not pay for the garbage of the one before it.
 */
export async function sample(run: () => Promise<unknown>): Promise<Sample> {
  (globalThis as { gc?: () => void }).gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await run();
  const wallUs = (performance.now() - start) * 1000;
  const { user, system } = process.cpuUsage(cpu);
  return { wallUs, cpuUs: user + system };
}

/**
 * How many promises one run creates: exact and free of timing noise, so it shows what a change
 * to the per-chunk path did even on a busy machine. The hook slows the run; never time it.
 */
export async function countPromises(run: () => Promise<unknown>): Promise<number> {
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  });
  hook.enable();
  try {
    await run();
  } finally {
    hook.disable();
  }
  return promises;
}
