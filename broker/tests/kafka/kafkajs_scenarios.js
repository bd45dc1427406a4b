// KafkaJS against Weir's Kafka listener: a producer and a 2-member consumer group.
// Run by broker/tests/kafka_clients.rs as `node kafkajs_scenarios.js BOOTSTRAP`; prints "ok".
const { Kafka, logLevel } = require('kafkajs');

const boot = process.argv[2];
const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [boot], logLevel: logLevel.WARN });
const topic = 'kjs-' + Math.random().toString(16).slice(2, 10);
const groupId = 'kjs-g-' + Math.random().toString(16).slice(2, 8);
const N = 100;

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < N; i += 10) {
    const messages = [];
    for (let j = i; j < i + 10; j++) messages.push({ key: 'k' + (j % 4), value: 'v' + j });
    await producer.send({ topic, messages });
  }
  await producer.disconnect();

  const seen = new Set();
  const consumers = [0, 1].map(() => kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 }));
  for (const c of consumers) {
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ eachMessage: async ({ partition, message }) => { seen.add(partition + ':' + message.offset); } });
  }
  const deadline = Date.now() + 60000;
  while (seen.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const c of consumers) await c.disconnect();
  if (seen.size !== N) throw new Error(`group read ${seen.size} of ${N}`);

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const total = offsets[0].partitions.reduce((s, p) => s + Number(p.offset), 0);
  await admin.disconnect();
  if (total !== N) throw new Error(`committed ${total}, expected ${N}`);
  console.log('ok');
}

main().catch((e) => { console.error(e); process.exit(1); });
