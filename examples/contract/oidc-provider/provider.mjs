// A real OpenID Provider for the contract tests: panva's certified oidc-provider on a
// loopback port, plus a test-control endpoint that spoils the next ID token on purpose.
// Started by ../src/oidc_provider.rs; run by hand with `PORT=0 CLIENTS='[...]' node provider.mjs`.
//
// Environment:
//   PORT         the port to listen on, 0 (the default) for a free one
//   CLIENTS      JSON array of client metadata (client_id, client_secret, redirect_uris, ...)
//   ISSUER_HOST  the host in the issuer URL, default 127.0.0.1 (the server listens on 127.0.0.1)
//   EXIT_ON_STDIN_CLOSE=1  exit when stdin closes, so a test process that dies without its
//                drop handlers (SIGKILL) leaves no provider behind
//
// Once serving, prints exactly one line to stdout: `listening <issuer>`.

import * as http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 0);
const issuerHost = process.env.ISSUER_HOST || '127.0.0.1';
const clients = JSON.parse(process.env.CLIENTS ?? '[]').map((client) => ({
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  ...client,
}));

// Keys made at every start, so that this script holds the private halves and can re-sign
// the provider's tokens with the real key and kid (the `other-audience`, `expired` and
// `future-iat` modes must fail on their claims, never on the signature).
async function signingKey(alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  return { jwk, privateKey };
}
const keys = [await signingKey('RS256'), await signingKey('ES256')];

// Accounts are made up from the login typed in the dev login form. The subject is derived
// from the login, never equal to it, so a relying party that mistakes `sub` for the email
// address is caught; `unverified+<email>` is an account whose email is not verified.
const subjectOf = (login) => `user-${login.trim().toLowerCase()}`;
const logins = new Map(); // subject -> the login as last typed

function accountFor(sub) {
  const login = logins.get(sub) ?? sub.slice('user-'.length);
  const unverified = login.toLowerCase().startsWith('unverified+');
  const address = unverified ? login.slice('unverified+'.length) : login;
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        ...(address.includes('@') ? { email: address, email_verified: !unverified } : {}),
        name: address.split('@')[0],
      };
    },
  };
}

// The issuer names the port, which is known only once listening: listen first, then build
// the provider; requests that arrive in between are refused.
let handle = (req, res) => {
  res.writeHead(503).end();
};
const server = http.createServer((req, res) => handle(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://${issuerHost}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: keys.map(({ jwk }) => jwk) },
  findAccount: (ctx, sub) => accountFor(sub),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  scopes: ['openid', 'email', 'profile'],
  // With an access token issued, the provider otherwise leaves the scope's claims to the
  // userinfo endpoint; the relying party under test reads them from the ID token.
  conformIdTokenClaims: false,
  // PKCE (S256, the only method) for every client, confidential ones included.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // HS256 advertised too, as Keycloak does: a relying party that takes the provider's
  // list at its word then accepts an ID token keyed with the client secret (see the
  // `client-secret-hs256` mode). The clients' own tokens stay RS256.
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'HS256'] },
  // Cookie signing keys: fixed, since they protect nothing but a test's session.
  cookies: { keys: ['oidc-provider test fixture cookie key'] },
});
// The provider checks static clients' metadata at their first use: check it now, so that a
// bad registration fails the start, with the reason, instead of a later sign-in.
for (const { client_id: id } of clients) await provider.Client.find(id);
// Plain HTTP on loopback, no proxy in front: the request's own protocol and host are the
// truth (so cookies are not marked Secure), never X-Forwarded-* headers.
provider.proxy = false;

// The devInteractions login form finishes the login with the login typed as the account
// id, and the provider makes the account id the ID token's `sub`: map it to the subject.
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = (req, res, result, options) => {
  if (typeof result?.login?.accountId === 'string') {
    const login = result.login.accountId.trim();
    logins.set(subjectOf(login), login);
    result = { ...result, login: { ...result.login, accountId: subjectOf(login) } };
  }
  return interactionFinished(req, res, result, options);
};

// The test-control endpoint and the token answers it spoils.
const MODES = ['other-audience', 'expired', 'tampered', 'previous', 'unknown-key', 'future-iat', 'client-secret-hs256'];
let nextMode; // one-shot: the next token answer only
let previousIdToken; // the last ID token issued, unaltered

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__test/')) return next();
  if (ctx.path === '/__test/reset' && ['GET', 'POST'].includes(ctx.method)) {
    nextMode = undefined;
    ctx.status = 204;
    return undefined;
  }
  if (ctx.path === '/__test/next-id-token' && ctx.method === 'POST') {
    let mode;
    try {
      ({ mode } = await readJson(ctx.req));
    } catch {
      ctx.status = 400;
      ctx.body = 'the body must be JSON: {"mode": "..."}\n';
      return undefined;
    }
    if (!MODES.includes(mode)) {
      ctx.status = 400;
      ctx.body = `unknown mode ${JSON.stringify(mode)}; the modes are ${MODES.join(', ')}\n`;
      return undefined;
    }
    if (mode === 'previous' && !previousIdToken) {
      ctx.status = 409;
      ctx.body = 'mode previous: no ID token has been issued yet\n';
      return undefined;
    }
    nextMode = mode;
    ctx.status = 204;
    return undefined;
  }
  ctx.status = 404;
  return undefined;
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || typeof ctx.body?.id_token !== 'string') return;
  const issued = ctx.body.id_token;
  const mode = nextMode;
  nextMode = undefined;
  if (mode) {
    ctx.body = { ...ctx.body, id_token: await spoil(issued, mode) };
  }
  previousIdToken = issued;
});

const now = () => Math.floor(Date.now() / 1000);

async function sign(header, payload, key) {
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header)
    .sign(key);
}

async function spoil(token, mode) {
  const header = jose.decodeProtectedHeader(token);
  const claims = jose.decodeJwt(token);
  const realKey = keys.find(({ jwk }) => jwk.kid === header.kid).privateKey;
  switch (mode) {
    case 'other-audience': {
      // Meant for another client: `azp` would name ours, so it goes too.
      const { azp, ...rest } = claims;
      return sign(header, { ...rest, aud: 'someone-else' }, realKey);
    }
    case 'expired':
      return sign(header, { ...claims, iat: now() - 7200, exp: now() - 3600 }, realKey);
    case 'future-iat': {
      // The same lifetime, shifted an hour ahead: only `iat` (and `exp` with it) is wrong.
      const iat = now() + 3600;
      return sign(header, { ...claims, iat, exp: iat + (claims.exp - claims.iat) }, realKey);
    }
    case 'tampered': {
      // Another subject in the payload, the original signature kept.
      const [head, , signature] = token.split('.');
      const payload = jose.base64url.encode(JSON.stringify({ ...claims, sub: 'user-mallory@example.com' }));
      return `${head}.${payload}.${signature}`;
    }
    case 'previous':
      return previousIdToken;
    case 'unknown-key': {
      const { privateKey } = await jose.generateKeyPair(header.alg);
      return sign({ ...header, kid: `unknown-${crypto.randomUUID()}` }, claims, privateKey);
    }
    case 'client-secret-hs256': {
      // The same claims keyed with the client's own secret (HS256, no kid): anyone who
      // knows the secret (every instance of the client, a leaked config) could mint it.
      const { client_secret: secret } = clients.find(({ client_id: id }) => id === claims.aud);
      return sign({ alg: 'HS256' }, claims, new TextEncoder().encode(secret));
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

handle = provider.callback();

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
if (process.env.EXIT_ON_STDIN_CLOSE === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

process.stdout.write(`listening ${issuer}\n`);
