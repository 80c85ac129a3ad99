// One gauge or counter from an etcd member's Prometheus endpoint (`<clientUrl>/metrics`),
// e.g. etcd_debugging_mvcc_watch_stream_total; NaN when etcd does not report it, so a
// comparison with it fails instead of passing on a 0.
export async function etcdGauge(clientUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}
