// The push job of bench/push_bench.py done with HubSpot's own Node client
// (@hubspot/api-client): batch create of N contacts, 100 per request, all
// requests handed to the client at once so that its built-in limiter and
// 429 retry (numberOfApiCallRetries) decide the pace.  Prints the seconds.
// Usage: node peer_node.js BASE_URL N
'use strict';

const hubspot = require('@hubspot/api-client');

async function main() {
  const base = process.argv[2];
  const n = parseInt(process.argv[3], 10);
  const client = new hubspot.Client({ accessToken: 'test-token', basePath: base,
                                      numberOfApiCallRetries: 6 });
  const batches = [];
  for (let i = 0; i < n; i += 100) {
    const inputs = [];
    for (let k = i; k < Math.min(n, i + 100); k++)
      inputs.push({ properties: { email: 'node' + k + '@example.com', firstname: 'N' + k } });
    batches.push(inputs);
  }
  const t0 = Date.now();
  await Promise.all(batches.map((inputs) => client.crm.contacts.batchApi.create({ inputs })));
  console.log(((Date.now() - t0) / 1000).toFixed(3));
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
