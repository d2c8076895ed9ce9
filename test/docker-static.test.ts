import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { startHttpServer } from '../src/metrics/server.js';

/**
 * The image is built and run by .ci/run after the suite (deploy/container/ci-image.sh: podman build,
 * docker run --read-only, /healthz, SIGTERM, docker diff), which takes minutes and root. This suite
 * stays fast: it checks the Dockerfile, .dockerignore and docker-compose.yml statically, runs the
 * HEALTHCHECK command for real against the HTTP server, and checks that .ci/run keeps the container
 * check.
 */
const root = fileURLToPath(new URL('../', import.meta.url));
const read = (p: string): string => readFileSync(`${root}${p}`, 'utf8');
const dockerfile = read('Dockerfile');
const dockerignore = read('.dockerignore');
const compose = read('docker-compose.yml');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  body: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped, grouped by stage. */
function stages(text: string): Stage[] {
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const out: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args) ?? [];
      out.push({ from, name, body: [] });
    } else if (out.length > 0) {
      out[out.length - 1]!.body.push({ op: op.toUpperCase(), args });
    }
  }
  return out;
}

const all = stages(dockerfile);
const build = all.find((s) => s.name === 'build');
const runtime = all[all.length - 1]!;
const ops = (s: Stage | undefined, op: string): string[] => (s?.body ?? []).filter((i) => i.op === op).map((i) => i.args);

t.test('multi-stage: a build stage compiles, the runtime stage is last', async (t) => {
  t.ok(all.length >= 2, `${all.length} stages`);
  t.ok(build, 'a stage named build');
  t.equal(runtime.name, 'runtime');
  t.ok(ops(build, 'RUN').some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)), 'build: npm ci with dev dependencies');
  t.ok(ops(build, 'RUN').some((r) => /\bnpm run build\b/.test(r)), 'build: npm run build');
  t.match(dockerfile, /^ARG NODE_IMAGE=node:2\d-bookworm-slim$/m, 'a current LTS slim base');
});

t.test('runtime: production dependencies only, nothing from the build stage but dist', async (t) => {
  t.ok(ops(runtime, 'RUN').some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'npm ci --omit=dev');
  const fromBuild = ops(runtime, 'COPY').filter((c) => /--from=build\b/.test(c));
  t.ok(fromBuild.length > 0);
  for (const c of fromBuild) {
    t.notMatch(c, /node_modules/, `no dev dependencies copied: ${c}`);
    t.match(c, /\/dist\b/, `only compiled code: ${c}`);
  }
  // A plain COPY of the whole context would bring node_modules, tests, secrets.
  for (const c of ops(runtime, 'COPY')) t.notMatch(c, /^\.\s|^\.\/?\s/, `no COPY . : ${c}`);
  t.notMatch(ops(runtime, 'ENTRYPOINT').join(' '), /\bnpm\b/, 'npm (which writes to ~/.npm) does not start the daemon');
});

t.test('runtime: non-root, a data volume, metrics on all interfaces, a node HEALTHCHECK', async (t) => {
  const user = ops(runtime, 'USER');
  t.equal(user.length, 1);
  t.notMatch(user[0], /^(root|0)(:|$)/, `USER ${user[0]}`);
  t.match(ops(runtime, 'VOLUME').join(' '), /\/var\/lib\/feedkeeper/);
  t.same(ops(runtime, 'WORKDIR').at(-1), '/var/lib/feedkeeper', 'relative data paths land in the volume');
  t.match(ops(runtime, 'ENV').join(' '), /FEEDKEEPER_METRICS_HOST=0\.0\.0\.0/);
  t.match(ops(runtime, 'STOPSIGNAL').join(' '), /SIGTERM/);
  const hc = ops(runtime, 'HEALTHCHECK');
  t.equal(hc.length, 1, 'one HEALTHCHECK');
  t.notMatch(hc[0], /\b(curl|wget)\b/, 'no curl in the slim image');
  t.match(hc[0], /CMD \["node", "-e", /);
  t.match(hc[0], /\/healthz/);
  const entry = JSON.parse(ops(runtime, 'ENTRYPOINT')[0]!) as string[];
  t.same(entry.slice(0, 2), ['node', '/opt/feedkeeper/dist/src/cli/main.js']);
  t.same(JSON.parse(ops(runtime, 'CMD')[0]!), ['run', '--config', '/opt/feedkeeper/config/default.json']);
});

t.test('npm ci in both stages trusts a CA handed in as a build secret, never baked in', async (t) => {
  const npmRuns = [...ops(build, 'RUN'), ...ops(runtime, 'RUN')].filter((r) => /\bnpm ci\b/.test(r));
  t.equal(npmRuns.length, 2);
  for (const r of npmRuns) {
    t.match(r, /^--mount=type=secret,id=npm_ca\s/, `secret mount: ${r.slice(0, 40)}...`);
    t.match(r, /NODE_EXTRA_CA_CERTS=\/run\/secrets\/npm_ca/, 'npm reads it from the secret mount');
    t.match(r, /if \[ -s \/run\/secrets\/npm_ca \]/, 'and builds without it');
  }
  for (const c of [...ops(build, 'COPY'), ...ops(runtime, 'COPY')]) t.notMatch(c, /\.crt\b|ca-certificates/, `no CA copied: ${c}`);
});

t.test('.ci/run builds and runs the image after npm test; the check covers what the issue asks', async (t) => {
  const ci = read('.ci/run');
  const check = read('deploy/container/ci-image.sh');
  t.ok(ci.indexOf('deploy/container/ci-image.sh ||') > ci.indexOf('npm test 2>&1'), 'after npm test');
  t.match(ci, /ci-image\.sh \|\| image_status=\$\?/, 'its failure is kept');
  t.match(ci, /status=\$image_status/, 'and fails .ci/run');
  for (const [what, re] of [
    ['read-only root', /--read-only\b/],
    ['tmpfs /tmp', /--tmpfs \/tmp/],
    ['a volume on the data directory', /\$volume:\/var\/lib\/feedkeeper/],
    ['the image\'s own non-root USER (no --user override)', /Config\.User/],
    ['/healthz 200', /\/healthz"\)/],
    ['the HEALTHCHECK status', /State\.Health\.Status/],
    ['SIGTERM by docker stop, under 5 s', /stop_ms < 5000/],
    ['exit code 0', /exit_code == 0/],
    ['docker diff', /"\$\{DOCKER\[@\]\}" diff/],
    ['podman keeps HEALTHCHECK (docker format)', /--format docker/],
    ['the base as a build argument', /--build-arg "NODE_IMAGE=\$base"/],
  ] as const) {
    t.match(check, re, what);
  }
  t.notMatch(check, /docker[^\n]* run [^\n]*--user\b/, 'no --user: the image decides');
});

t.test('every COPY source exists and is not excluded by .dockerignore', async (t) => {
  const ignored = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const name of ['node_modules', 'dist', '.git', 'test', 'secrets', '**/api_key']) {
    t.ok(ignored.some((p) => p === name || p === `**/${name}`), `.dockerignore excludes ${name}`);
  }
  for (const c of [...ops(build, 'COPY'), ...ops(runtime, 'COPY')].filter((c) => !c.startsWith('--from'))) {
    const sources = c.split(/\s+/).slice(0, -1);
    for (const src of sources) {
      t.ok(existsSync(`${root}${src}`), `${src} exists`);
      t.notOk(ignored.includes(src), `${src} is sent to the build`);
    }
  }
});

t.test('the HEALTHCHECK command passes against a healthy server and fails without one', async (t) => {
  const hc = ops(runtime, 'HEALTHCHECK')[0]!;
  const argv = JSON.parse(hc.slice(hc.indexOf('CMD ') + 4)) as string[];
  t.equal(argv[0], 'node');
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics: createMetrics({ defaultMetrics: false }),
    health: { readiness: () => ({ ready: true, reasons: [], connections: { planned: 1, open: 1 } }) },
    logger: silentLogger(),
  });
  const check = async (port: number): Promise<number | null> => {
    // Not spawnSync: it would block the event loop the server answers on.
    return new Promise((resolve) => {
      const child = spawn(process.execPath, argv.slice(1), { env: { ...process.env, FEEDKEEPER_METRICS_PORT: String(port) }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
    });
  };
  t.equal(await check(server.port), 0, 'healthy: exit 0');
  await server.close();
  t.equal(await check(server.port), 1, 'nothing listening: exit 1');
});

t.test('docker-compose.yml: read-only, tmpfs, volume, secrets, init, prometheus with the rules', async (t) => {
  const service = compose.slice(compose.indexOf('  feedkeeper:'), compose.indexOf('  prometheus:'));
  t.match(service, /^\s+read_only: true/m);
  t.match(service, /^\s+init: true/m);
  t.match(service, /^\s+- \/tmp:/m, 'tmpfs /tmp');
  t.match(service, /feedkeeper-data:\/var\/lib\/feedkeeper/);
  t.match(service, /^\s+- api_key$/m);
  t.match(service, /^\s+- api_secret$/m);
  t.match(service, /FEEDKEEPER_METRICS_HOST: 0\.0\.0\.0/);
  t.match(service, /"127\.0\.0\.1:9464:9464"/, 'metrics published on loopback only');
  t.match(compose, /\.\/deploy\/prometheus\/alerts\.yml:\/etc\/prometheus\/alerts\.yml/);
  t.match(read('deploy/prometheus/prometheus.yml'), /rule_files:\s*\n\s*- alerts\.yml/);
  t.match(read('deploy/prometheus/prometheus.yml'), /job_name: feedkeeper\b/);
});
