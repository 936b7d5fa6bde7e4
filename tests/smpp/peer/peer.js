// The TimeToChat SMPP connector as the tests meet it, on an SMPP 3.4 implementation we did not
// write (the npm package `smpp`). It enforces what the provider's document says:
//   * bind_transceiver only, with the account's system_id/password (ESME_RBINDFAIL otherwise);
//   * 20 requests per second per account (ESME_RTHROTTLED beyond, on any session);
//   * submit_sm: destination and content required (ESME_RQUERYFAIL), source an allowed number
//     (ESME_RSUBMITFAIL), answered with a message_id;
//   * the unsupported commands refused with the status the document gives each;
//   * enquire_link sent every `enquireLinkMs`; a link that does not answer is closed.
// A control channel on loopback HTTP drives it: receipts and MOs on demand, dropped links, and
// the ledger of everything received (the tests judge "sent once" by it, not by our database).
// Usage: node peer.js '<json options>'; prints one line `READY <smpp port> <control port>`.
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

const options = Object.assign(
  {
    port: 0,
    controlPort: 0,
    systemId: 'svc',
    password: 'secret',
    allowedSources: ['0931000000'],
    ratePerSecond: 20,
    enquireLinkMs: 60000,
    autoReceipt: null, // e.g. "DELIVRD": a receipt for every accepted submit_sm
    autoReceiptDelayMs: 50,
    referenceTag: 0x1400,
    tlsKey: null,
    tlsCert: null,
  },
  JSON.parse(process.argv[2] || '{}'),
);

smpp.addTLV('external_reference', { id: options.referenceTag, type: smpp.types.tlv.cstring });

const E = smpp.errors;
const REFUSED = {
  bind_transmitter: E.ESME_RBINDFAIL,
  bind_receiver: E.ESME_RBINDFAIL,
  submit_multi: E.ESME_RSUBMITFAIL,
  data_sm: E.ESME_RSUBMITFAIL,
  query_sm: E.ESME_RQUERYFAIL,
  cancel_sm: E.ESME_RCANCELFAIL,
  replace_sm: E.ESME_RREPLACEFAIL,
  deliver_sm: E.ESME_RDELIVERYFAILURE,
};
const STATES = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

const ledger = {
  submits: [], // accepted submit_sm: {message_id, destination, source, reference, text, data_coding, validity, at}
  rejected: [], // submit_sm answered with an error: {status, destination, reference, at}
  refused: [], // unsupported commands received: {command, at}
  requests: [], // arrival time (ms) of every request PDU an ESME sent
  throttled: 0,
  binds: 0,
  bindFailures: 0,
  unbinds: 0,
  enquireLinksAnswered: 0,
  enquireLinksReceived: 0,
  linksClosedForSilence: 0,
  deliverAcks: 0, // receipts and MOs acknowledged by the ESME
};
let nextId = 1;
let down = false;
const bound = new Set();
const recent = [];

function throttled(now) {
  while (recent.length && recent[0] <= now - 1000) recent.shift();
  if (recent.length >= options.ratePerSecond) return true;
  recent.push(now);
  return false;
}

function textOf(pdu) {
  const payload = pdu.message_payload;
  if (payload && (payload.message || payload.length)) return payload.message || String(payload);
  return pdu.short_message && pdu.short_message.message !== undefined ? pdu.short_message.message : '';
}

function pad(n, width) {
  return String(n).padStart(width, '0');
}

function smppDate(ms) {
  const d = new Date(ms);
  return pad(d.getUTCFullYear() % 100, 2) + pad(d.getUTCMonth() + 1, 2) + pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) + pad(d.getUTCMinutes(), 2);
}

function onSession(session) {
  if (down) {
    session.destroy();
    return;
  }
  let isBound = false;
  let awaitingEnquire = false;
  const timer = setInterval(() => {
    if (!isBound) return;
    if (awaitingEnquire) {
      ledger.linksClosedForSilence += 1;
      session.destroy();
      return;
    }
    awaitingEnquire = true;
    session.enquire_link({}, () => { awaitingEnquire = false; ledger.enquireLinksAnswered += 1; });
  }, options.enquireLinkMs);
  const gone = () => { clearInterval(timer); bound.delete(session); forget(session); flush(); };
  session.on('close', gone);
  session.on('error', gone);

  session.on('pdu', (pdu) => {
    if (pdu.isResponse()) return;
    const now = Date.now();
    ledger.requests.push(now);
    if (pdu.command in REFUSED) {
      ledger.refused.push({ command: pdu.command, at: now });
      session.send(pdu.response({ command_status: REFUSED[pdu.command] }));
      return;
    }
    if (throttled(now)) {
      ledger.throttled += 1;
      session.send(pdu.response({ command_status: E.ESME_RTHROTTLED }));
      return;
    }
    switch (pdu.command) {
      case 'bind_transceiver':
        if (isBound) {
          session.send(pdu.response({ command_status: E.ESME_RALYBND }));
        } else if (pdu.system_id === options.systemId && pdu.password === options.password) {
          isBound = true;
          bound.add(session);
          ledger.binds += 1;
          session.send(pdu.response({ system_id: 'TimeToChat' }), () => flush());
        } else {
          ledger.bindFailures += 1;
          session.send(pdu.response({ command_status: E.ESME_RBINDFAIL }));
        }
        return;
      case 'enquire_link':
        ledger.enquireLinksReceived += 1;
        session.send(pdu.response());
        return;
      case 'unbind':
        ledger.unbinds += 1;
        isBound = false;
        session.send(pdu.response(), () => session.close());
        return;
      case 'submit_sm':
        if (!isBound) {
          session.send(pdu.response({ command_status: E.ESME_RINVBNDSTS }));
          return;
        }
        submit(session, pdu, now);
        return;
      default:
        // The document: any other command is ignored and gets no answer.
        ledger.refused.push({ command: pdu.command, at: now });
    }
  });
}

function submit(session, pdu, now) {
  const text = textOf(pdu);
  const reference = pdu.external_reference || null;
  const destination = pdu.destination_addr || '';
  let status = 0;
  if (!destination || !text) status = E.ESME_RQUERYFAIL;
  else if (!options.allowedSources.includes(pdu.source_addr)) status = E.ESME_RSUBMITFAIL;
  if (status) {
    ledger.rejected.push({ status, destination, reference, at: now });
    session.send(pdu.response({ command_status: status }));
    return;
  }
  const messageId = (0x5bb31c2f0000 + nextId++).toString(16);
  ledger.submits.push({
    message_id: messageId,
    destination,
    dest_ton: pdu.dest_addr_ton,
    source: pdu.source_addr,
    reference,
    text,
    data_coding: pdu.data_coding,
    validity: pdu.validity_period || null,
    at: now,
  });
  session.send(pdu.response({ message_id: messageId }));
  if (options.autoReceipt) {
    setTimeout(() => receipt({ message_id: messageId, stat: options.autoReceipt }), options.autoReceiptDelayMs);
  }
}

function anyBound() {
  for (const session of bound) return session;
  return null;
}

// Receipts and MOs wait here until a bound session acknowledges them with deliver_sm_resp
// status 0, as an SMSC keeps them for an ESME that is away: a dropped link loses none.
const outbox = [];

function flush() {
  const session = anyBound();
  if (!session) return;
  for (const item of outbox) {
    if (item.session) continue;
    item.session = session;
    item.attempts += 1;
    session.deliver_sm(item.fields, (resp) => {
      item.session = null;
      if (resp.command_status === 0) {
        outbox.splice(outbox.indexOf(item), 1);
        ledger.deliverAcks += 1;
      } else {
        setTimeout(flush, 500);
      }
    });
  }
}

function deliver(fields) {
  outbox.push({ fields, session: null, attempts: 0 });
  flush();
  return true;
}

function forget(session) {
  for (const item of outbox) if (item.session === session) item.session = null;
}

function receipt({ message_id, stat, err }) {
  const sent = ledger.submits.find((s) => s.message_id === message_id);
  if (!sent) return false;
  const now = Date.now();
  const text = `id:${message_id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} ` +
    `submit date:${smppDate(sent.at)} done date:${smppDate(now)} stat:${stat} err:${err || '000'} text:`;
  const fields = {
    source_addr_ton: sent.dest_ton,
    source_addr: sent.destination,
    destination_addr: sent.source,
    esm_class: 0x04,
    short_message: text,
    receipted_message_id: message_id,
    message_state: STATES[stat],
  };
  if (sent.reference) fields.external_reference = sent.reference;
  return deliver(fields);
}

function mo({ from, to, text }) {
  return deliver({
    source_addr_ton: from.startsWith('+') ? 1 : 2,
    source_addr: from.replace(/^\+/, ''),
    destination_addr: to,
    esm_class: 0x00,
    short_message: text,
  });
}

function drop({ downMs }) {
  if (downMs) {
    down = true;
    setTimeout(() => { down = false; }, downMs);
  }
  for (const session of server.sessions.slice()) session.destroy();
  return true;
}

const tls = options.tlsKey && options.tlsCert
  ? { key: fs.readFileSync(options.tlsKey), cert: fs.readFileSync(options.tlsCert) }
  : {};
const server = smpp.createServer(tls, onSession);

const routes = {
  'GET /ledger': () => ({ ...ledger, bound: bound.size, outbox: outbox.length }),
  'POST /receipt': (body) => ({ sent: receipt(body) }),
  'POST /mo': (body) => ({ sent: mo(body) }),
  'POST /drop': (body) => ({ dropped: drop(body) }),
};

const control = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    const route = routes[`${req.method} ${req.url}`];
    if (!route) { res.writeHead(404); res.end(); return; }
    const answer = route(raw ? JSON.parse(raw) : {});
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  });
});

server.listen(options.port, '127.0.0.1', () => {
  control.listen(options.controlPort, '127.0.0.1', () => {
    process.stdout.write(`READY ${server.address().port} ${control.address().port}\n`);
  });
});
process.on('SIGTERM', () => process.exit(0));
