/**
 * The import check (`npm run check:imports`, run by `npm test`, and by
 * spec/imports.spec.ts so that a violation is a failed test): the layering of the
 * repository as dependency-cruiser rules.
 *
 *   lib/      the library; imports nothing of the repo outside lib/
 *   testkit/  what specs and scripts share (echo backends, tcp proxy, etcd truth, certs)
 *   spec/     imports lib/ and testkit/ (and etcd-dev/, the dev etcd tool)
 *   scripts/  imports lib/'s entries (index, grpc/index, metrics, internal) and testkit/
 *
 * No cycles anywhere. dependency-cruiser reads TypeScript only through the TypeScript
 * compiler API, which TypeScript 7 no longer has, so it cruises tsc's output in build/
 * (as grpc-js runs `madge -c` on its build): runtime imports, which are what can form a
 * load-order cycle or drag scripts into the package. Type-only imports are erased there;
 * a type import from lib/ into the repo would surface in the shipped .d.ts, which the
 * consumer spec type-checks against the packed tarball. Paths match with and without
 * the build/ prefix, so the rules also apply to plain-JS fixtures (spec/imports.spec.ts).
 */
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
      to: { path: '^(build/)?lib/', pathNot: '^(build/)?lib/(index|internal|metrics|grpc/index)\\.js$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/|\\.d\\.m?ts$|\\.map$' },
  },
};
