// Validates every document of the YAML files given against the CloudNativePG API types
// (types, required fields, enums; like the API server, unknown fields are not refused).
// Usage: node validate.mjs FILE...   Exits 1 naming each invalid document.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Cluster } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster";
import { ScheduledBackup } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/ScheduledBackup";

const KINDS = { Cluster, ScheduledBackup };
let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const object = doc.toJS();
    if (!object) continue;
    const where = `${file}: ${object.kind} ${object.metadata?.name}`;
    const Model = KINDS[object.kind];
    if (object.apiVersion !== "postgresql.cnpg.io/v1" || !Model) {
      console.log(`${where}: not a postgresql.cnpg.io/v1 ${Object.keys(KINDS).join(" or ")}`);
      failed = 1;
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      console.log(`${where}: ${error.message}`);
      failed = 1;
    }
  }
}
process.exit(failed);
