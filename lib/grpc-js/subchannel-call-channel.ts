/**
 * The call channel of one subchannel, for the policy's own streams on that connection
 * (the health Watch). grpc-js 1.14 gives each subchannel a channel whose calls all go
 * over it (`SubchannelInterface.getChannel()`, the way its ORCA stream works); this
 * wrapper closes two gaps of that young API:
 *   - a call's start() is asynchronous (filters, call credentials) and its promise is not
 *     awaited by grpc-js: when the subchannel leaves READY meanwhile it rejects ("not
 *     READY") unhandled, which ends the process. Here it ends the call UNAVAILABLE.
 *   - a cancel during that wait is stored but the HTTP/2 stream is still opened after it
 *     and never reset (an orphan stream on the server). Here the cancel is sent again
 *     once the start has finished.
 * The channel is the subchannel's and shared: close() does nothing.
 */
import * as grpc from '@grpc/grpc-js';
import type { CallStream as Call, SubchannelInterface } from './experimental.js';

type StartArguments = Parameters<Call['start']>;

class StartGuardedCall implements Call {
  readonly #inner: Call;
  #cancelled: [grpc.status, string] | undefined;
  #started = false;

  constructor(inner: Call) {
    this.#inner = inner;
  }

  start(metadata: StartArguments[0], listener: StartArguments[1]): void {
    let starting: unknown;
    try {
      starting = this.#inner.start(metadata, listener);
    } catch (error) {
      starting = Promise.reject(error);
    }
    Promise.resolve(starting).then(
      () => {
        this.#started = true;
        if (this.#cancelled !== undefined) this.#inner.cancelWithStatus(...this.#cancelled);
      },
      (error: unknown) => {
        this.#started = true;
        const details = `anchorpool: the call could not start on its subchannel: ${error instanceof Error ? error.message : String(error)}`;
        listener.onReceiveStatus({ code: grpc.status.UNAVAILABLE, details, metadata: new grpc.Metadata() });
      },
    );
  }

  cancelWithStatus(status: grpc.status, details: string): void {
    if (!this.#started) this.#cancelled ??= [status, details];
    this.#inner.cancelWithStatus(status, details);
  }

  getPeer(): string {
    return this.#inner.getPeer();
  }
  sendMessageWithContext(...args: Parameters<Call['sendMessageWithContext']>): void {
    this.#inner.sendMessageWithContext(...args);
  }
  startRead(): void {
    this.#inner.startRead();
  }
  halfClose(): void {
    this.#inner.halfClose();
  }
  getCallNumber(): number {
    return this.#inner.getCallNumber();
  }
  setCredentials(credentials: grpc.CallCredentials): void {
    this.#inner.setCredentials(credentials);
  }
  getAuthContext(): ReturnType<Call['getAuthContext']> {
    return this.#inner.getAuthContext();
  }
}

export class SubchannelCallChannel implements grpc.ChannelInterface {
  readonly #inner: grpc.ChannelInterface;

  constructor(subchannel: SubchannelInterface) {
    this.#inner = subchannel.getChannel();
  }

  close(): void {}
  getTarget(): string {
    return this.#inner.getTarget();
  }
  getConnectivityState(tryToConnect: boolean): grpc.connectivityState {
    return this.#inner.getConnectivityState(tryToConnect);
  }
  watchConnectivityState(...args: Parameters<grpc.ChannelInterface['watchConnectivityState']>): void {
    this.#inner.watchConnectivityState(...args);
  }
  getChannelzRef(): ReturnType<grpc.ChannelInterface['getChannelzRef']> {
    return this.#inner.getChannelzRef();
  }
  createCall(...args: Parameters<grpc.ChannelInterface['createCall']>): Call {
    return new StartGuardedCall(this.#inner.createCall(...args) as Call);
  }
}
