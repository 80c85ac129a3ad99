/**
 * The import check (`npm run check:imports`, run by `npm test`, and by
 * spec/imports.spec.ts so that a violation is a failed test): the layering of the
 * repository as dependency-cruiser rules.
 *
 *   lib/      the library; imports nothing of the repo outside lib/
 *   testkit/  what specs and scripts share (echo backends, tcp proxy, etcd truth, certs)
 *   spec/     imports lib/ and testkit/ (and etcd-dev/, the dev etcd tool)
 *   scripts/  imports lib/'s entries (index, native/index, pool/metrics, internal) and testkit/
 *
 * Inside lib/, folders are layers; each may import only those below it:
 *
 *   core/       lifecycle, errors, logger, timers, option schemas: imports nothing of lib/
 *   grpc-js/    everything that reaches grpc-js internals or patches its objects
 *   etcd/       the etcd client and the one-per-process shared client
 *   discovery/  targets, etcd values, sources, desired state, self-registration
 *   anchors/    the anchor both paths share, the anchor set and what drives it
 *   pool/       the lease pool (createPool, leases, pool.client(), metrics)
 *   native/     the grpc-js resolver and anchored_round_robin policy
 *   cli/        the command line; index.ts and internal.ts are the entries
 *
 * pool/ and native/ never import each other.
 *
 * No cycles anywhere. dependency-cruiser reads TypeScript only through the TypeScript
 * compiler API, which TypeScript 7 no longer has, so it cruises tsc's output in build/
 * (as grpc-js runs `madge -c` on its build): runtime imports, which are what can form a
 * load-order cycle or drag scripts into the package. Type-only imports are erased there;
 * a type import from lib/ into the repo would surface in the shipped .d.ts, which the
 * consumer spec type-checks against the packed tarball. Paths match with and without
 * the build/ prefix, so the rules also apply to plain-JS fixtures (spec/imports.spec.ts).
 */
/**
 * One rule per layer folder of lib/: it may import its own folder and the ones listed.
 * @param {Record<string, string[]>} layers
 */
function layerRules(layers) {
  return Object.entries(layers).map(([folder, below]) => ({
    name: `lib-${folder}-imports-only-${below.length === 0 ? 'itself' : below.join('-')}`,
    severity: 'error',
    comment: `lib/${folder}/ is a layer: it imports ${below.length === 0 ? 'nothing else of lib/' : `only lib/${below.join('/, lib/')}/`} besides itself.`,
    from: { path: `^(build/)?lib/${folder}/` },
    to: { path: '^(build/)?lib/', pathNot: `^(build/)?lib/(${[folder, ...below].join('|')})/` },
  }));
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order matter and hide layering mistakes.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'lib-stays-in-lib',
      severity: 'error',
      comment: 'The published library never imports the repo’s scripts, specs, test kit or dev etcd.',
      from: { path: '^(build/)?lib/' },
      to: { path: '^(build/)?(scripts|spec|testkit|etcd-dev|bin)/' },
    },
    {
      name: 'testkit-not-spec-or-scripts',
      severity: 'error',
      comment: 'The test kit is shared by specs and scripts, so it imports neither.',
      from: { path: '^(build/)?testkit/' },
      to: { path: '^(build/)?(scripts|spec)/' },
    },
    {
      name: 'spec-not-scripts',
      severity: 'error',
      comment: 'Specs may run a built script as a child process, not import it; shared code goes to testkit/.',
      from: { path: '^(build/)?spec/' },
      to: { path: '^(build/)?scripts/' },
    },
    {
      name: 'scripts-not-spec',
      severity: 'error',
      comment: 'Scripts do not import specs; shared code goes to testkit/.',
      from: { path: '^(build/)?scripts/' },
      to: { path: '^(build/)?spec/' },
    },
    {
      name: 'scripts-use-lib-entries',
      severity: 'error',
      comment: 'Scripts use lib’s public entries or the documented internal entry (lib/internal.ts), not deep imports.',
      from: { path: '^(build/)?scripts/' },
      to: { path: '^(build/)?lib/', pathNot: '^(build/)?lib/(index|internal|pool/metrics|native/index)\\.js$' },
    },

    ...layerRules({
      core: [],
      'grpc-js': ['core'],
      etcd: ['core', 'grpc-js'],
      discovery: ['core', 'grpc-js', 'etcd'],
      anchors: ['core', 'grpc-js'],
      pool: ['core', 'grpc-js', 'etcd', 'discovery', 'anchors'],
      native: ['core', 'grpc-js', 'etcd', 'discovery', 'anchors'],
    }),
    {
      name: 'grpc-js-internals-in-one-folder',
      severity: 'error',
      comment: 'Deep imports of grpc-js (its build/src files other than the package entry) only from lib/grpc-js/: a grpc-js upgrade is one folder to read.',
      from: { path: '^(build/)?lib/', pathNot: '^(build/)?lib/grpc-js/' },
      to: { path: '@grpc/grpc-js/build/src/', pathNot: '@grpc/grpc-js/build/src/index\\.js$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/|\\.d\\.m?ts$|\\.map$' },
  },
};
