// Figures as the median of several runs with their min and max, and ratios against a
// baseline measured in the same run (these machines are noisy).

export interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: number[]): Figure {
  if (values.length === 0) throw new Error("no values to summarize");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values.length };
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** "12.3 (11.9-12.8)" with `digits` decimals. */
export function formatFigure(figure: Figure, digits = 0): string {
  const f = (v: number) => v.toFixed(digits);
  return figure.min === figure.max ? f(figure.median) : f(figure.median) + " (" + f(figure.min) + "-" + f(figure.max) + ")";
}

/** Runs `measure` `runs` times, one after the other. */
export async function repeat<T>(runs: number, measure: (run: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let run = 0; run < runs; run++) results.push(await measure(run));
  return results;
}
