/**
 * A fake grpc-js ChannelControlHelper and fake subchannels, as grpc-js tests its own
 * policies: the helper records every updateState(state, picker, error) and
 * requestReresolution() call in order; each subchannel records ref/unref/startConnecting
 * and its listeners, and changes state only when the test says so (a real subchannel
 * goes IDLE → CONNECTING by itself after startConnecting; here the test drives that).
 */
import { Metadata, connectivityState as State, credentials, type ChannelOptions } from '@grpc/grpc-js';
import type { experimental } from '@grpc/grpc-js';
import { ANCHOR_ARG } from '../../lib/anchors/anchor.js';
import { PickResultType } from '../../lib/grpc-js/experimental.js';
import { ReplayingSubchannel } from '../../lib/grpc-js/refused-stream-replay.js';

type ChannelControlHelper = experimental.ChannelControlHelper;
type SubchannelInterface = experimental.SubchannelInterface;
type SubchannelAddress = experimental.SubchannelAddress;
type ConnectivityStateListener = experimental.ConnectivityStateListener;
type HealthListener = experimental.HealthListener;
type Picker = experimental.Picker;

export type HelperCall =
  | { readonly kind: 'updateState'; readonly state: State; readonly picker: Picker; readonly error: string | null }
  | { readonly kind: 'requestReresolution' };

export type UpdateStateCall = Extract<HelperCall, { kind: 'updateState' }>;

let nextId = 1;

export class FakeSubchannel implements SubchannelInterface {
  readonly id = nextId++;
  readonly address: SubchannelAddress;
  readonly args: ChannelOptions;
  /** 'ref', 'unref', 'startConnecting', in call order. */
  readonly log: string[] = [];
  refs = 0;
  readonly listeners = new Set<ConnectivityStateListener>();
  /** Every listener ever added, removed or not (to replay a late event to a removed one). */
  readonly everAdded: ConnectivityStateListener[] = [];
  #state: State = State.IDLE;

  constructor(address: SubchannelAddress, args: ChannelOptions) {
    this.address = address;
    this.args = args;
  }

  /** The distinct anchor arg the policy gave this subchannel. */
  get anchor(): string {
    return String(this.args[ANCHOR_ARG]);
  }
  count(call: 'ref' | 'unref' | 'startConnecting'): number {
    return this.log.filter((c) => c === call).length;
  }

  /** The test plays the transport: tell every listener of the change, as a subchannel does. */
  setState(next: State, errorMessage?: string): void {
    const previous = this.#state;
    this.#state = next;
    for (const listener of [...this.listeners]) listener(this, previous, next, 0, errorMessage);
  }

  getConnectivityState(): State {
    return this.#state;
  }
  addConnectivityStateListener(listener: ConnectivityStateListener): void {
    this.listeners.add(listener);
    this.everAdded.push(listener);
  }
  removeConnectivityStateListener(listener: ConnectivityStateListener): void {
    this.listeners.delete(listener);
  }
  startConnecting(): void {
    this.log.push('startConnecting');
  }
  getAddress(): string {
    return 'path' in this.address ? this.address.path : `${this.address.host}:${this.address.port}`;
  }
  throttleKeepalive(): void {}
  ref(): void {
    this.refs += 1;
    this.log.push('ref');
  }
  unref(): void {
    this.refs -= 1;
    this.log.push('unref');
  }
  getChannelzRef(): ReturnType<SubchannelInterface['getChannelzRef']> {
    return { kind: 'subchannel', id: this.id, name: `fake-${this.id}` } as ReturnType<SubchannelInterface['getChannelzRef']>;
  }
  isHealthy(): boolean {
    return true;
  }
  addHealthStateWatcher(_listener: HealthListener): void {}
  removeHealthStateWatcher(_listener: HealthListener): void {}
  addDataWatcher(): void {}
  getRealSubchannel(): ReturnType<SubchannelInterface['getRealSubchannel']> {
    throw new Error('a FakeSubchannel wraps no real subchannel');
  }
  realSubchannelEquals(other: SubchannelInterface): boolean {
    return other === this;
  }
  getCallCredentials(): ReturnType<SubchannelInterface['getCallCredentials']> {
    return credentials.createEmpty();
  }
  getChannel(): ReturnType<SubchannelInterface['getChannel']> {
    throw new Error('a FakeSubchannel has no channel');
  }
}

export class FakeHelper implements ChannelControlHelper {
  /** Every call to the helper, in order. */
  readonly calls: HelperCall[] = [];
  /** Every subchannel created, in creation order. */
  readonly subchannels: FakeSubchannel[] = [];
  #mark = 0;

  createSubchannel(address: SubchannelAddress, args: ChannelOptions): FakeSubchannel {
    const subchannel = new FakeSubchannel(address, args);
    this.subchannels.push(subchannel);
    return subchannel;
  }
  updateState(state: State, picker: Picker, error: string | null): void {
    this.calls.push({ kind: 'updateState', state, picker, error });
  }
  requestReresolution(): void {
    this.calls.push({ kind: 'requestReresolution' });
  }
  addChannelzChild(): void {}
  removeChannelzChild(): void {}

  /** The calls since the previous take() (or since the start), as short strings: 'CONNECTING', 'READY', 'reresolve'. */
  take(): string[] {
    const calls = this.calls.slice(this.#mark);
    this.#mark = this.calls.length;
    return calls.map((c) => (c.kind === 'requestReresolution' ? 'reresolve' : State[c.state]));
  }
  /** The last updateState call. */
  get last(): UpdateStateCall {
    const updates = this.calls.filter((c): c is UpdateStateCall => c.kind === 'updateState');
    const last = updates.at(-1);
    if (last === undefined) throw new Error('updateState was never called');
    return last;
  }
  get reresolutions(): number {
    return this.calls.filter((c) => c.kind === 'requestReresolution').length;
  }
  /** The subchannel whose anchor arg is `anchor` (`key#index`) and that is still referenced. */
  live(anchor: string): FakeSubchannel {
    const found = this.subchannels.findLast((s) => s.anchor === anchor && s.refs > 0);
    if (found === undefined) throw new Error(`no live subchannel for ${anchor}`);
    return found;
  }
}

/** What a picker's pick() returns, as one word: the anchor arg of a COMPLETE pick, else 'QUEUE' / 'TRANSIENT_FAILURE' / 'DROP'. */
export function pickOnce(picker: Picker): string {
  const result = picker.pick({ metadata: new Metadata(), extraPickInfo: {} });
  if (result.pickResultType === PickResultType.COMPLETE) return pickedFake(result.subchannel!).anchor;
  return PickResultType[result.pickResultType];
}

/** The fake subchannel behind a pick (the policy hands out a replaying view of it). */
export function pickedFake(subchannel: SubchannelInterface): FakeSubchannel {
  return (subchannel instanceof ReplayingSubchannel ? subchannel.anchor.subchannel : subchannel) as FakeSubchannel;
}

export function picks(picker: Picker, count: number): string[] {
  return Array.from({ length: count }, () => pickOnce(picker));
}

/** The status details a failing picker reports. */
export function pickStatus(picker: Picker): string | undefined {
  return picker.pick({ metadata: new Metadata(), extraPickInfo: {} }).status?.details;
}
