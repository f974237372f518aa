// Drives @medplum/core's CDS Hooks client helpers (getCdsServices, buildCdsRequest, callCdsService) against
// the running service, as a Medplum-based EHR would: every example patient of the manifest once with
// prefetch only (buildCdsRequest fills the discovery's templates from the FHIR server through
// MedplumClient.search/readResource, no fhirServer) and once with a fhirServer and no prefetch.
// Usage: node driver.mjs SERVICES_URL FHIR_BASE MANIFEST OUT.json   (run by tests/clients/test_medplum.py)
import { readFileSync, writeFileSync } from 'node:fs';
import { MedplumClient, buildCdsRequest, OperationOutcomeError } from '@medplum/core';

const [cdsServicesUrl, fhirBase, manifestPath, outPath] = process.argv.slice(2);
const fhir = new URL(fhirBase);
const medplum = new MedplumClient({
  baseUrl: `${fhir.origin}/`,
  fhirUrlPath: fhir.pathname.replace(/^\/+|\/+$/g, ''),
  cdsServicesUrl,
  cacheTime: 0,
});
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const user = { resourceType: 'Practitioner', id: 'example' };

async function call(serviceId, body) {
  try {
    const response = await medplum.callCdsService(serviceId, body, { cache: 'no-cache' });
    return { status: 200, cards: response.cards };
  } catch (err) {
    const outcome = err instanceof OperationOutcomeError ? err.outcome : undefined;
    return { status: outcome ? 'OperationOutcome' : 'error', error: String(err?.message ?? err), outcome };
  }
}

const discovery = await medplum.getCdsServices();
const service = discovery.services.find((s) => s.hook === 'patient-view');
const result = { node: process.version, services: discovery.services.map((s) => s.id), discovery, examples: [] };

for (const example of manifest.examples) {
  const context = { userId: `Practitioner/${user.id}`, patientId: example.patient_id };
  const prefetchOnly = await buildCdsRequest(medplum, user, service, context);
  const withServer = { ...(await buildCdsRequest(medplum, user, { ...service, prefetch: undefined }, context)), fhirServer: fhirBase };
  delete withServer.prefetch;
  result.examples.push({
    patient_id: example.patient_id,
    hookInstance: prefetchOnly.hookInstance,
    prefetchKeys: Object.keys(prefetchOnly.prefetch ?? {}).sort(),
    prefetchOnly: await call(service.id, prefetchOnly),
    fhirServer: await call(service.id, withServer),
  });
}
writeFileSync(outPath, JSON.stringify(result, null, 1));
console.log(`medplum driver: ${result.examples.length} examples, node ${process.version}`);
