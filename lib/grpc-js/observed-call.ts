/**
 * A grpc-js call whose start() is intercepted: the owner adds metadata before it is sent
 * and hears each message and the status, without wrapping the call in an interceptor
 * (etcd3 makes its calls through its own clients; a `channelFactoryOverride` channel is
 * the one place to reach them). grpc-js's Call objects are plain objects whose start()
 * may be replaced before it is called.
 */
import type { ChannelInterface, Metadata, StatusObject } from '@grpc/grpc-js';

type Call = ReturnType<ChannelInterface['createCall']>;
type CallListener = Parameters<Call['start']>[1];

export interface CallObserver {
  /** Just before the call starts: metadata may still be changed. */
  starting(metadata: Metadata): void;
  message?(): void;
  status(received: StatusObject): void;
}

export function observeCall(call: Call, observer: CallObserver): Call {
  const start = call.start.bind(call);
  call.start = (metadata, listener: CallListener) => {
    observer.starting(metadata);
    start(metadata, {
      onReceiveMetadata: (received) => listener.onReceiveMetadata(received),
      onReceiveMessage: (message) => {
        observer.message?.();
        listener.onReceiveMessage(message);
      },
      onReceiveStatus: (received) => {
        observer.status(received);
        listener.onReceiveStatus(received);
      },
    });
  };
  return call;
}
