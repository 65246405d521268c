// Makes the test keystores in this folder with implementations independent
// of homestaker's: @chainsafe/bls-keystore (EIP-2335) and @noble/curves
// (BLS12-381 public keys). Run from an empty folder with both installed:
//   npm install @chainsafe/bls-keystore@3.1.0 @noble/curves@2.4.0
//   node make.mjs OUTDIR
// The KDF costs are tiny so the tests run fast; deposit tools use 2^18.
import { create } from "@chainsafe/bls-keystore";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { writeFileSync, mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";

const out = process.argv[2];
const password = "correct horse ⚡ battery";
const hoodiFork = "10000910";
const hoodiRoot = "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f";
const hex = (b) => Buffer.from(b).toString("hex");

mkdirSync(out + "/validator_keys", { recursive: true });
const deposits = [];
const keys = [];
for (let i = 0; i < 3; i++) {
  let secret;
  do { secret = randomBytes(32); } while (BigInt("0x" + hex(secret)) >= bls12_381.fields.Fr.ORDER || BigInt("0x" + hex(secret)) === 0n);
  const pub = bls12_381.longSignatures.getPublicKey(secret).toBytes(true);
  const kdf = i === 0
    ? { function: "scrypt", params: { dklen: 32, n: 16, r: 8, p: 1, salt: hex(randomBytes(32)) } }
    : { function: "pbkdf2", params: { dklen: 32, c: 16, prf: "hmac-sha256", salt: hex(randomBytes(32)) } };
  const ks = await create(password, secret, pub, `m/12381/3600/${i}/0/0`, "", kdf);
  const ts = 1764547200 + i;
  writeFileSync(`${out}/validator_keys/keystore-m_12381_3600_${i}_0_0-${ts}.json`, JSON.stringify(ks));
  keys.push(hex(pub));
  deposits.push({
    pubkey: hex(pub),
    withdrawal_credentials: i === 2 ? "00" + hex(randomBytes(31)) : "01" + "00".repeat(11) + "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    amount: 32000000000,
    fork_version: hoodiFork,
    network_name: "hoodi",
  });
}
writeFileSync(`${out}/validator_keys/deposit_data-1764547200.json`, JSON.stringify(deposits));
writeFileSync(`${out}/password.txt`, password + "\n");
writeFileSync(`${out}/slashing-protection.json`, JSON.stringify({
  metadata: { interchange_format_version: "5", genesis_validators_root: hoodiRoot },
  data: keys.map((k, i) => ({
    pubkey: "0x" + k,
    signed_blocks: [{ slot: String(100 + i) }],
    signed_attestations: [{ source_epoch: "1", target_epoch: String(2 + i) }],
  })),
}, null, 2));
