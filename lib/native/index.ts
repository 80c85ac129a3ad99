/**
 * The `anchorpool/grpc` entry: grpc-js integration. `registerAnchorpool()` makes
 * `etcd:///…` and `pass:///…` usable as grpc-js channel targets (the resolver) with
 * `anchored_round_robin` as their default load-balancing policy. The main entry
 * (`anchorpool`) exports the same function; this entry is for code that wants only the
 * grpc-js integration, by name.
 */
export { registerAnchorpool, type RegisterOptions } from './register-anchorpool.js';
