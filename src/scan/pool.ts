/**
 * Runs `work` over `items` with at most `limit` calls in flight, in order of the items.
 *
 * @example
 * await forEachLimit(files, 8, async (file) => scanFile(file));
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
