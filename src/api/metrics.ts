/**
 * Prometheus metrics in the text exposition format: per job, its status, rows and bytes
 * copied, replication lag and changes applied, and whether it has an error; per parked table,
 * its waiting changes; per node, the jobs it runs; the takeovers this node made.
 */
import { FerryError } from '../core/errors.js';
import { JOB_STATUSES } from '../core/lifecycle.js';
import type { FerryService } from '../service/ferry-service.js';
import type { JobView } from '../service/inputs.js';

interface Metric {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Array<{ labels: Record<string, string>; value: number }>;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderMetrics(metrics: Metric[]): string {
  const lines: string[] = [];
  for (const metric of metrics) {
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
    for (const sample of metric.samples) {
      const labels = Object.entries(sample.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      lines.push(`${metric.name}${labels ? `{${labels}}` : ''} ${Number.isFinite(sample.value) ? sample.value : 0}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Every job, every page. */
async function allJobs(service: FerryService): Promise<JobView[]> {
  const jobs: JobView[] = [];
  let pageToken: string | undefined;
  do {
    const page = await service.listJobs({ pageSize: 1000, ...(pageToken ? { pageToken } : {}) });
    jobs.push(...page.items);
    pageToken = page.nextPageToken ?? undefined;
  } while (pageToken !== undefined);
  return jobs;
}

/** Per parked table (job object in state ERROR) of continuous jobs: its waiting changes. */
async function parkedSamples(service: FerryService, jobs: JobView[]): Promise<Metric['samples']> {
  const samples: Metric['samples'] = [];
  for (const job of jobs.filter((j) => j.type === 'continuous' && j.phase !== null)) {
    // A job deleted since the list was read has nothing to report.
    const objects = await service.listJobObjects(job.id).catch((error: unknown) => {
      if (error instanceof FerryError && error.code === 'NOT_FOUND') return [];
      throw error;
    });
    for (const object of objects) {
      if (object.state === 'ERROR') samples.push({ labels: { job: job.id, table: object.name }, value: object.parkedChanges });
    }
  }
  return samples;
}

export async function collectMetrics(service: FerryService): Promise<string> {
  const [jobs, nodes] = await Promise.all([allJobs(service), service.listNodes()]);
  const parked = await parkedSamples(service, jobs);
  const perJob = (name: string, help: string, type: Metric['type'], value: (job: JobView) => number | null): Metric => ({
    name, help, type,
    samples: jobs.flatMap((job) => {
      const v = value(job);
      return v === null ? [] : [{ labels: { job: job.id }, value: v }];
    }),
  });
  return renderMetrics([
    {
      name: 'ferry_job_status', help: ' 1 for the status the job is in.', type: 'gauge',
      samples: jobs.flatMap((job) => JOB_STATUSES.map((status) => ({ labels: { job: job.id, status }, value: job.status === status ? 1 : 0 }))),
    },
    perJob('ferry_job_rows_copied_total', 'Rows copied by the full dump.', 'counter', (j) => j.progress.rowsCopied),
    perJob('ferry_job_bytes_copied_total', 'Bytes of COPY text copied by the full dump.', 'counter', (j) => j.progress.bytesCopied),
    perJob('ferry_job_tables_completed', 'Tables whose copy is complete.', 'gauge', (j) => j.progress.tablesCompleted),
    perJob('ferry_job_error', '1 when the job shows an error.', 'gauge', (j) => (j.error === null ? 0 : 1)),
    perJob('ferry_job_replication_lag_seconds', 'Age of the oldest change received and not yet applied.', 'gauge', (j) => j.replication?.lagSeconds ?? null),
    perJob('ferry_job_replication_lag_bytes', 'Source WAL position minus applied position.', 'gauge', (j) => j.replication?.lagBytes ?? null),
    perJob('ferry_job_changes_applied_total', 'Row changes applied by the incremental load since this server took the job.', 'counter', (j) => j.replication?.changesApplied ?? null),
    perJob('ferry_job_transactions_applied_total', 'Source transactions applied since this server took the job.', 'counter', (j) => j.replication?.transactionsApplied ?? null),
    perJob('ferry_job_duration_seconds', 'Running time of the job.', 'gauge', (j) => j.durationSeconds),
    { name: 'ferry_job_parked_changes', help: 'Changes of a parked table (the destination refuses them) waiting on the destination.', type: 'gauge', samples: parked },
    {
      name: 'ferry_node_jobs', help: 'Jobs whose live lease the node holds (the jobs it runs), per node of the metadata store.', type: 'gauge',
      samples: nodes.map((node) => ({ labels: { node: node.id, state: node.state }, value: node.jobs.length })),
    },
    {
      name: 'ferry_job_takeovers_total', help: 'Jobs this node took over from another node whose lease expired, since it started (sum over the nodes for the store).', type: 'counter',
      samples: [{ labels: {}, value: service.jobTakeovers() }],
    },
  ]);
}
