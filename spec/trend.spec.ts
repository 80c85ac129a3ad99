import t from 'tap';
import { trendGrowth } from '../testkit/trend.js';

const line = (slope: number, intercept: number, xs: number[]) => xs.map((x) => ({ x, y: intercept + slope * x }));
const xs = Array.from({ length: 11 }, (_, i) => i * 10);

t.test('a straight line grows by its rise over the span, relative to its mean', async (t) => {
  // y = 100 + x over 0..100: mean 150, rise over 100 is 100.
  t.equal(trendGrowth(line(1, 100, xs), 100), 100 / 150);
  t.equal(trendGrowth(line(0, 100, xs), 100), 0);
  t.ok(trendGrowth(line(-0.5, 200, xs), 100) < 0, 'a falling series has negative growth');
});

t.test('a swing around a flat level reads as flat, whatever its end points', async (t) => {
  // 60 readings of a level of 220 swinging by ±8 (RSS between V8's collections), the
  // first at the bottom of a swing and the last at the top.
  const points = Array.from({ length: 60 }, (_, i) => ({ x: i * 10, y: 220 + 8 * Math.sin(i * 1.7) }));
  points[0] = { x: 0, y: 212 };
  points[59] = { x: 590, y: 228 };
  const endPoints = (228 - 212) / 212;
  t.ok(endPoints > 0.05, `the end points alone say +${(endPoints * 100).toFixed(1)}%`);
  const trend = trendGrowth(points, 600);
  t.ok(Math.abs(trend) < 0.02, `the trend says ${(trend * 100).toFixed(1)}%`);
});

t.test('a slow leak under the swing is still seen', async (t) => {
  const points = Array.from({ length: 60 }, (_, i) => ({ x: i * 10, y: 220 + 8 * Math.sin(i * 1.7) + i * 0.3 }));
  const trend = trendGrowth(points, 600);
  // 0.3 per reading over 60 readings is +18 on a mean of about 229: 7.8%.
  t.ok(trend > 0.06 && trend < 0.1, `the trend says ${(trend * 100).toFixed(1)}%`);
});

t.test('too few points or one x give no answer', async (t) => {
  t.ok(Number.isNaN(trendGrowth([], 10)));
  t.ok(Number.isNaN(trendGrowth([{ x: 1, y: 2 }], 10)));
  t.ok(Number.isNaN(trendGrowth([{ x: 1, y: 2 }, { x: 1, y: 3 }], 10)));
});
