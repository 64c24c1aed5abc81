// provider.mjs MODULES_DIR PORT_FILE: an OpenID Provider for spec/oidc_spec.lua.
//
// The provider is oidc-provider (npm, OpenID Certified, pinned by
// spec/oidc/package-lock.json, installed by spec/support/oidc.sh into
// MODULES_DIR); nothing here implements OAuth or JOSE. This file only
// configures it: a free loopback port (written to PORT_FILE once it listens),
// its keys (RSA, EC P-256/384/521 and Ed25519, made here with node:crypto),
// and its clients:
//   svc-RS256 ... svc-EdDSA  client_credentials; the access token (JWT, RFC 9068,
//                            header typ at+jwt) is signed with that algorithm
//   svc-short                the same in RS256, valid for 2 seconds
//   API                      the web application (authorization code flow through
//                            the provider's own development sign-in pages); its
//                            client_id is the API's audience, as when one
//                            registration serves both: its ID tokens carry the
//                            API's aud, so only their type tells them apart
// Resources (resource indicators, RFC 8707): API (the default) and OTHER, each
// the audience of the tokens issued for it. Every client authenticates with
// client_secret_post, its secret "secret".
//
// Test controls of this harness (not the provider's), under /_test/:
//   POST /_test/rotate   new keys (new kids) first in the set, the old ones kept;
//                        a new provider instance signs with them from now on
//   POST /_test/mint     {"claims": {...}, "kid": ...}: a token named Ed25519
//                        (header typ at+jwt), which this provider version cannot
//                        issue, signed (by jose) with the current Ed25519 key;
//                        its kid is the harness's JWK below unless one is given
//   GET  /_test/count    {"jwks": N}: requests to the provider's jwks_uri so far
// The provider publishes its Ed25519 key with "alg": "EdDSA", and so binds it
// to that name (RFC 7517 4.4): a token named Ed25519 does not verify with it.
// A newer provider publishes its key under the new name; so the answer of its
// jwks_uri gets one more JWK from this harness: the same Ed25519 public key,
// kid "<its kid>-fs", "alg": "Ed25519". Everything else in it is the provider's.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, portFile] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { default: Provider, errors } = await load('oidc-provider/lib/index.js');
const { SignJWT, importJWK } = await load('jose/dist/node/esm/index.js');

const API = 'https://api.example.com';
const OTHER = 'https://other.example.com';
const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

let generation = 0;
let keys = [];

// One new key of each type, kids naming type and generation.
function newKeys() {
  generation += 1;
  const made = [
    ['rsa', generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['p256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['p384', generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['p521', generateKeyPairSync('ec', { namedCurve: 'P-521' })],
    ['ed25519', generateKeyPairSync('ed25519')],
  ];
  return made.map(([name, pair]) => ({ ...pair.privateKey.export({ format: 'jwk' }), kid: `${name}-${generation}` }));
}

function newProvider(issuer) {
  const service = (id) => ({ client_id: id, client_secret: 'secret', token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
  const clients = [...ALGS.map((alg) => service(`svc-${alg}`)), service('svc-short')];
  clients.push({ client_id: API, client_secret: 'secret', token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1/callback'] });
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    cookies: { keys: ['tfauth-oidc-spec-cookie-key'] },
    pkce: { required: () => false },
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf || (client.clientId.startsWith('svc-') ? API : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          if (resource !== API && resource !== OTHER) throw new errors.InvalidTarget();
          const alg = client.clientId.startsWith('svc-') && ALGS.includes(client.clientId.slice(4))
            ? client.clientId.slice(4) : 'RS256';
          return {
            scope: 'read', audience: resource, accessTokenFormat: 'jwt',
            accessTokenTTL: client.clientId === 'svc-short' ? 2 : 300, jwt: { sign: { alg } },
          };
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

// The current Ed25519 key's public JWK under its fully-specified name.
function fullySpecifiedJwk() {
  const { d, ...pub } = keys.find((k) => k.crv === 'Ed25519');
  return { ...pub, kid: `${pub.kid}-fs`, alg: 'Ed25519', use: 'sig' };
}

// Adds fullySpecifiedJwk() to the provider's JWKS answer on res (its
// Content-Length set again for the longer body).
function withFullySpecifiedKey(res) {
  const { end, setHeader } = res;
  res.setHeader = (name, value) => (name.toLowerCase() === 'content-length' ? res : setHeader.call(res, name, value));
  res.end = (body, ...rest) => {
    let out = body;
    if (res.statusCode === 200 && body) {
      const set = JSON.parse(body.toString());
      set.keys.push(fullySpecifiedJwk());
      out = JSON.stringify(set);
    }
    if (out) setHeader.call(res, 'content-length', Buffer.byteLength(out));
    return end.call(res, out, ...rest);
  };
}

let handler;
let jwksRequests = 0;
let jwksPath;

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJSON(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

async function control(req, res, issuer) {
  if (req.method === 'POST' && req.url === '/_test/rotate') {
    keys = [...newKeys(), ...keys];
    const provider = newProvider(issuer);
    handler = provider.callback();
    return answer(res, 200, { kids: keys.slice(0, 5).map((k) => k.kid) });
  }
  if (req.method === 'POST' && req.url === '/_test/mint') {
    const { claims, kid } = await readJSON(req);
    const jwk = keys.find((k) => k.crv === 'Ed25519');
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'Ed25519', typ: 'at+jwt', kid: kid || `${jwk.kid}-fs` })
      .sign(await importJWK(jwk, 'Ed25519'));
    return answer(res, 200, { token });
  }
  if (req.method === 'GET' && req.url === '/_test/count') return answer(res, 200, { jwks: jwksRequests });
  return answer(res, 404, { error: 'no such test control' });
}

const server = createServer((req, res) => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  if (req.url.startsWith('/_test/')) {
    control(req, res, issuer).catch((err) => answer(res, 500, { error: String(err) }));
    return;
  }
  if (req.url.split('?')[0] === jwksPath) {
    jwksRequests += 1;
    withFullySpecifiedKey(res);
  }
  handler(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  keys = newKeys();
  const provider = newProvider(issuer);
  jwksPath = new URL(provider.urlFor('jwks')).pathname;
  handler = provider.callback();
  console.log(`oidc-provider on node ${process.version}: ${issuer}`);
  writeFileSync(`${portFile}.tmp`, `${server.address().port}\n`);
  renameSync(`${portFile}.tmp`, portFile);
});
