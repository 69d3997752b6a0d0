/**
 * Loaded before a server's own module by {@link ./heap_probe.ts} (Deno's preload, with V8's expose-gc
 * flag): on SIGUSR2 it forces a full collection and writes the heap's figures, before and after, to
 * `$HEAP_PROBE_OUT.<n>.json` (and a heap snapshot beside it when `HEAP_PROBE_SNAPSHOT` is set). The
 * server's code is not changed, so our server and the naive one are measured the same way.
 * @module
 */
import v8 from "node:v8";

const out = Deno.env.get("HEAP_PROBE_OUT");
const snapshots = Boolean(Deno.env.get("HEAP_PROBE_SNAPSHOT"));
const gc = (globalThis as { gc?: () => void }).gc;
if (out && gc) {
  let n = 0;
  const spaces = () =>
    Object.fromEntries(
      v8.getHeapSpaceStatistics().map((s) => [s.space_name, [s.space_size, s.space_used_size]]),
    );
  Deno.addSignalListener("SIGUSR2", () => {
    const before = { rss: Deno.memoryUsage().rss, heap: v8.getHeapStatistics() };
    // Twice: the first collection can leave what only weak references or finalizers held.
    gc();
    gc();
    const k = n++;
    const snapshot = snapshots ? v8.writeHeapSnapshot(`${out}.${k}.heapsnapshot`) : null;
    const after = v8.getHeapStatistics();
    Deno.writeTextFileSync(
      `${out}.${k}.json`,
      JSON.stringify({
        rssBeforeGc: before.rss,
        usedBeforeGc: before.heap.used_heap_size,
        totalBeforeGc: before.heap.total_heap_size,
        rss: Deno.memoryUsage().rss,
        used: after.used_heap_size,
        total: after.total_heap_size,
        spaces: spaces(),
        snapshot,
      }),
    );
  });
}
