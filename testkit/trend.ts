// How much a series grows over a span, read from its trend rather than its end points:
// a least-squares line through every point, its rise over the span relative to the
// series' mean. A quantity that swings with the workload (RSS with V8's heap between two
// collections) makes two end points disagree by the swing; the fitted line does not.

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** The fitted line's rise over `span` (in x's units) divided by the mean of y; NaN for fewer than 2 distinct x. */
export function trendGrowth(points: readonly Point[], span: number): number {
  const n = points.length;
  if (n < 2) return NaN;
  const meanX = points.reduce((sum, p) => sum + p.x, 0) / n;
  const meanY = points.reduce((sum, p) => sum + p.y, 0) / n;
  let covariance = 0;
  let varianceX = 0;
  for (const p of points) {
    covariance += (p.x - meanX) * (p.y - meanY);
    varianceX += (p.x - meanX) ** 2;
  }
  if (varianceX === 0) return NaN;
  return ((covariance / varianceX) * span) / meanY;
}
