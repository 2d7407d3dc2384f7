// deploy/prometheus/halb-rules.yaml, checked by the real promtool (Debian's prometheus package):
// `promtool check rules`, and `promtool test rules` with input series under which each alert
// fires and series under which it must not (deploy/prometheus/halb-rules.test.yaml).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const DIR = join(import.meta.dirname, '../../deploy/prometheus');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd: DIR, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error('promtool not found: apt-get install prometheus (or set PROMTOOL)');
      }
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output: stdout + stderr });
    });
  });
}

interface Rule { alert?: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RuleFile { groups: { rules: Rule[] }[] }
interface TestFile { tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }

const rules = parse(readFileSync(join(DIR, 'halb-rules.yaml'), 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);

describe('halb alert rules', () => {
  it('the alerts the operations runbook covers, each with a severity and a runbook section', () => {
    expect(alerts.map((a) => a.alert)).toEqual([
      'HalbNoMaster', 'HalbSplitBrain', 'HalbReservedIPOnNonMaster', 'HalbFailoverFlapping', 'HalbNodeUnreachable',
      'HalbBackendNoServerUp', 'HalbCertificateExpiring', 'HalbReconcileErrors', 'HalbOperatorAbsent',
    ]);
    const runbook = readFileSync(join(DIR, '../../docs/operations.md'), 'utf8');
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.runbook, a.alert).toBe(`docs/operations.md#${a.alert!.toLowerCase()}`);
      expect(runbook, a.alert).toContain(`\n### ${a.alert}\n`);
    }
  });

  it('promtool check rules accepts the file', async () => {
    const r = await promtool(['check', 'rules', 'halb-rules.yaml']);
    expect(r.output).toContain(`SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`);
    expect(r.code).toBe(0);
  });

  it('every alert has a unit test where it fires and one where it does not', () => {
    const file = parse(readFileSync(join(DIR, 'halb-rules.test.yaml'), 'utf8')) as TestFile;
    const tests = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = tests.filter((t) => t.alertname === a.alert);
      expect(mine.some((t) => t.exp_alerts.length > 0), `${a.alert} fires`).toBe(true);
      expect(mine.some((t) => t.exp_alerts.length === 0), `${a.alert} stays quiet`).toBe(true);
    }
  });

  it('promtool test rules passes', async () => {
    const r = await promtool(['test', 'rules', 'halb-rules.test.yaml']);
    expect(r.output).toContain('SUCCESS');
    expect(r.code, r.output).toBe(0);
  });
});
