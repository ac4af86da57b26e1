// Baseline for bench/run.sh: the receiver a user would write instead of
// ts-callbackd. fastify over HTTPS, one INSERT per callback (autocommit),
// answer after the commit. WORKERS processes share the port (node:cluster).
// Env: PORT, TLS_CERT, TLS_KEY, PGHOST, PGPORT, PGUSER, PGDATABASE, WORKERS.
'use strict';
const cluster = require('node:cluster');
const fs = require('node:fs');

const workers = Number(process.env.WORKERS || 1);
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const { Pool } = require('pg');
  const pool = new Pool({ max: 16 });
  const fastify = require('fastify')({
    logger: false,
    bodyLimit: 65536,
    https: { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) },
  });
  fastify.post('/callbacks/:service', async (request, reply) => {
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return reply.code(400).send({ error: 'not an object' });
    }
    delete body.username;
    delete body.password;
    await pool.query('INSERT INTO node_inbox (service, request_id, body) VALUES ($1, $2, $3)',
                     [request.params.service, body.requestId || null, body]);
    return { status: 'stored' };
  });
  fastify.listen({ host: '127.0.0.1', port: Number(process.env.PORT) }).then(() => {
    console.log('node receiver listening');
  });
}
