// Drives HubSpot's own Node client (@hubspot/api-client) against the fake
// HubSpot server and checks that batch create/read/update/upsert, search with
// paging, archive, associations, webhook signatures, 404 bodies, association
// and list paging cursors and 409 conflicts work unchanged.  The client (up
// to 14.0.1 at least) calls only the numbered paths (/crm/v3, /crm/v4,
// /crm/associations/v4, /oauth/v1), so the fake serves the legacy family alone.
// Usage: node node_client_check.js http://127.0.0.1:PORT
'use strict';

const assert = require('assert');
const http = require('http');
const hubspot = require('@hubspot/api-client');

const base = process.argv[2];
const client = new hubspot.Client({ accessToken: 'test-token', basePath: base,
                                    numberOfApiCallRetries: 0 });
let checks = 0;

// ok -- count and report one passed check
function ok(name) {
  checks += 1;
  console.log('ok ' + checks + ' - ' + name);
}

// control -- call the fake's /_fake/ control API
async function control(method, path, body) {
  const res = await fetch(base + '/_fake/' + path, {
    method, headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  assert.ok(res.ok, 'control ' + path + ' -> ' + res.status);
  return res.json();
}

// contactsFlow -- batch create/read/update/upsert, search paging, archive
async function contactsFlow() {
  const inputs = [];
  for (let i = 0; i < 25; i += 1) {
    inputs.push({ properties: { email: `node${i}@example.com`, firstname: `N${i}` },
                  associations: [] });
  }
  const created = await client.crm.contacts.batchApi.create({ inputs });
  assert.strictEqual(created.status, 'COMPLETE');
  assert.strictEqual(created.results.length, 25);
  assert.ok(created.results[0].createdAt instanceof Date);
  ok('contacts batch create');

  const ids = created.results.map((r) => r.id);
  const read = await client.crm.contacts.batchApi.read({
    inputs: ids.slice(0, 5).map((id) => ({ id })), properties: ['email', 'firstname'],
    propertiesWithHistory: [] });
  assert.strictEqual(read.results.length, 5);
  assert.match(read.results[0].properties.email, /^node\d+@example\.com$/);
  ok('contacts batch read');

  const updated = await client.crm.contacts.batchApi.update({
    inputs: ids.slice(0, 3).map((id) => ({ id, properties: { jobtitle: 'Engineer' } })) });
  assert.strictEqual(updated.results.length, 3);
  assert.strictEqual(updated.results[0].properties.jobtitle, 'Engineer');
  ok('contacts batch update');

  const upserted = await client.crm.contacts.batchApi.upsert({ inputs: [
    { id: 'node0@example.com', idProperty: 'email', properties: { lastname: 'Zero' } },
    { id: 'fresh@example.com', idProperty: 'email', properties: { lastname: 'New' } }] });
  const flags = upserted.results.map((r) => r._new).sort();
  assert.deepStrictEqual(flags, [false, true]);
  ok('contacts batch upsert (new flag)');

  const seen = new Set();
  let after;
  let pages = 0;
  do {
    const page = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: 'email', operator: 'CONTAINS_TOKEN',
                                   value: '*@example.com' }] }],
      sorts: ['createdate'], properties: ['email'], limit: 10, after });
    assert.strictEqual(page.total, 26);
    page.results.forEach((r) => seen.add(r.id));
    after = page.paging && page.paging.next ? page.paging.next.after : undefined;
    pages += 1;
    await new Promise((r) => setTimeout(r, 250));   // stay under 5 searches/s
  } while (after);
  assert.strictEqual(seen.size, 26);
  assert.strictEqual(pages, 3);
  ok('contacts search with paging');

  await client.crm.contacts.basicApi.archive(ids[0]);
  await client.crm.contacts.batchApi.archive({ inputs: ids.slice(1, 4).map((id) => ({ id })) });
  const left = await client.crm.contacts.basicApi.getPage(100);
  assert.strictEqual(left.results.length, 22);
  ok('contacts archive (single and batch)');

  const page = await client.crm.contacts.basicApi.getPage(10, undefined, ['email']);
  assert.strictEqual(page.results.length, 10);
  assert.ok(page.paging.next.after);
  ok('contacts list paging');
}

// dealsAndAssociations -- generic objects API, v4 associations, labels
async function dealsAndAssociations() {
  const deals = await client.crm.objects.batchApi.create('deals', { inputs: [
    { properties: { dealname: 'Big', amount: '1500.00', dealstage: 'closedwon',
                    pipeline: 'default' }, associations: [] }] });
  const dealId = deals.results[0].id;
  assert.strictEqual(deals.results[0].properties.amount, '1500.00');
  const contact = await client.crm.contacts.basicApi.create({
    properties: { email: 'assoc@example.com' }, associations: [] });
  const labels = await client.crm.associations.v4.schema.definitionsApi.getAll('deals',
                                                                              'contacts');
  assert.ok(labels.results.some((l) => l.typeId === 3));
  await client.crm.associations.v4.batchApi.create('deals', 'contacts', { inputs: [
    { _from: { id: dealId }, to: { id: contact.id },
      types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 3 }] }] });
  const read = await client.crm.associations.v4.batchApi.getPage('deals', 'contacts', {
    inputs: [{ id: dealId }] });
  assert.strictEqual(String(read.results[0].to[0].toObjectId), contact.id);
  ok('v4 associations create/read and labels');

  const fetched = await client.crm.deals.basicApi.getById(dealId, ['amount'], ['amount']);
  assert.strictEqual(fetched.propertiesWithHistory.amount[0].value, '1500.00');
  ok('deal get with propertiesWithHistory');
}

// webhookSignatures -- the SDK's own validator accepts the fake's deliveries
async function webhookSignatures() {
  const got = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const url = `http://127.0.0.1:${server.address().port}${req.url}`;
      const v3 = hubspot.Signature.isValid({
        signatureVersion: 'v3', signature: req.headers['x-hubspot-signature-v3'],
        method: 'POST', clientSecret: 'hubsync-test-secret', requestBody: body, url,
        timestamp: Number(req.headers['x-hubspot-request-timestamp']) });
      const v1 = hubspot.Signature.isValid({
        signatureVersion: 'v1', signature: req.headers['x-hubspot-signature'],
        clientSecret: 'hubsync-test-secret', requestBody: body });
      got.push({ v1, v3 });
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  await control('POST', 'config', {
    webhookUrl: `http://127.0.0.1:${server.address().port}/hubspot/webhooks` });
  await client.crm.contacts.basicApi.create({ properties: { email: 'hook@example.com' },
                                               associations: [] });
  const flushed = await control('POST', 'webhooks/flush', { timeoutMs: 10000 });
  assert.ok(flushed.done);
  server.close();
  assert.ok(got.length >= 1);
  assert.ok(got.every((g) => g.v1 && g.v3), JSON.stringify(got));
  ok('webhook v1 and v3 signatures accepted by Signature.isValid');
}

// changedEndpoints -- the answers issue 19 changed: 404 bodies, per-input
// paging of v4 association batch reads, opaque list cursors, 409 shapes
async function changedEndpoints() {
  await assert.rejects(client.crm.contacts.basicApi.getById('999'),
                       (e) => e.code === 404 && e.body && e.body.category === 'OBJECT_NOT_FOUND');
  ok('404 carries a JSON error body the client parses');

  await control('POST', 'config', { assocBatchReadPageSize: 2 });
  const co = await client.crm.companies.basicApi.create({ properties: { name: 'Paged' },
                                                         associations: [] });
  const made = await client.crm.contacts.batchApi.create({ inputs: [1, 2, 3].map((n) => (
    { properties: { email: `pg${n}@example.com` }, associations: [] })) });
  await control('POST', 'ui/associations', { fromObjectType: 'companies', fromObjectId: co.id,
    toObjectType: 'contacts', toObjectIds: made.results.map((r) => r.id) });
  let page = await client.crm.associations.v4.batchApi.getPage('companies', 'contacts', {
    inputs: [{ id: co.id }] });
  assert.strictEqual(page.results[0].to.length, 2);
  const after = page.results[0].paging.next.after;
  page = await client.crm.associations.v4.batchApi.getPage('companies', 'contacts', {
    inputs: [{ id: co.id, after }] });
  assert.strictEqual(page.results[0].to.length, 1);
  assert.ok(!page.results[0].paging);
  ok('v4 association batch read pages per input (after alongside id)');

  await control('POST', 'config', { listCursor: 'opaque' });
  const first = await client.crm.contacts.basicApi.getPage(1);
  assert.ok(!/^[0-9]+$/.test(first.paging.next.after));
  const second = await client.crm.contacts.basicApi.getPage(1, first.paging.next.after);
  assert.notStrictEqual(second.results[0].id, first.results[0].id);
  ok('list paging with opaque cursors');

  await control('POST', 'config', { uniqueConflictMessage: 'noId' });
  await assert.rejects(client.crm.contacts.basicApi.create({
    properties: { email: 'pg1@example.com' }, associations: [] }),
  (e) => e.code === 409 && e.body && e.body.category === 'CONFLICT');
  ok('409 unique-value conflict without an id');
}

// main -- run every flow; exit 1 on the first failure
async function main() {
  await control('POST', 'reset');
  // the client calls HubSpot's numbered (legacy) paths only: the fake
  // serves that family alone, so a dated path would answer 404
  await control('POST', 'config', { searchIndexLagMs: 0, apiFamilies: ['legacy'] });
  await contactsFlow();
  await dealsAndAssociations();
  await webhookSignatures();
  await changedEndpoints();
  const log = await control('GET', 'requests');
  const families = [...new Set(log.requests.map((r) => r.apiVersion))];
  assert.deepStrictEqual(families, ['legacy']);
  ok('every request on the legacy (numbered) paths');
  console.log(`${checks} passed, 0 failed`);
}

main().catch((err) => {
  console.error('not ok - ' + (err && err.stack ? err.stack : err));
  if (err && err.body) console.error(JSON.stringify(err.body));
  console.log(`${checks} passed, 1 failed`);
  process.exit(1);
});
