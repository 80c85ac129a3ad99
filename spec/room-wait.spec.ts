// Calls waiting for room under the stream cap (lib/native/room-wait.ts): one new picker
// per event-loop turn, only when a call waited, never after destroy.
import t from 'tap';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { RoomWait } from '../lib/native/room-wait.js';

t.test('places freed in one turn give one new picker, on the next turn', async (t) => {
  let pickers = 0;
  const wait = new RoomWait(() => (pickers += 1));
  wait.waiting();
  wait.roomFreed();
  wait.roomFreed();
  wait.roomFreed();
  t.equal(pickers, 0, 'not from inside the call end that freed the place');
  await nextTurn();
  t.equal(pickers, 1, 'one picker for three places');
  wait.roomFreed();
  await nextTurn();
  t.equal(pickers, 1, 'no call waits any more: nothing to pick again');
});

t.test('no call waited: a freed place reports nothing', async (t) => {
  let pickers = 0;
  const wait = new RoomWait(() => (pickers += 1));
  wait.roomFreed();
  await nextTurn();
  t.equal(pickers, 0);
});

t.test('destroyed before the turn: nothing is reported', async (t) => {
  let pickers = 0;
  const wait = new RoomWait(() => (pickers += 1));
  wait.waiting();
  wait.roomFreed();
  wait.destroy();
  await nextTurn();
  t.equal(pickers, 0);
});
