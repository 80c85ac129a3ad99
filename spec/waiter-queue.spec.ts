import t from 'tap';
import { WaiterQueue } from '../lib/pool/waiter-queue.js';

const waiter = (name: string, priority = 0) => ({ name, priority, active: true });

t.test('higher priority first, FIFO within a priority', async (t) => {
  const q = new WaiterQueue<ReturnType<typeof waiter>>();
  for (const w of [waiter('a'), waiter('b', 5), waiter('c'), waiter('d', 5), waiter('e', -1)]) q.push(w);
  t.equal(q.size, 5);
  t.same(Array.from({ length: 5 }, () => q.shift()?.name), ['b', 'd', 'a', 'c', 'e']);
  t.equal(q.shift(), undefined);
  t.equal(q.size, 0);
});

t.test('a waiter that gave up is skipped and not counted', async (t) => {
  const q = new WaiterQueue<ReturnType<typeof waiter>>();
  const a = waiter('a');
  const b = waiter('b');
  q.push(a);
  q.push(b);
  a.active = false;
  q.remove();
  t.equal(q.size, 1);
  t.equal(q.shift()?.name, 'b');
  t.equal(q.size, 0);
});

t.test('long queues compact as they drain', async (t) => {
  const q = new WaiterQueue<ReturnType<typeof waiter>>();
  for (let i = 0; i < 5000; i++) q.push(waiter(String(i)));
  for (let i = 0; i < 4000; i++) q.shift();
  t.equal(q.size, 1000);
  t.equal(q.shift()?.name, '4000');
});
